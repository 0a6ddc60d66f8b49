"""The Ray actor of a batch run: it loads the pipeline once and OCRs the pages of each batch.

Each batch is a few units (path, page). The worker reads the file itself (the inputs travel as
paths, not pixels: every node must see the same paths) through the library's one input layer, and
returns one JSON record per unit: a result, or an error (path, page, reason). A bad page never
raises out of the batch, so Ray never retries a batch for a bad input, only for a lost worker.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np

from ..ahead import read_ahead
from ..errors import InputError
from ..inputs import Source, _read_file, read
from ..result import EXTRA_KEYS, KEYS, to_jsonable


class PageReader:
    """Pages of images and PDFs by (path, page). The last PDF stays open in its renderer, so the
    consecutive pages of a batch cost one open, not one each."""

    def __init__(self, limits, scale: float):
        self.limits, self.scale = limits, scale
        self.path: str | None = None
        self.doc = None

    def page(self, path: str, page: int | None) -> np.ndarray:
        if page is None:
            [got] = list(read(Source("path", Path(path), path), self.limits, self.scale))
            return got.image
        if self.path != path or self.doc is None or self.doc.worker is None:
            self.close()
            from ..pdf import PdfDocument

            self.doc = PdfDocument(_read_file(Path(path), path, self.limits), path, self.limits)
            self.path = path
        if page >= len(self.doc):
            raise InputError(f"{path}: page {page} is past the end of the PDF ({len(self.doc)} pages)")
        return self.doc.render(page, self.scale)

    def close(self) -> None:
        if self.doc is not None:
            self.doc.close()
        self.doc, self.path = None, None


def error_record(unit: str, path: str, page: int | None, reason: str) -> dict:
    return {"unit": unit, "input_path": path, "page_index": page, "reason": reason}


def result_record(unit: str, data: dict, settings: dict) -> dict:
    record = {"unit": unit}
    record.update((k, to_jsonable(data[k])) for k in KEYS)
    record.update((k, to_jsonable(data[k])) for k in EXTRA_KEYS if k in data)
    record["settings"] = settings
    return record


class OcrWorker:
    """map_batches' callable class: __init__ once per actor (models loaded), __call__ per batch.

    In: columns unit, path, page (-1: an image). Out: columns unit, ok, record (JSON text)."""

    def __init__(self, config, record_settings: dict):
        from ..pipeline import OCRPipeline

        self.pipeline = OCRPipeline(config)  # the driver's checked config: no YAML needed on the nodes
        self.reader = PageReader(config.limits, config.pdf_render_scale)
        self.settings = record_settings

    def _record(self, unit: str, path: str, page: int | None, data) -> dict:
        if isinstance(data, Exception):
            reason = str(data) if isinstance(data, InputError) else f"{path}: {type(data).__name__}: {data}"
            return error_record(unit, path, page, reason)
        data.update(input_path=path, page_index=page)
        return result_record(unit, data, self.settings)

    def _one(self, unit: str, path: str, page: int | None) -> dict:
        try:
            [(_, data)] = self.pipeline.ocr_many([(None, self.reader.page(path, page))])
        except Exception as exc:
            self.reader.close()
            data = exc
        return self._record(unit, path, page, data)

    def __call__(self, batch: dict) -> dict:
        units = [str(u) for u in batch["unit"]]
        paths = [str(p) for p in batch["path"]]
        pages = [None if int(p) < 0 else int(p) for p in batch["page"]]
        out: dict[int, dict] = {}

        def images():
            for i in range(len(units)):
                try:
                    yield i, self.reader.page(paths[i], pages[i])
                except Exception as exc:  # any failure of one page is that page's error
                    self.reader.close()
                    yield i, exc

        try:
            # closed before the fallback below, which uses the reader: the read-ahead thread is done
            with contextlib.closing(read_ahead(images())) as pages_in_order:
                for i, data in self.pipeline.ocr_many(pages_in_order):
                    out[i] = self._record(units[i], paths[i], pages[i], data)
        except Exception:  # detection failed on a page: the rest of the batch one by one
            for i in range(len(units)):
                if i not in out:
                    out[i] = self._one(units[i], paths[i], pages[i])
        return {
            "unit": units,
            "ok": [("reason" not in out[i]) for i in range(len(units))],
            "record": [json.dumps(out[i], ensure_ascii=False) for i in range(len(units))],
        }
