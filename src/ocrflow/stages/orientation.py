"""Orientation stages: the page turned 0/90/180/270 (DocOrientation), each text line 0/180
(LineOrientation). PaddleX 3.x rules (paddlex/inference/models/image_classification, its
doc_preprocessor and OCR pipelines): RGB input, ImageNet mean/std, top-1 class.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from ..det import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ModelError
from ..timing import StageTimer, stage

log = logging.getLogger("ocrflow")

DOC_ANGLES = (0, 90, 180, 270)
DOC_SHORT_SIDE = 256  # ResizeImage resize_short
DOC_CROP = 224  # CropImage size (centre)
# A page whose long side would pass this after the short-side resize is a strip, not a page: it
# is passed through unturned (angle 0) rather than resized to a huge array.
DOC_MAX_LONG_SIDE = 40 * DOC_SHORT_SIDE

_MEAN = np.array(IMAGENET_MEAN, np.float32)
_STD = np.array(IMAGENET_STD, np.float32)


def rotate_image(image: np.ndarray, angle: float) -> np.ndarray:
    """The image turned `angle` degrees counter-clockwise about its centre onto a canvas grown to
    hold it, bicubic: PaddleX's warp_image.rotate_image, pixel for pixel (its 180 degrees is a
    flip shifted by one pixel, with a black first row and column)."""
    if not 0 <= angle < 360:
        raise ValueError(f"angle must be in [0, 360), got {angle}")
    if angle < 1e-7:
        return image
    mat, size = _rotation(*image.shape[:2], angle)
    return cv2.warpAffine(image, mat, size, flags=cv2.INTER_CUBIC)


def _rotation(h: int, w: int, angle: float) -> tuple[np.ndarray, tuple[int, int]]:
    """rotate_image's 2 x 3 matrix for an h x w image and its output (width, height)."""
    mat = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(mat[0, 0]), abs(mat[0, 1])
    new_w, new_h = int(h * sin + w * cos), int(h * cos + w * sin)
    mat[0, 2] += (new_w - w) / 2
    mat[1, 2] += (new_h - h) / 2
    return mat, (new_w, new_h)


def rotation_matrix(h: int, w: int, angle: float) -> np.ndarray:
    """The 2 x 3 matrix rotate_image applies to an h x w image: maps input (x, y) to the output."""
    return _rotation(h, w, angle)[0]


def to_input(points: np.ndarray, angle: int, input_hw: tuple[int, int]) -> np.ndarray:
    """Points on the page DocOrientation turned by `angle` -> the same points on the input image
    (h, w = input_hw): the inverse of rotation_matrix. Shape kept, float."""
    pts = np.asarray(points, np.float64)
    if angle <= 0:
        return pts
    inverse = cv2.invertAffineTransform(rotation_matrix(*input_hw, angle))
    flat = pts.reshape(-1, 2)
    return (flat @ inverse[:, :2].T + inverse[:, 2]).reshape(pts.shape)


def _normalise(rgb: np.ndarray) -> np.ndarray:
    """HWC uint8 RGB -> CHW float32, ImageNet mean/std on x / 255."""
    x = (rgb.astype(np.float32) * np.float32(1 / 255) - _MEAN) / _STD
    return x.transpose(2, 0, 1)


def doc_input(image: np.ndarray) -> np.ndarray | None:
    """One BGR page -> the 3 x 224 x 224 classifier input (short side to 256 with Python's round,
    bilinear; centre crop 224), or None for a strip too long to classify (DOC_MAX_LONG_SIDE)."""
    h, w = image.shape[:2]
    scale = DOC_SHORT_SIDE / min(h, w)
    rh, rw = round(h * scale), round(w * scale)
    if max(rh, rw) > DOC_MAX_LONG_SIDE:
        return None
    if (rh, rw) != (h, w):  # resized before the channel swap: the same pixels, without a full-page copy
        image = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    y, x = max(0, (rh - DOC_CROP) // 2), max(0, (rw - DOC_CROP) // 2)
    return _normalise(cv2.cvtColor(image[y : y + DOC_CROP, x : x + DOC_CROP], cv2.COLOR_BGR2RGB))


def _labels(model, expected: tuple, name: str) -> tuple:
    """The model's class labels as numbers (its ONNX metadata), checked against what the stage does."""
    out = model.output_shape[-1]
    raw = model.metadata.get("character")
    if raw:
        try:
            labels = tuple(int(str(v).split("_")[0]) for v in raw.splitlines() if v.strip())
        except ValueError:
            raise ModelError(f"{name}: class labels {raw.splitlines()!r} are not angles") from None
    else:
        labels = expected[: out] if isinstance(out, int) else expected
    if isinstance(out, int) and out != len(labels) or set(labels) - set(expected):
        raise ModelError(f"{name} is not an orientation classifier of {'/'.join(map(str, expected))} degrees "
                         f"(it has {out} classes, labels {labels})")
    return labels


class DocOrientation:
    """Turns a page upright: classifies it as 0/90/180/270 (PP-LCNet_x1_0_doc_ori) and rotates it
    back with rotate_image. PaddleX's angle is the counter-clockwise turn that makes the page upright."""

    def __init__(self, model, name: str = "PP-LCNet_x1_0_doc_ori"):
        self.model, self.name = model, name
        self.labels = _labels(model, DOC_ANGLES, name)
        if len(self.labels) != 4:
            raise ModelError(f"{name} is not a document orientation model (4 classes expected, it has "
                             f"{len(self.labels)}); a text line classifier goes to textline_orientation_model")

    def classify(self, image: np.ndarray) -> tuple[int, float]:
        """(angle, score) of one BGR page."""
        x = doc_input(image)
        if x is None:
            log.info("page orientation: %dx%d is too long a strip to classify; left as it is", *image.shape[:2])
            return 0, 0.0
        probs = self.model.run(x[None].astype(self.model.input_dtype))[0]
        best = int(np.argmax(probs))
        return self.labels[best], float(probs[best])

    def __call__(self, image: np.ndarray, timer: StageTimer | None = None) -> tuple[int, np.ndarray]:
        """(angle, the page turned upright)."""
        with stage(timer, "doc_ori"):
            angle, _ = self.classify(image)
            return angle, rotate_image(image, angle)


# Text line classifiers: (input height, width, how the crop is fitted, mean, std) by kind.
#   "lcnet": PaddleX 3.x PP-LCNet_x*_textline_ori: resized to 160 x 80 (w x h), ImageNet, RGB.
#   "v2": PaddleOCR's ch_ppocr_mobile_v2.0_cls: 48 high, up to 192 wide, zero-padded, 0.5 / 0.5, BGR.
LINE_KINDS = ("lcnet", "v2")


def line_input_lcnet(crops: list[np.ndarray]) -> np.ndarray:
    """Crops -> N x 3 x 80 x 160, each stretched to 160 x 80 (bilinear), RGB, ImageNet."""
    return np.stack([_normalise(cv2.resize(cv2.cvtColor(c, cv2.COLOR_BGR2RGB), (160, 80),
                                           interpolation=cv2.INTER_LINEAR)) for c in crops])


def line_input_v2(crops: list[np.ndarray]) -> np.ndarray:
    """Crops -> N x 3 x 48 x 192: each 48 high keeping its ratio (at most 192 wide), (x/255-0.5)/0.5,
    right-padded with 0 (PaddleOCR's ClsResizeImg)."""
    out = np.zeros((len(crops), 3, 48, 192), np.float32)
    for i, c in enumerate(crops):
        h, w = c.shape[:2]
        rw = min(192, max(1, int(np.ceil(48 * w / max(h, 1)))))
        img = cv2.resize(c, (rw, 48)).astype(np.float32) * np.float32(2 / 255) - 1
        out[i, :, :, :rw] = img.transpose(2, 0, 1)
    return out


class LineOrientation:
    """Turns upside-down text lines: classifies each crop 0/180 and turns the 180 ones (`turn`).
    Angles are PaddleX's textline_orientation_angles: 0 or 1."""

    # the score a 180 class needs: PaddleOCR's cls_thresh for its v2 classifier; PaddleX takes the top class
    THRESHOLDS = {"v2": 0.9, "lcnet": 0.0}
    # With verification, a line whose 180 score is above VERIFY_ABOVE is read both ways, and the other
    # way round wins when its recognition score is higher by VERIFY_MARGIN (the pipeline reads them):
    # a near tie is a symmetric glyph (W / M), where the classifier's rule stands. On 40 SROIE
    # receipts turned 180 (v4), end-to-end Hmean turned / upright: classifier alone 0.458 / 0.522,
    # verified 0.525 / 0.526 (without the stage, upright: 0.528); every line read twice (0.0):
    # 0.527 / 0.522; the top class alone (0.5): 0.500 / 0.527; margin 0 or 0.1: 0.525 or 0.521 turned.
    VERIFY_ABOVE = 0.1
    VERIFY_MARGIN = 0.05

    def __init__(self, model, kind: str = "v2", batch_size: int = 6, threshold: float | None = None,
                 name: str = "ch_ppocr_mobile_v2.0_cls"):
        if kind not in LINE_KINDS:
            raise ValueError(f"kind must be one of {LINE_KINDS}")
        self.model, self.kind, self.batch_size, self.name = model, kind, batch_size, name
        self.threshold = self.THRESHOLDS[kind] if threshold is None else threshold
        labels = _labels(model, (0, 180), name)
        if len(labels) != 2:
            raise ModelError(f"{name} is not a text line orientation model (2 classes expected)")
        self.flip_class = labels.index(180)

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """The classifier's N x 2 class probabilities."""
        make = line_input_lcnet if self.kind == "lcnet" else line_input_v2
        out = [self.model.run(make(crops[start : start + self.batch_size]).astype(self.model.input_dtype))
               for start in range(0, len(crops), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, 2), np.float32)

    def _angles(self, probs: np.ndarray) -> list[int]:
        """1 for each line classed upside down (its 180 score above the threshold), else 0."""
        best = probs.argmax(axis=1)
        return [int(b == self.flip_class and p[b] > self.threshold) for b, p in zip(best.tolist(), probs)]

    def orient(self, crops: list[np.ndarray], verify: bool, timer: StageTimer | None = None
               ) -> tuple[list[int], list[np.ndarray], dict[int, np.ndarray]]:
        """(angles, the crops turned by them, and with `verify` {line: that crop the other way round}
        for each line whose 180 score is above VERIFY_ABOVE: the caller reads both and keeps the
        reading with the higher recognition score, flipping the line's angle if it is the other)."""
        with stage(timer, "textline_ori"):
            probs = self.probabilities(crops)
            angles = self._angles(probs)
            turned = [self.turn(c) if a else c for c, a in zip(crops, angles)]
            others = {}
            if verify:
                for i in np.flatnonzero(probs[:, self.flip_class] > self.VERIFY_ABOVE).tolist():
                    others[i] = crops[i] if angles[i] else self.turn(crops[i])
            return angles, turned, others

    def turn(self, crop: np.ndarray) -> np.ndarray:
        """A crop turned 180 degrees by the rule of the classifier's own pipeline: PaddleOCR 2.x flips
        the v2 classifier's lines exactly (cv2.rotate); PaddleX 3.x turns them with rotate_image.
        On 40 SROIE receipts turned 180, the exact flip read 1.1 points more lines right."""
        return cv2.rotate(crop, cv2.ROTATE_180) if self.kind == "v2" else rotate_image(crop, 180)
