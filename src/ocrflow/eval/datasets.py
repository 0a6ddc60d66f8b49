"""Readers for the label formats OCR users have -> (image path, ground-truth lines) samples.

- paddle-det: `image_path<TAB>[{"transcription": ..., "points": [[x, y], ...]}, ...]` ('###' = don't care)
- paddle-rec: `image_path<TAB>text` (one text-line crop per line)
- icdar2015:  a folder of images and `gt_<image stem>.txt` files: `x1,y1,...,x4,y4,text` ('###' = don't care)
- funsd:      FUNSD's `images/*.png` + `annotations/*.json` (entities with text; empty ones skipped)
- sroie:      SROIE's `img/NNN.jpg` + `box/NNN.csv` (`x1,y1,...,x4,y4,text`, text may hold commas)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from .metrics import GtLine

FORMATS = ("paddle-det", "paddle-rec", "icdar2015", "funsd", "sroie")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Sample:
    image: Path
    lines: list[GtLine]  # for paddle-rec: one line whose points are the whole crop (unused)

    @property
    def is_crop(self) -> bool:
        """A recognition label: the image is the text line itself (one line, no points)."""
        return len(self.lines) == 1 and not np.asarray(self.lines[0].points).any()


def _label_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"label file {path}: cannot be read ({exc.strerror})") from None
    return [line for line in text.splitlines() if line.strip()]


def _quad_line(fields: list[str], source: str) -> GtLine:
    try:
        coords = [float(v) for v in fields[:8]]
    except ValueError:
        raise InputError(f"{source}: expected 8 coordinates then the text, got {','.join(fields)[:80]!r}") from None
    text = fields[8] if len(fields) > 8 else ""
    return GtLine(np.array(coords).reshape(4, 2), text, text == "###")


def read_paddle_det(label_file: Path, root: Path | None = None) -> list[Sample]:
    root = root or label_file.parent
    samples = []
    for n, line in enumerate(_label_lines(label_file), 1):
        path, sep, payload = line.partition("\t")
        if not sep:
            raise InputError(f"{label_file}:{n}: expected 'image_path<TAB>json labels'")
        try:
            items = json.loads(payload)
            lines = [GtLine(np.array(it["points"], dtype=np.float64), str(it.get("transcription", "")),
                            str(it.get("transcription", "")) in ("###", "*")) for it in items]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{label_file}:{n}: bad label JSON ({exc})") from None
        samples.append(Sample(root / path, lines))
    return samples


def read_paddle_rec(label_file: Path, root: Path | None = None) -> list[Sample]:
    root = root or label_file.parent
    samples = []
    for n, line in enumerate(_label_lines(label_file), 1):
        path, sep, text = line.partition("\t")
        if not sep:
            raise InputError(f"{label_file}:{n}: expected 'image_path<TAB>text'")
        samples.append(Sample(root / path, [GtLine(np.zeros((4, 2)), text)]))
    return samples


def read_icdar2015(folder: Path, gt_folder: Path | None = None) -> list[Sample]:
    gt_folder = gt_folder or folder
    samples = []
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        gt = gt_folder / f"gt_{image.stem}.txt"
        if not gt.is_file():
            raise InputError(f"{image}: no ground-truth file {gt.name}")
        lines = [_quad_line(line.split(",", 8), str(gt)) for line in _label_lines(gt)]
        samples.append(Sample(image, lines))
    return samples


def read_funsd(folder: Path) -> list[Sample]:
    samples = []
    for ann in sorted((folder / "annotations").glob("*.json")):
        doc = json.loads(ann.read_text(encoding="utf-8"))
        lines = []
        for entity in doc.get("form", []):
            text = str(entity.get("text", "")).strip()
            if not text:
                continue
            x1, y1, x2, y2 = entity["box"]
            lines.append(GtLine(np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float64), text))
        samples.append(Sample(folder / "images" / f"{ann.stem}.png", lines))
    return samples


def read_sroie(folder: Path) -> list[Sample]:
    samples = []
    for box in sorted((folder / "box").glob("*.csv")):
        image = next((folder / "img" / f"{box.stem}{s}" for s in (".jpg", ".png", ".jpeg")
                      if (folder / "img" / f"{box.stem}{s}").is_file()), folder / "img" / f"{box.stem}.jpg")
        lines = [_quad_line(line.split(",", 8), str(box)) for line in _label_lines(box)]
        samples.append(Sample(image, lines))
    return samples


def detect_format(path: Path) -> str:
    if path.is_file():
        first = _label_lines(path)[:1]
        return "paddle-det" if first and first[0].partition("\t")[2].lstrip().startswith("[") else "paddle-rec"
    if (path / "annotations").is_dir() and (path / "images").is_dir():
        return "funsd"
    if (path / "box").is_dir() and (path / "img").is_dir():
        return "sroie"
    if any(path.glob("gt_*.txt")):
        return "icdar2015"
    raise InputError(f"{path}: cannot tell the label format; pass --format ({', '.join(FORMATS)})")


def load(path: str | Path, fmt: str | None = None, root: str | Path | None = None) -> list[Sample]:
    """Samples of a dataset at path (a label file or a folder) in the given or detected format."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"dataset {path}: no such file or folder")
    fmt = fmt or detect_format(path)
    root_path = Path(root) if root else None
    readers = {
        "paddle-det": lambda: read_paddle_det(path, root_path),
        "paddle-rec": lambda: read_paddle_rec(path, root_path),
        "icdar2015": lambda: read_icdar2015(path, root_path),
        "funsd": lambda: read_funsd(path),
        "sroie": lambda: read_sroie(path),
    }
    if fmt not in readers:
        raise InputError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")
    return readers[fmt]()
