"""TextRecognizer: the CTC text recognition stage (ocrflow.rec holds its array functions)."""

from __future__ import annotations

import numpy as np

from .. import rec
from ..engine.jobs import run_ahead
from ..errors import ModelError
from ..timing import StageTimer, stage


class TextRecognizer:
    """(text, score) of each text-line crop.

    height / width: the model's input height and base width (inference.yml's image_shape);
    min_width: the narrowest crop input (the base width on the exact path, PaddleX's rule);
    round_shape: pads batch widths up to a few (use_hpip), None for exact."""

    def __init__(self, model, chars, height: int = rec.REC_HEIGHT, width: int = rec.REC_WIDTH,
                 min_width: int | None = None, round_shape=None, batch_size: int = 6, name: str = "",
                 table: list[str] | None = None):
        """table: the CTC class table itself (rec.char_table), instead of the dictionary chars."""
        self.model, self.name = model, name
        self.height, self.width = height, width
        self.min_width = width if min_width is None else min_width
        self.round_shape = round_shape
        self.batch_size = batch_size
        if table is not None:
            self.char_table = table
            return
        if not chars and "character" in model.metadata:
            chars = tuple(model.metadata["character"].splitlines())
        if not chars:
            raise ModelError(f"recognition model {name!r} carries no dictionary: put inference.yml "
                             "(PostProcess.character_dict) or dict.txt beside the .onnx file")
        try:
            self.char_table = rec.char_table(list(chars), self._num_classes())
        except ValueError as exc:
            raise ModelError(f"recognition model {name!r}: {exc}") from None

    def _num_classes(self) -> int:
        last = self.model.output_shape[-1]
        if isinstance(last, int) and last > 0:
            return last
        probe = np.zeros((self.height, self.width, 3), np.uint8)
        return int(self.model.run(self.batch([probe])).shape[-1])

    def batch(self, crops: list[np.ndarray]) -> np.ndarray:
        """The model input for one batch of crops."""
        make = rec.batch_pixels if self.model.takes_pixels else rec.batch_input
        return make(crops, self.height, self.min_width, self.round_shape)

    def __call__(self, crops: list[np.ndarray], batch_size: int | None = None, timer: StageTimer | None = None,
                 alignment: list | None = None) -> list[tuple[str, float]]:
        """(text, score) for each crop, in the order given. With a list as `alignment`, it is
        filled with each crop's (kept CTC columns, output columns covering the crop)."""
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        if alignment is not None:
            alignment[:] = [([], 0.0)] * len(crops)

        def inputs():
            for batch in rec.batch_plan(crops, batch_size or self.batch_size):
                with stage(timer, "rec_pre"):
                    x = self.batch([crops[i] for i in batch])
                yield batch, x  # outside the stage: the model runs while this waits

        # submitted ahead: with streams, the next batches run while this thread decodes
        for batch, probs in run_ahead(self.model, inputs(), timer, "rec_model"):
            with stage(timer, "rec_decode"):
                for i, decoded in zip(batch, rec.ctc_decode(probs, self.char_table)):
                    out[i] = decoded
                if alignment is not None:
                    for i, cols, share in zip(batch, rec.ctc_columns(probs), self.input_shares(batch, crops)):
                        alignment[i] = (cols, probs.shape[1] * share)
        return out

    def input_shares(self, batch: list[int], crops: list[np.ndarray]) -> list[float]:
        """The share of the batch's input width each crop fills: PaddleX's wh_ratio / max_wh_ratio
        on the exact path, the resized width over the padded one under use_hpip (bucketed widths)."""
        if self.round_shape is None:
            ratios = [crops[i].shape[1] / crops[i].shape[0] for i in batch]
            widest = max(self.min_width / self.height, *ratios)
            return [r / widest for r in ratios]
        widths, width = rec._batch_widths([crops[i] for i in batch], self.height, self.min_width, self.round_shape)
        return [w / width for w in widths]
