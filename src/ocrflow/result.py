"""OCRResult: a dict with the seed's keys that prints, saves as JSON and draws itself."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .draw import draw_ocr

KEYS = ("input_path", "page_index", "dt_polys", "dt_scores", "rec_text", "rec_score")
# PaddleX 3.x's keys, after the seed's: with return_word_box, and from the stages that ran
EXTRA_KEYS = ("text_word", "text_word_region", "doc_preprocessor_res", "textline_orientation_angles")


def to_jsonable(value):
    """numpy arrays and scalars, Paths and tuples -> plain JSON types."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def _is_flat(value) -> bool:
    """A list of scalars, or of lists of scalars (a polygon): printed on one line."""
    return isinstance(value, list) and all(
        not isinstance(v, (list, dict)) or (isinstance(v, list) and not any(isinstance(w, (list, dict)) for w in v))
        for v in value
    )


def pretty_json(value, indent: int = 4, ensure_ascii: bool = False, _level: int = 0) -> str:
    """JSON with nesting indented but numbers, points and polygons kept on one line."""
    pad, inner = " " * indent * _level, " " * indent * (_level + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k), ensure_ascii=ensure_ascii)}: "
                 f"{pretty_json(v, indent, ensure_ascii, _level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value and not _is_flat(value):
        items = [f"{inner}{pretty_json(v, indent, ensure_ascii, _level + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    if isinstance(value, list) and value and isinstance(value[0], list) and len(value) > 4:
        items = [f"{inner}{json.dumps(v, ensure_ascii=ensure_ascii)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=ensure_ascii)


class OCRResult(dict):
    """One image or PDF page: input_path, page_index, dt_polys, dt_scores, rec_text, rec_score."""

    def __init__(self, data: dict, image: np.ndarray | None = None, name: str = "result", suffix: str = ".png",
                 input_img: np.ndarray | None = None):
        """image: the page the boxes are on (the corrected page when orientation / unwarping ran);
        input_img: the image as read, when it differs."""
        super().__init__((k, data[k]) for k in KEYS)
        self.update((k, data[k]) for k in EXTRA_KEYS if k in data)  # PaddleX 3.x's, after the seed's
        self.words = data.get("_words")  # (word, quad) per line, as the exports place them (words.py)
        self._image = image
        self._input = image if input_img is None else input_img
        self._name = name
        self._suffix = suffix

    @property
    def json(self) -> dict:
        return to_jsonable(dict(self))

    def __str__(self) -> str:
        return json.dumps(self.json, ensure_ascii=False)

    def print(self, format_json: bool = True, indent: int = 4, ensure_ascii: bool = False) -> None:
        if format_json:
            print(pretty_json(self.json, indent, ensure_ascii))
        else:
            print(self.json)

    def _target(self, save_path: str | Path, suffixes: tuple[str, ...], default_suffix: str) -> Path:
        path = Path(save_path)
        if path.suffix.lower() in suffixes:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
        path.mkdir(parents=True, exist_ok=True)
        return path / f"{self._name}{default_suffix}"

    def save_to_json(self, save_path: str | Path, indent: int = 4, ensure_ascii: bool = False) -> Path:
        """Write the JSON: to save_path if it ends in .json, else to <save_path>/<input stem>.json."""
        target = self._target(save_path, (".json",), ".json")
        target.write_text(json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii), encoding="utf-8")
        return target

    @property
    def input_img(self) -> np.ndarray | None:
        """The image or PDF page that was read (BGR), as PaddleX 3.x names it."""
        return self._input

    @property
    def page_img(self) -> np.ndarray | None:
        """The page the boxes are on (BGR): input_img turned upright / unwarped by the stages that ran."""
        return self._image

    @property
    def img(self) -> np.ndarray:
        """The side-by-side visualisation (BGR): boxes over the image, texts in their boxes."""
        if self._image is None:
            raise ValueError("this result carries no image to draw on")
        return draw_ocr(self._image, self["dt_polys"], self["rec_text"])

    def save_to_img(self, save_path: str | Path) -> Path:
        """Write the visualisation: to save_path if it is an image file name, else <save_path>/<stem><suffix>."""
        target = self._target(save_path, (".jpg", ".jpeg", ".png", ".bmp", ".webp"), self._suffix)
        ok, encoded = cv2.imencode(target.suffix, self.img)
        if not ok:
            raise OSError(f"could not encode the visualisation as {target.suffix}")
        target.write_bytes(encoded.tobytes())
        return target

    # -- document formats (export.py) ----------------------------------------------------------
    def to_txt(self) -> str:
        """The lines in reading order, one per line."""
        from .export import to_text

        return to_text([self])

    def to_hocr(self) -> str:
        """hOCR 1.2: page, lines and words (text_word_region if present), with confidences."""
        from .export import to_hocr

        return to_hocr([self], self._name)

    def to_alto(self) -> str:
        """ALTO v4 (pixels): page, lines and words, with confidences."""
        from .export import to_alto

        return to_alto([self], self._name)

    def _write(self, save_path, suffixes: tuple[str, ...], suffix: str, text: str) -> Path:
        target = self._target(save_path, suffixes, suffix)
        target.write_text(text, encoding="utf-8")
        return target

    def save_to_txt(self, save_path: str | Path) -> Path:
        return self._write(save_path, (".txt",), ".txt", self.to_txt())

    def save_to_hocr(self, save_path: str | Path) -> Path:
        return self._write(save_path, (".hocr", ".html"), ".hocr", self.to_hocr())

    def save_to_alto(self, save_path: str | Path) -> Path:
        return self._write(save_path, (".xml",), ".alto.xml", self.to_alto())

    def save_to_pdf(self, save_path: str | Path) -> Path:
        """A searchable PDF of this page: the input PDF's own page (when read from a PDF file) or
        the image, with the recognised text as an invisible layer (`pip install 'ocrflow[pdf]'`)."""
        from .export import SearchablePdf

        target = self._target(save_path, (".pdf",), ".pdf")
        path = self.get("input_path")
        changed = self._image is not self._input  # the boxes are on the corrected page, not on the PDF's
        source = path if self["page_index"] is not None and path and Path(path).is_file() and not changed else None
        with SearchablePdf(target, source, only_added=True) as writer:
            writer.add(self)
        return target

    def save_all(self, save_path: str | Path, formats: tuple[str, ...] = ("json", "img")) -> None:
        """Write <name>.json and the picture (the formats given of these two) into the folder
        save_path (as the CLI's --save_path)."""
        folder = Path(save_path)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"save path {folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        if "json" in formats:
            self.save_to_json(folder / f"{self._name}.json")
        if "img" in formats:
            self.save_to_img(folder / f"{self._name}{self._suffix}")
