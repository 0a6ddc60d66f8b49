"""Document unwarping with UVDoc (Verhoeven et al., 2023): the model predicts a 45 x 31 grid of
where each point of the flat page lies in the photo; the page is resampled through it at full
resolution. The grid is upsampled and sampled with align_corners semantics, as UVDoc's own
bilinear unwarping does (bilinear, zeros outside).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import ModelError
from ..timing import StageTimer, stage

INPUT_W, INPUT_H = 488, 712  # the model's fixed input (width, height)
BAND = 256  # output rows resampled at a time: the full-size maps of a 100 Mpx page never exist at once


def uvdoc_input(image: np.ndarray) -> np.ndarray:
    """BGR page -> 1 x 3 x 712 x 488 RGB in [0, 1] (bilinear resize)."""
    rgb = cv2.cvtColor(cv2.resize(image, (INPUT_W, INPUT_H), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
    return (rgb.astype(np.float32) * np.float32(1 / 255)).transpose(2, 0, 1)[None]


def _axis_weights(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear interpolation from n_in to n_out points, corners aligned: (lo, hi, frac) per output."""
    pos = np.arange(n_out, dtype=np.float64) * ((n_in - 1) / max(n_out - 1, 1))
    lo = np.clip(np.floor(pos).astype(np.int64), 0, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def apply_grid(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Resample the page through grid (2 x gh x gw, x then y, in [-1, 1]) at the image's own size."""
    h, w = image.shape[:2]
    gx_lo, gx_hi, fx = _axis_weights(w, grid.shape[2])
    gy_lo, gy_hi, fy = _axis_weights(h, grid.shape[1])
    # the grid upsampled along x once (2 x gh x w), then row band by row band along y
    gxw = grid[:, :, gx_lo] * (1 - fx) + grid[:, :, gx_hi] * fx
    out = np.empty_like(image)
    for y0 in range(0, h, BAND):
        y1 = min(h, y0 + BAND)
        f = fy[y0:y1, None]
        band = gxw[:, gy_lo[y0:y1]] * (1 - f) + gxw[:, gy_hi[y0:y1]] * f
        map_x = ((band[0] + 1) * ((w - 1) / 2)).astype(np.float32)
        map_y = ((band[1] + 1) * ((h - 1) / 2)).astype(np.float32)
        out[y0:y1] = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out


class Unwarper:
    """Flattens a photographed, curved or folded page (UVDoc). The output has the input's size."""

    def __init__(self, model, name: str = "UVDoc"):
        self.model, self.name = model, name
        shape = model.input_shape
        if len(shape) != 4 or shape[2:] != [INPUT_H, INPUT_W]:
            raise ModelError(f"{name} is not a UVDoc unwarping model (input {shape}, expected N x 3 x "
                             f"{INPUT_H} x {INPUT_W})")

    def __call__(self, image: np.ndarray, timer: StageTimer | None = None) -> np.ndarray:
        with stage(timer, "unwarp"):
            grid = self.model.run(uvdoc_input(image).astype(self.model.input_dtype))[0].astype(np.float32)
            if grid.ndim != 3 or grid.shape[0] != 2:
                raise ModelError(f"{self.name} gave a {grid.shape} output, not a 2 x H x W grid")
            return apply_grid(image, grid)
