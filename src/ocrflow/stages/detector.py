"""TextDetector: the DB text detection stage (ocrflow.det holds its array functions)."""

from __future__ import annotations

import numpy as np

from .. import det
from ..timing import StageTimer, stage


class TextDetector:
    """Boxes (N x 4 x 2, reading order) and scores of the text on one BGR page.

    norm: the model's (alpha, beta) normalisation (its inference.yml's mean/std/scale);
    round_shape: pads the input up to a few shapes (use_hpip's shape buckets), None for exact."""

    def __init__(self, model, params: det.DetParams | None = None, norm=None, round_shape=None, name: str = ""):
        self.model, self.name = model, name
        self.params = params or det.DetParams()
        self.norm = norm if norm is not None else det.norm_coefficients()
        self.round_shape = round_shape

    @staticmethod
    def norm_of(settings: dict):
        """(alpha, beta) from a model's inference.yml settings (ImageNet when it says nothing)."""
        return det.norm_coefficients(settings.get("mean", det.IMAGENET_MEAN), settings.get("std", det.IMAGENET_STD),
                                     settings.get("scale", 1 / 255))

    def __call__(self, image: np.ndarray, params: det.DetParams | None = None,
                 timer: StageTimer | None = None) -> tuple[np.ndarray, list[float]]:
        params = params or self.params
        return self.boxes(self.score_map(image, params, timer), image.shape, params, timer)

    def score_map(self, image: np.ndarray, params: det.DetParams | None = None, timer: StageTimer | None = None,
                  own: bool = False) -> np.ndarray:
        """The text probability map of the page's part of the model input. own=False: it may be
        the model's output buffer, overwritten by this thread's next run; own=True: a copy where so."""
        params = params or self.params
        h, w = image.shape[:2]
        with stage(timer, "det_pre"):
            make = det.preprocess_pixels if self.model.takes_pixels else det.preprocess
            x = make(image, params, self.norm, self.round_shape)
            xh, xw = det.input_size(h, w, params)
        with stage(timer, "det_model"):
            prob = self.model.run(x, copy=False)[0, 0, :xh, :xw]
            if self.model.returns_logits:
                return det.sigmoid(prob)  # a new array
            return prob.copy() if own else prob

    def boxes(self, prob: np.ndarray, shape: tuple, params: det.DetParams | None = None,
              timer: StageTimer | None = None) -> tuple[np.ndarray, list[float]]:
        """Boxes and scores in the pixels of a page of `shape` from its score map."""
        with stage(timer, "det_post"):
            boxes, scores = det.postprocess(prob, shape[0], shape[1], params or self.params)
            return det.sort_boxes(boxes, scores)
