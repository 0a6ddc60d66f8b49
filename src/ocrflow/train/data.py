"""Training data: samples from the eval readers -> augmented, pipeline-preprocessed tensors.

Recognition items are text-line crops: from detection-style labels (PaddleOCR det, ICDAR 2015,
FUNSD, SROIE) each labelled quad is cut out with `ocrflow.crop.crop_quad`, exactly as `ocrflow eval
--task rec` cuts it; from recognition labels (PaddleOCR rec) the whole image is the crop. Every crop
is then resized and normalised by `ocrflow.rec.resize_norm` and right-padded by
`ocrflow.rec.pad_batch`, i.e. what the pipeline feeds the model.

Detection items are whole pages scaled by the pipeline's own resize rule (960 / max), then randomly
scaled, rotated and cropped (polygons transformed alike), colour-jittered and normalised by
`ocrflow.det.preprocess`. Labels are DB's: the shrink map and mask (polygons shrunk with
pyclipper by D = A (1 - r^2) / L, r = 0.5 by default, see SHRINK_RATIO; small or '###' polygons
masked out) and the threshold
map and mask (distance to the border inside the polygon dilated by D, scaled to [0.3, 0.7]).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon

from .. import det as det_mod
from .. import rec as rec_mod
from ..crop import crop_quad
from ..eval.datasets import Sample
from ..eval.runner import _order_quad, load_image

log = logging.getLogger("ocrflow")

# PaddleOCR trains PP-OCRv4 det with a shrink ratio growing from 0.4 to 0.6 over the run (DSR). The
# shipped model's own maps (P > 0.3) match labels made with 0.5-0.55 best (IoU 0.68 on SROIE pages,
# 0.63 with 0.4, 0.66 with 0.6); with 0.4 fine-tuning thins the maps, detections shrink and get lost.
SHRINK_RATIO = 0.5
MIN_TEXT_SIZE = 8
THRESH_MIN, THRESH_MAX = 0.3, 0.7


# -- recognition ------------------------------------------------------------------------------
@dataclass
class RecItem:
    patch: np.ndarray  # BGR, the line with some context around it
    quad: np.ndarray  # 4 x 2 float32, TL TR BR BL, in patch coordinates
    text: str
    label: list[int]  # class indices (blank = 0 excluded)


def encode_text(text: str, index: dict[str, int]) -> tuple[list[int], set[str]]:
    """Class indices of the characters of text; characters not in the dictionary are dropped."""
    label, missing = [], set()
    for ch in text:
        k = index.get(ch)
        if k is None:
            missing.add(ch)
        else:
            label.append(k)
    return label, missing


def rec_items(samples: list[Sample], table: list[str], progress: bool = False) -> list[RecItem]:
    """The text lines of the samples as crops with context (ignored, empty and unusable lines skipped)."""
    from tqdm import tqdm

    index = {ch: k for k, ch in enumerate(table) if k > 0}
    items: list[RecItem] = []
    missing: set[str] = set()
    skipped = 0
    for sample in tqdm(samples, desc="loading crops", unit="img", disable=None if progress else True):
        image = load_image(sample.image)
        if sample.is_crop:
            h, w = image.shape[:2]
            lines = [(image, np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32), sample.lines[0].text)]
        else:
            lines = []
            for line in sample.lines:
                if line.ignore or not line.text or len(line.points) != 4:
                    skipped += 1
                    continue
                lines.append((image, _order_quad(line.points), line.text))
        for img, quad, text in lines:
            label, miss = encode_text(text, index)
            missing |= miss
            if not label:
                skipped += 1
                continue
            patch, local = _context_patch(img, quad)
            items.append(RecItem(patch, local, text, label))
    if missing:
        log.warning("%d characters are not in the dictionary and were left out of the labels: %s",
                    len(missing), "".join(sorted(missing))[:80])
    if skipped:
        log.info("skipped %d lines (don't care, empty, not 4 points or no known character)", skipped)
    return items


def _context_patch(image: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A copy of the region around quad (margin: the line height, at least 4 px) and quad in it."""
    h_img, w_img = image.shape[:2]
    line_h = max(np.linalg.norm(quad[0] - quad[3]), np.linalg.norm(quad[1] - quad[2]), 1.0)
    margin = max(4, int(math.ceil(line_h)))
    x0 = max(int(math.floor(quad[:, 0].min())) - margin, 0)
    y0 = max(int(math.floor(quad[:, 1].min())) - margin, 0)
    x1 = min(int(math.ceil(quad[:, 0].max())) + margin, w_img)
    y1 = min(int(math.ceil(quad[:, 1].max())) + margin, h_img)
    if x1 <= x0 or y1 <= y0:  # a quad outside the image: keep the whole image
        x0, y0, x1, y1 = 0, 0, w_img, h_img
    return image[y0:y1, x0:x1].copy(), (quad - np.array([x0, y0], np.float32)).astype(np.float32)


def jitter_quad(quad: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random margins (mostly outwards), a small rotation and corner (perspective) jitter."""
    q = quad.astype(np.float64).copy()
    right = q[1] - q[0]
    down = q[3] - q[0]
    width, height = max(np.linalg.norm(right), 1.0), max(np.linalg.norm(down), 1.0)
    ux, uy = right / width, down / height
    top, bottom = rng.uniform(-0.08, 0.2, 2) * height
    left, right_m = rng.uniform(-0.03, 0.3, 2) * height
    q[0] += -left * ux - top * uy
    q[1] += right_m * ux - top * uy
    q[2] += right_m * ux + bottom * uy
    q[3] += -left * ux + bottom * uy
    angle = math.radians(rng.uniform(-2.0, 2.0))
    centre = q.mean(axis=0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    q = (q - centre) @ rot.T + centre
    q += rng.normal(0, 0.04 * height, (4, 2))
    return q.astype(np.float32)


def colour_jitter(img: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Brightness/contrast, saturation/hue, and sometimes grey, for a BGR uint8 image."""
    out = img.astype(np.float32)
    if rng.random() < 0.8:
        alpha = rng.uniform(1 - 0.35 * strength, 1 + 0.35 * strength)
        beta = rng.uniform(-30, 30) * strength
        mean = out.mean()
        out = (out - mean) * alpha + mean + beta
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.3 * strength:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + rng.integers(-10, 11)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 255)
        out = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    if rng.random() < 0.1 * strength:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return out


def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sometimes blur, sometimes noise (crops only)."""
    if rng.random() < 0.25 and min(img.shape[:2]) >= 8:
        k = int(rng.choice([3, 5])) if min(img.shape[:2]) >= 24 else 3
        img = cv2.GaussianBlur(img, (k, k), rng.uniform(0.3, 1.2))
    if rng.random() < 0.2:
        noise = rng.normal(0, rng.uniform(2, 8), img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


class RecDataset:
    """Indexable: i -> (3 x 48 x W float32 input, label indices). augment=False gives the eval crop."""

    def __init__(self, items: list[RecItem], augment: bool, seed: int = 0,
                 height: int = rec_mod.REC_HEIGHT, width: int = rec_mod.REC_WIDTH):
        self.items, self.augment, self.seed = items, augment, seed
        self.height, self.width = height, width
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def ratio(self, i: int) -> float:
        q = self.items[i].quad
        w = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[2] - q[3]))
        h = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]), 1.0)
        return float(w / h)

    def crop(self, i: int) -> np.ndarray:
        item = self.items[i]
        if not self.augment:
            return crop_quad(item.patch, item.quad)
        rng = np.random.default_rng((self.seed, self.epoch, i))
        img = crop_quad(item.patch, jitter_quad(item.quad, rng))
        return degrade(colour_jitter(img, rng), rng)

    def __getitem__(self, i: int) -> tuple[np.ndarray, list[int]]:
        return rec_mod.resize_norm(self.crop(i), self.height, self.width), self.items[i].label


def rec_collate(batch):
    import torch

    x = rec_mod.pad_batch([b[0] for b in batch])
    labels = [b[1] for b in batch]
    targets = torch.tensor([k for lab in labels for k in lab], dtype=torch.long)
    lengths = torch.tensor([len(lab) for lab in labels], dtype=torch.long)
    return torch.from_numpy(x), targets, lengths


def ratio_batches(ratios: list[float], batch_size: int, rng: np.random.Generator,
                  height: int = rec_mod.REC_HEIGHT, width: int = rec_mod.REC_WIDTH) -> list[list[int]]:
    """Batches of similar aspect ratio (little padding), in random order, different every epoch.

    A batch holds at most batch_size crops and at most batch_size x width padded columns, so batches
    of long lines are smaller (memory stays that of batch_size standard crops)."""
    order = rng.permutation(len(ratios))
    chunk = batch_size * 16  # sort within large random chunks, so batches still mix
    budget = batch_size * width
    batches = []
    for s in range(0, len(order), chunk):
        part = sorted(order[s : s + chunk].tolist(), key=lambda i: ratios[i])
        current, widest = [], 0
        for i in part:
            w = min(int(height * max(width / height, ratios[i])), rec_mod.MAX_WIDTH)
            if current and (len(current) >= batch_size or (len(current) + 1) * max(widest, w) > budget):
                batches.append(current)
                current, widest = [], 0
            current.append(i)
            widest = max(widest, w)
        if current:
            batches.append(current)
    return [batches[k] for k in rng.permutation(len(batches))]


# -- detection labels (DB) --------------------------------------------------------------------
def _shrink_distance(poly: Polygon, ratio: float) -> float:
    return poly.area * (1 - ratio**2) / poly.length


# Labels are rasterised at sub-pixel precision: pyclipper works on integers and truncates float input,
# and cv2.fillPoly on int32 points truncates too, which put every label ~0.5 px up and left of its
# polygon (pixel centres are at integer coordinates, as for cv2.warpAffine and cv2.transform).
# Both now get fixed-point coordinates with SUBPIXEL_BITS fractional bits (fillPoly's `shift`).
SUBPIXEL_BITS = 8
_FIX = 1 << SUBPIXEL_BITS


def fill_poly(img: np.ndarray, polys, value: float) -> None:
    """cv2.fillPoly of float polygons (pixel centres at integer coordinates) at 1/2^SUBPIXEL_BITS px."""
    pts = [np.round(np.asarray(p, np.float64).reshape(-1, 2) * _FIX).astype(np.int32) for p in polys]
    cv2.fillPoly(img, pts, value, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)


def offset_poly(p: np.ndarray, distance: float) -> list[np.ndarray]:
    """The float polygon p grown (distance > 0) or shrunk (< 0) by pyclipper with round joins, at
    1/2^SUBPIXEL_BITS px; a list of float64 N x 2 polygons (none if it vanished)."""
    offset = pyclipper.PyclipperOffset(arc_tolerance=0.25 * _FIX)  # the default 0.25 px
    path = np.round(np.asarray(p, np.float64).reshape(-1, 2) * _FIX).astype(np.int64).tolist()
    offset.AddPath(path, pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return [np.array(s, np.float64).reshape(-1, 2) / _FIX for s in offset.Execute(distance * _FIX)]


def _valid_polys(polys, ignores, h, w):
    out_p, out_i = [], []
    for poly, ign in zip(polys, ignores):
        p = np.asarray(poly, np.float32).reshape(-1, 2).copy()
        p[:, 0] = np.clip(p[:, 0], 0, w - 1)
        p[:, 1] = np.clip(p[:, 1], 0, h - 1)
        if len(p) < 3:
            continue
        area = cv2.contourArea(p)
        if abs(area) < 1:
            ign = True
        out_p.append(p)
        out_i.append(bool(ign))
    return out_p, out_i


def shrink_map(h: int, w: int, polys, ignores, ratio: float = SHRINK_RATIO, min_size: int = MIN_TEXT_SIZE):
    """(gt, mask) float32 H x W: 1 inside each polygon shrunk by D = A (1 - r^2) / L; mask 0 on ignored."""
    gt = np.zeros((h, w), np.float32)
    mask = np.ones((h, w), np.float32)
    polys, ignores = _valid_polys(polys, ignores, h, w)
    for p, ign in zip(polys, ignores):
        ph, pw = p[:, 1].max() - p[:, 1].min(), p[:, 0].max() - p[:, 0].min()
        if ign or min(ph, pw) < min_size:
            fill_poly(mask, [p], 0)
            continue
        shape = Polygon(p)
        if not shape.is_valid or shape.length == 0:
            fill_poly(mask, [p], 0)
            continue
        shrunk = []
        for r in np.arange(ratio, 1, ratio):  # a larger ratio (less shrink) when it splits
            shrunk = offset_poly(p, -_shrink_distance(shape, r))
            if len(shrunk) == 1:
                break
        if not shrunk:
            fill_poly(mask, [p], 0)
            continue
        for s in shrunk:  # one at a time: fillPoly fills several polygons even-odd
            fill_poly(gt, [s], 1)
    return gt, mask


def _segment_distance(xs, ys, a, b):
    """Distance of each (xs, ys) point to the segment a-b."""
    ab = b - a
    denom = float(ab @ ab)
    if denom == 0:
        return np.hypot(xs - a[0], ys - a[1])
    t = np.clip(((xs - a[0]) * ab[0] + (ys - a[1]) * ab[1]) / denom, 0, 1)
    return np.hypot(xs - (a[0] + t * ab[0]), ys - (a[1] + t * ab[1]))


def threshold_map(h: int, w: int, polys, ignores, ratio: float = SHRINK_RATIO):
    """(thresh, mask) float32 H x W: 1 - distance/D to the border inside each dilated polygon, scaled
    to [THRESH_MIN, THRESH_MAX]; mask 1 inside the dilated polygons (ignored ones are left out)."""
    canvas = np.zeros((h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    polys, ignores = _valid_polys(polys, ignores, h, w)
    for p, ign in zip(polys, ignores):
        if ign:
            continue
        shape = Polygon(p)
        if not shape.is_valid or shape.area <= 0:
            continue
        distance = _shrink_distance(shape, ratio)
        grown = offset_poly(p, distance)
        if not grown:
            continue
        padded = grown[0]
        fill_poly(mask, [padded], 1.0)
        xmin, xmax = int(math.floor(padded[:, 0].min())), int(math.ceil(padded[:, 0].max()))
        ymin, ymax = int(math.floor(padded[:, 1].min())), int(math.ceil(padded[:, 1].max()))
        x0, x1 = max(xmin, 0), min(xmax, w - 1)
        y0, y1 = max(ymin, 0), min(ymax, h - 1)
        if x1 < x0 or y1 < y0:
            continue
        ys, xs = np.mgrid[y0 : y1 + 1, x0 : x1 + 1].astype(np.float32)
        dist = np.full(xs.shape, np.inf, np.float32)
        for k in range(len(p)):
            dist = np.minimum(dist, _segment_distance(xs, ys, p[k], p[(k + 1) % len(p)]))
        value = 1 - np.clip(dist / distance, 0, 1)
        canvas[y0 : y1 + 1, x0 : x1 + 1] = np.fmax(value, canvas[y0 : y1 + 1, x0 : x1 + 1])
    return canvas * (THRESH_MAX - THRESH_MIN) + THRESH_MIN, mask


# -- detection augmentation -------------------------------------------------------------------
def pipeline_scale(h: int, w: int, params: det_mod.DetParams) -> tuple[float, float]:
    """The (y, x) scale the pipeline's detection resize applies to an h x w image."""
    rh, rw = det_mod.input_size(h, w, params)
    return rh / h, rw / w


def normalise(image: np.ndarray) -> np.ndarray:
    """ocrflow.det.preprocess on an image whose sides are already multiples of 32 (no resize)."""
    h, w = image.shape[:2]
    x = det_mod.preprocess(image, det_mod.DetParams(limit_side_len=max(h, w, 32), limit_type="max"))
    if x.shape[2:] != (h, w):
        raise ValueError(f"detection training crops must have sides that are multiples of 32, got {h}x{w}")
    return x[0]


def warp_page(image, polys, matrix, size):
    out = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    moved = [cv2.transform(np.asarray(p, np.float32).reshape(-1, 1, 2), matrix).reshape(-1, 2) for p in polys]
    return out, moved


class DetDataset:
    """Indexable: i -> dict of float32 arrays: image 3 x S x S, shrink, shrink_mask, thresh, thresh_mask."""

    def __init__(self, samples: list[Sample], augment: bool, crop_size: int = 640, seed: int = 0,
                 scale_range: tuple[float, float] = (0.7, 1.4), max_angle: float = 10.0,
                 params: det_mod.DetParams | None = None, shrink_ratio: float = SHRINK_RATIO):
        if crop_size % 32:
            raise ValueError(f"crop_size must be a multiple of 32, got {crop_size}")
        self.samples, self.augment, self.crop_size, self.seed = samples, augment, crop_size, seed
        self.scale_range, self.max_angle = scale_range, max_angle
        self.params = params or det_mod.DetParams()
        self.shrink_ratio = shrink_ratio
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def page(self, i: int, rng: np.random.Generator | None):
        """The page scaled as the pipeline scales it (then randomly scaled/rotated) and its polygons."""
        sample = self.samples[i]
        image = load_image(sample.image)
        polys = [np.asarray(ln.points, np.float32).reshape(-1, 2) for ln in sample.lines]
        ignores = [ln.ignore for ln in sample.lines]
        h, w = image.shape[:2]
        sy, sx = pipeline_scale(h, w, self.params)
        angle = 0.0
        if rng is not None:
            s = math.exp(rng.uniform(math.log(self.scale_range[0]), math.log(self.scale_range[1])))
            sy, sx = sy * s, sx * s
            angle = rng.uniform(-self.max_angle, self.max_angle) if rng.random() < 0.7 else 0.0
        a = math.radians(angle)
        ca, sa = math.cos(a), math.sin(a)
        lin = np.array([[ca * sx, sa * sy], [-sa * sx, ca * sy]])  # rotate after scaling (x, y)
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64) @ lin.T
        lo, hi = corners.min(axis=0), corners.max(axis=0)
        out_w, out_h = max(int(math.ceil(hi[0] - lo[0])), 1), max(int(math.ceil(hi[1] - lo[1])), 1)
        matrix = np.hstack([lin, -lo[:, None]]).astype(np.float32)
        image, polys = warp_page(image, polys, matrix, (out_w, out_h))
        return image, polys, ignores

    def _crop(self, image, polys, ignores, rng):
        """A crop_size square window (zero padded); lines cut by the window become don't care."""
        s = self.crop_size
        h, w = image.shape[:2]
        x0 = y0 = 0
        if rng is not None and (h > s or w > s):
            care = [p for p, ign in zip(polys, ignores) if not ign]
            if care and rng.random() < 0.8:  # centre the window near a random line
                cx, cy = care[rng.integers(len(care))].mean(axis=0) + rng.normal(0, s / 6, 2)
                x0, y0 = int(cx - s / 2), int(cy - s / 2)
            else:
                x0, y0 = int(rng.integers(0, max(w - s, 0) + 1)), int(rng.integers(0, max(h - s, 0) + 1))
            x0 = min(max(x0, 0), max(w - s, 0))
            y0 = min(max(y0, 0), max(h - s, 0))
        out = np.zeros((s, s, 3), np.uint8)
        part = image[y0 : y0 + s, x0 : x0 + s]
        out[: part.shape[0], : part.shape[1]] = part
        vw, vh = part.shape[1], part.shape[0]
        new_polys, new_ign = [], []
        for p, ign in zip(polys, ignores):
            q = p - np.array([x0, y0], np.float32)
            inside = (q[:, 0] >= 0) & (q[:, 0] <= vw - 1) & (q[:, 1] >= 0) & (q[:, 1] <= vh - 1)
            if inside.all():
                new_polys.append(q)
                new_ign.append(ign)
            elif q[:, 0].max() >= 0 and q[:, 0].min() <= vw - 1 and q[:, 1].max() >= 0 and q[:, 1].min() <= vh - 1:
                new_polys.append(q)  # partly inside: don't care
                new_ign.append(True)
        return out, new_polys, new_ign

    def example(self, i: int):
        """(BGR crop, polygons, ignore flags) of item i for this epoch."""
        rng = np.random.default_rng((self.seed, self.epoch, i)) if self.augment else None
        image, polys, ignores = self.page(i, rng)
        image, polys, ignores = self._crop(image, polys, ignores, rng)
        if rng is not None:
            image = colour_jitter(image, rng, 0.7)
        return image, polys, ignores

    def __getitem__(self, i: int) -> dict:
        image, polys, ignores = self.example(i)
        s = self.crop_size
        gt, gt_mask = shrink_map(s, s, polys, ignores, self.shrink_ratio)
        th, th_mask = threshold_map(s, s, polys, ignores, self.shrink_ratio)
        return {"image": normalise(image), "shrink": gt, "shrink_mask": gt_mask, "thresh": th,
                "thresh_mask": th_mask}


def det_collate(batch):
    import torch

    return {k: torch.from_numpy(np.stack([b[k] for b in batch])) for k in batch[0]}
