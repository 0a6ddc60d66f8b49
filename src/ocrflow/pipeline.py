"""OCRPipeline: detection -> crop -> recognition over every input a user can pass."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import config as cfg
from . import det, memory, rec, shapes, words
from .crop import crop_box, crop_frame
from .engine import hpip, load_model, parse_device
from .errors import ConfigError, InputError, ModelError
from .inputs import Page, expand, is_url, read
from .limits import Limits
from .models import resolve
from .result import OCRResult
from .timing import StageTimer, stage

log = logging.getLogger("ocrflow")

OnError = str | Callable[[str, Exception], None] | None


class OCRPipeline:
    """The General OCR pipeline. `predict` is a generator, safe to call from several threads."""

    # use_hpip: recognition pools the crops of consecutive pages of one predict() call. Fewer
    # partial batches and a finer sort by width mean less padding and fewer new input shapes for
    # OpenVINO to prepare. The exact path recognises page by page, as PaddleX does: the padding of
    # a batch changes its text.
    POOL_CROPS = 480
    POOL_BYTES = 128 << 20  # the pages held while their crops wait

    def __init__(self, config: cfg.PipelineConfig | None = None):
        self.config = config = config or cfg.PipelineConfig()
        if config.det_batch_size != 1:
            log.warning("det_batch_size=%s ignored: detection runs one image at a time", config.det_batch_size)
        det_device = parse_device(config.det_device or config.device)
        rec_device = parse_device(config.rec_device or config.device)
        det_files = resolve(config.det_model, "det")
        rec_files = resolve(config.rec_model, "rec")
        ds, rs = det_files.settings, rec_files.settings
        self.det_norm = det.norm_coefficients(ds.get("mean", det.IMAGENET_MEAN), ds.get("std", det.IMAGENET_STD),
                                              ds.get("scale", 1 / 255))
        self.det_model = self._load(det_files.onnx, det_device, "det", self.det_norm)
        self.rec_model = self._load(rec_files.onnx, rec_device, "rec", rec.NORM)
        _, self.rec_height, self.rec_width = rs.get("image_shape", (3, rec.REC_HEIGHT, rec.REC_WIDTH))
        # use_hpip: inputs padded up to a few shapes (shapes.py), and recognition crops without the
        # 320 px minimum width, which is mostly padding for short words.
        self.round_shape = shapes.bucket if config.use_hpip else None
        self.rec_min_width = rec.HPIP_MIN_WIDTH if config.use_hpip else self.rec_width
        self.pool_pages = config.use_hpip
        self.fast_crops = config.use_hpip  # bilinear affine warps (crop.crop_quad)
        chars = rec_files.chars
        if chars is None and "character" in self.rec_model.metadata:
            chars = tuple(self.rec_model.metadata["character"].splitlines())
        if not chars:
            raise ModelError(
                f"recognition model {config.rec_model!r} carries no dictionary: put inference.yml "
                "(PostProcess.character_dict) or dict.txt beside the .onnx file"
            )
        try:
            self.char_table = rec.char_table(list(chars), self._num_classes())
        except ValueError as exc:
            raise ModelError(f"recognition model {config.rec_model!r}: {exc}") from None

    def _load(self, path, device, task: str, norm):
        conf = self.config
        if not conf.use_hpip:
            return load_model(path, device, conf.cpu_threads, conf.backend)
        choice = hpip.choose(device)
        pixels = None
        if choice.backend == "openvino":
            if conf.process_tuning:
                hpip.widen_kernel_cache()
            pixels = norm  # uint8 pixels in, normalised inside the graph
        log.info("use_hpip: %s on %s: %s", Path(path).parent.name, device, choice.reason)
        return load_model(path, device, conf.cpu_threads, choice.backend, choice.precision,
                          shape_cache=hpip.SHAPE_CACHE[task], pixels=pixels)

    def _num_classes(self) -> int:
        last = self.rec_model.output_shape[-1]
        if isinstance(last, int) and last > 0:
            return last
        probe = np.zeros((self.rec_height, self.rec_width, 3), np.uint8)
        return int(self.rec_model.run(self._rec_input([probe])).shape[-1])

    def _rec_input(self, crops: list[np.ndarray]) -> np.ndarray:
        make = rec.batch_pixels if self.rec_model.takes_pixels else rec.batch_input
        return make(crops, self.rec_height, self.rec_min_width, self.round_shape)

    # -- settings ---------------------------------------------------------------------------
    # Settings predict() takes for one call (checked by the config's own rules).
    CALL_KEYS = {f.name for f in dataclasses.fields(det.DetParams)} | {"rec_batch_size", "pdf_render_scale",
                                                                        "return_word_box"}

    def call_config(self, overrides: dict) -> cfg.PipelineConfig:
        """The config with one call's `overrides` applied (None means: as configured)."""
        if not overrides:
            return self.config
        flat = {}
        for key, value in overrides.items():
            name = cfg.ALIASES.get(key, key)
            if name not in self.CALL_KEYS:
                raise ConfigError(f"unknown predict() argument {key!r}; allowed: {', '.join(sorted(self.CALL_KEYS))}")
            if value is not None:
                flat[name] = value
        return cfg.build(flat, self.config, where="predict()")

    def call_settings(self, overrides: dict) -> tuple[det.DetParams, int]:
        """Detection params and rec batch size for one call: the config with `overrides` applied."""
        conf = self.call_config(overrides)
        return conf.det, conf.rec_batch_size

    # -- stages -----------------------------------------------------------------------------
    def detect(
        self, image: np.ndarray, params: det.DetParams, timer: StageTimer | None = None
    ) -> tuple[np.ndarray, list[float]]:
        """Boxes (N x 4 x 2, reading order) and their scores for one BGR image."""
        h, w = image.shape[:2]
        with stage(timer, "det_pre"):
            make = det.preprocess_pixels if self.det_model.takes_pixels else det.preprocess
            x = make(image, params, self.det_norm, self.round_shape)
            xh, xw = det.input_size(h, w, params)
        with stage(timer, "det_model"):
            prob = self.det_model.run(x, copy=False)[0, 0, :xh, :xw]  # read before this thread's next run
        with stage(timer, "det_post"):
            boxes, scores = det.postprocess(prob, h, w, params)
            return det.sort_boxes(boxes, scores)

    def recognize(
        self, crops: list[np.ndarray], batch_size: int = 6, timer: StageTimer | None = None,
        alignment: list | None = None,
    ) -> list[tuple[str, float]]:
        """(text, score) for each crop, in the order given. With a list as `alignment`, it is
        filled with each crop's (kept CTC columns, output columns covering the crop)."""
        out: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        if alignment is not None:
            alignment[:] = [([], 0.0)] * len(crops)
        for batch in rec.batch_plan(crops, batch_size):
            with stage(timer, "rec_pre"):
                x = self._rec_input([crops[i] for i in batch])
            with stage(timer, "rec_model"):
                probs = self.rec_model.run(x, copy=False)  # decoded before the next batch runs
            with stage(timer, "rec_decode"):
                for i, decoded in zip(batch, rec.ctc_decode(probs, self.char_table)):
                    out[i] = decoded
                if alignment is not None:
                    for i, cols, share in zip(batch, rec.ctc_columns(probs), self._input_shares(batch, crops)):
                        alignment[i] = (cols, probs.shape[1] * share)
        return out

    def _input_shares(self, batch: list[int], crops: list[np.ndarray]) -> list[float]:
        """The share of the batch's input width each crop fills: PaddleX's wh_ratio / max_wh_ratio
        on the exact path, the resized width over the padded one under use_hpip (bucketed widths)."""
        if self.round_shape is None:
            ratios = [crops[i].shape[1] / crops[i].shape[0] for i in batch]
            widest = max(self.rec_min_width / self.rec_height, *ratios)
            return [r / widest for r in ratios]
        widths, width = rec._batch_widths([crops[i] for i in batch], self.rec_height, self.rec_min_width,
                                          self.round_shape)
        return [w / width for w in widths]

    def ocr(
        self,
        image: np.ndarray,
        params: det.DetParams | None = None,
        rec_batch_size: int | None = None,
        timer: StageTimer | None = None,
    ) -> dict:
        """One BGR image -> dt_polys, dt_scores, rec_text, rec_score."""
        [(_, data)] = self.ocr_many([(None, image)], params, rec_batch_size, timer)
        return data

    def ocr_many(
        self,
        items: Iterable[tuple[Any, np.ndarray | Exception]],
        params: det.DetParams | None = None,
        rec_batch_size: int | None = None,
        timer: StageTimer | None = None,
        word_boxes: bool | None = None,
    ) -> Iterator[tuple[Any, dict | Exception]]:
        """ocr() over (key, image) pairs, yielding (key, result) in the same order.

        An Exception in place of an image is passed through in its place. Under use_hpip the crops
        of consecutive pages are recognised together, up to POOL_CROPS crops or POOL_BYTES of
        pages held (see the class constants), so results come in groups; an error raised while
        reading or detecting is raised after the results of the pages before it. word_boxes
        (default: the config's return_word_box) adds text_word and text_word_region (words.py).
        """
        params = params or self.config.det
        batch_size = rec_batch_size or self.config.rec_batch_size
        word_boxes = self.config.return_word_box if word_boxes is None else word_boxes
        pending: deque[tuple[Any, np.ndarray, list[float], list[np.ndarray]]] = deque()
        held_crops = held_bytes = 0

        def flush() -> Iterator[tuple[Any, dict]]:
            nonlocal held_crops, held_bytes
            alignment = [] if word_boxes else None
            texts = self.recognize([c for *_, crops in pending for c in crops], batch_size, timer, alignment)
            held_crops = held_bytes = 0
            start = 0
            while pending:  # each page let go of as it is handed over
                key, boxes, scores, crops = pending.popleft()
                mine = texts[start : start + len(crops)]
                data = {"dt_polys": boxes, "dt_scores": scores,
                        "rec_text": [t for t, _ in mine], "rec_score": [s for _, s in mine]}
                if word_boxes:
                    data.update(_word_boxes(boxes, data["rec_text"], alignment[start : start + len(crops)]))
                start += len(crops)
                if self.config.process_tuning:
                    memory.after_prediction()
                yield key, data

        items = iter(items)
        while True:
            try:
                item = next(items, _END)
                if item is _END:
                    break
                key, image = item
                if not isinstance(image, Exception):
                    boxes, scores = self.detect(image, params, timer)
                    with stage(timer, "crop"):
                        crops = [crop_box(image, box, self.fast_crops) for box in boxes]
            except Exception:
                yield from flush()  # the pages before the failure are not lost
                raise
            if isinstance(image, Exception):
                yield from flush()
                yield key, image
                continue
            pending.append((key, boxes, scores, crops))
            held_crops += len(crops)
            held_bytes += image.nbytes
            if not self.pool_pages or held_crops >= self.POOL_CROPS or held_bytes >= self.POOL_BYTES:
                yield from flush()
        yield from flush()

    # -- public API -------------------------------------------------------------------------
    def pages(
        self, x, limits: Limits | None = None, cancel: threading.Event | None = None, scale: float | None = None
    ) -> Iterator[tuple[str, Page | Exception]]:
        """(label, page or the InputError that stopped that source) for every page of the input."""
        limits = limits or self.config.limits
        scale = scale or self.config.pdf_render_scale
        for source in expand(x):
            try:
                for page in read(source, limits, scale, cancel):
                    yield source.label, page
            except InputError as exc:
                yield source.label, exc

    def predict(
        self,
        x,
        on_error: OnError = None,
        *,
        timer: StageTimer | None = None,
        limits: Limits | None = None,
        cancel: threading.Event | None = None,
        **overrides,
    ) -> Iterator[OCRResult]:
        """OCR every image / PDF page of x, yielding one OCRResult each.

        x: a numpy array, path, URL, folder, {"img": ...} dict, bytes, or a list of these.
        overrides: limit_side_len, limit_type, max_side_limit, thresh, box_thresh, unclip_ratio,
        rec_batch_size, pdf_render_scale, return_word_box, for this call only.
        on_error: what to do with an input that cannot be read: "raise", "skip" (log a warning and
        go on), or a function(label, error). Default: raise for a single input, skip in a batch.
        timer: collects the seconds spent in each stage (benchmarks/run_ocrflow.py).
        limits: the input limits of this call (default: the config's; limits.Limits).
        cancel: a threading.Event; once set, reading stops (a PDF page being rendered is abandoned
        and its renderer killed) and the generator raises ocrflow.Cancelled.
        """
        # Settings are checked now, not at the first next(): a typo fails where it is written.
        conf = self.call_config(overrides)
        if on_error not in (None, "raise", "skip") and not callable(on_error):
            raise ConfigError(f"on_error must be 'raise', 'skip' or a function, got {on_error!r}")
        many = isinstance(x, (list, tuple)) or (
            isinstance(x, (str, os.PathLike)) and not is_url(os.fspath(x)) and os.path.isdir(x)
        )
        if limits is not None and not isinstance(limits, Limits):
            raise ConfigError(f"limits must be an ocrflow.limits.Limits, got {type(limits).__name__}")
        pages = self.pages(x, limits, cancel, conf.pdf_render_scale)
        return self._run(pages, conf.det, conf.rec_batch_size, on_error or ("skip" if many else "raise"), timer,
                         conf.return_word_box)

    def _run(
        self, pages: Iterator, params: det.DetParams, batch_size: int, policy: OnError, timer: StageTimer | None,
        word_boxes: bool | None,
    ) -> Iterator[OCRResult]:
        items = (((label, page), page if isinstance(page, Exception) else page.image)
                 for label, page in _timed(pages, timer))
        for (label, page), data in self.ocr_many(items, params, batch_size, timer, word_boxes):
            if isinstance(data, Exception):
                if policy == "raise":
                    raise data
                if callable(policy):
                    policy(label, data)
                else:
                    log.warning("skipped %s", data)
                continue
            data.update(input_path=page.input_path, page_index=page.page_index)
            yield OCRResult(data, image=page.image, name=page.name, suffix=page.suffix)

    __call__ = predict


def _timed(items: Iterator, timer: StageTimer | None) -> Iterator:
    """items, with the time spent producing each (reading, decoding) counted as "decode"."""
    while True:
        with stage(timer, "decode"):
            item = next(items, _END)
        if item is _END:
            return
        yield item


_END = object()


def _word_boxes(boxes: np.ndarray, texts: list[str], alignment: list) -> dict:
    """One page's PaddleX text_word / text_word_region, and `_words`: each line's (word, quad) as the
    exports place them, its box mapped back through the crop's geometry (words.py)."""
    text_word, regions, placed = [], [], []
    for box, text, (cols, columns) in zip(boxes, texts, alignment):
        contents, word_boxes = words.paddlex_word_boxes(text, box, columns, cols)
        text_word.append(contents)
        regions.append([np.asarray(b, np.int32) for b in word_boxes])
        frame = crop_frame(box)
        spans = words.word_spans(text, cols, columns, frame.read_width)
        placed.append([(w, q) for (w, _, _), q in zip(spans, frame.word_quads(spans))])
    return {"text_word": text_word, "text_word_region": regions, "_words": placed}


def create_pipeline(
    pipeline: str = "OCR", device: str | None = None, use_hpip: bool = False, **settings
) -> OCRPipeline:
    """Build the OCR pipeline from its name ('OCR') or a pipeline YAML path.

    device ('cpu', 'gpu', 'gpu:N') overrides the YAML's devices; further keyword settings
    (det_model, rec_model, rec_batch_size, limit_side_len, ...) override the YAML's Pipeline keys.
    """
    conf, _ = cfg.load(pipeline)
    if device is not None:
        settings.update(device=device, det_device=None, rec_device=None)
    if use_hpip:
        settings["use_hpip"] = True
    return OCRPipeline(cfg.build(settings, conf, where="create_pipeline()"))
