"""OCRPipeline: detection -> crop -> recognition over every input a user can pass."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from . import config as cfg
from . import det, memory, rec, shapes, words
from .ahead import read_ahead
from .crop import crop_box, crop_frame
from .engine import calibrate, hpip, load_model, parse_device
from .errors import ConfigError, InputError
from .inputs import Page, expand, is_url, read
from .limits import Limits
from .models import MODELS, resolve
from .result import OCRResult
from .stages import DocOrientation, LineOrientation, TextDetector, TextRecognizer, Unwarper
from .timing import StageTimer, stage

log = logging.getLogger("ocrflow")

OnError = str | Callable[[str, Exception], None] | None


class OCRPipeline:
    """The General OCR pipeline: stages (ocrflow.stages) composed. `predict` is a generator, safe
    to call from several threads.

    detector, recognizer: the TextDetector and TextRecognizer; the optional stages (page
    orientation, unwarping, text line orientation) are built on first use (`stage(name)`).
    profile: how the models run (engine/hpip.py Profile: exact, or use_hpip's knobs).
    """

    # Under profile.pool_pages, recognition pools the crops of consecutive pages of one predict()
    # call. Fewer partial batches and a finer sort by width mean less padding and fewer new input
    # shapes for OpenVINO to prepare. The exact path recognises page by page, as PaddleX does: the
    # padding of a batch changes its text.
    POOL_CROPS = 480
    POOL_BYTES = 128 << 20  # the pages held while their crops wait

    OPTIONAL_STAGES = {  # name -> (switch, model setting, task)
        "doc_ori": ("use_doc_orientation_classify", "doc_orientation_classify_model", "doc_ori"),
        "unwarp": ("use_doc_unwarping", "doc_unwarping_model", "unwarp"),
        "textline": ("use_textline_orientation", "textline_orientation_model", "cls"),
    }

    def __init__(self, config: cfg.PipelineConfig | None = None):
        self.config = config = config or cfg.PipelineConfig()
        if config.det_batch_size != 1:
            log.warning("det_batch_size=%s ignored: detection runs one image at a time", config.det_batch_size)
        if config.process_tuning:
            memory.small_pages()
        if config.process_tuning and config.cpu_threads:
            # OpenCV's pool (resizes, warps) otherwise takes every core: a 1-thread batch worker
            # would take two, and workers sharing a machine would crowd each other
            import cv2

            cv2.setNumThreads(config.cpu_threads)
        self.det_device = det_device = parse_device(config.det_device or config.device)
        rec_device = parse_device(config.rec_device or config.device)
        prof = hpip.profile(config.use_hpip, det_device, config.backend, config.hpip_profile)
        det_files = resolve(config.det_model, "det")
        rec_files = resolve(config.rec_model, "rec")
        if config.use_hpip:  # knobs a model keeps within the accuracy budget, unless the user set them
            for files in (det_files, rec_files):
                spec = MODELS.get(files.name)
                keep = {k: v for k, v in (spec.hpip if spec else {}).items() if k not in (config.hpip_profile or {})}
                if keep:
                    prof = dataclasses.replace(prof, **keep, reason=f"{prof.reason}; {files.name} keeps {keep}")
        self.profile = prof
        if config.use_hpip or config.hpip_profile:
            knobs = ", ".join(f"{k}={getattr(prof, k)}" for k in hpip.KNOBS)
            log.info("inference profile: %s (%s)", knobs, prof.reason)
        self.calibration: dict[str, calibrate.Calibration] = {}  # the measured backend per model
        round_shape = shapes.bucket if prof.shape_buckets else None
        norm = TextDetector.norm_of(det_files.settings)
        self.detector = TextDetector(self._load(det_files.onnx, det_device, "det", norm), config.det, norm,
                                     round_shape, det_files.name)
        _, height, width = rec_files.settings.get("image_shape", (3, rec.REC_HEIGHT, rec.REC_WIDTH))
        self.recognizer = TextRecognizer(
            self._load(rec_files.onnx, rec_device, "rec", rec.NORM, height), rec_files.chars, height, width,
            prof.rec_min_width, round_shape, config.rec_batch_size, config.rec_model)
        self._stages: dict[str, Any] = {}
        self._stage_lock = threading.Lock()
        for name, (switch, *_) in self.OPTIONAL_STAGES.items():
            if getattr(config, switch):
                self.stage(name)  # a stage switched on in the config is loaded (and checked) now

    # The models and settings of the two core stages, under the names earlier versions used.
    det_model = property(lambda self: self.detector.model)
    rec_model = property(lambda self: self.recognizer.model)
    det_norm = property(lambda self: self.detector.norm)
    char_table = property(lambda self: self.recognizer.char_table)
    rec_height = property(lambda self: self.recognizer.height)
    rec_width = property(lambda self: self.recognizer.width)

    def _load(self, path, device, task: str, norm=None, rec_height: int = rec.REC_HEIGHT):
        conf, prof = self.config, self.profile
        backend, precision = prof.backend, prof.precision
        streams = prof.rec_streams if task == "rec" else 1
        if calibrate.MEASURE in (backend, precision) and device.kind == "gpu":  # rec on a GPU, det on the CPU
            backend, precision, streams = "onnxruntime", "f32", 1
        # use_hpip measures its candidates; the exact path on the CPU with backend auto, the f32 ones
        if calibrate.MEASURE in (backend, precision, streams) or (backend == "auto" and device.kind == "cpu"):
            def load(cand):
                return load_model(path, device, conf.cpu_threads, cand.backend, cand.precision, streams=cand.streams)

            chosen = calibrate.choose(path, task, device, conf.cpu_threads, load, backend, precision, norm, rec_height,
                                      streams)
            if conf.use_hpip or chosen.ms:  # the exact path says so where there was a choice
                log.info("%s %s model %s: %s", "use_hpip" if conf.use_hpip else "backend auto", task,
                         calibrate.model_name(path), chosen.summary())
            self.calibration[task] = chosen
            backend, precision, streams = chosen.backend, chosen.precision, chosen.streams
        pixels = norm if prof.pixels_in_graph and norm is not None and backend == "openvino" else None
        if backend == "openvino" and conf.use_hpip:
            if conf.process_tuning:
                hpip.widen_kernel_cache()
            else:
                hpip.hint_process_tuning()
        return load_model(path, device, conf.cpu_threads, backend, precision,
                          shape_cache=hpip.SHAPE_CACHE.get(task) if prof.shape_buckets else None, pixels=pixels,
                          streams=streams, logits=prof.det_logits and task == "det",
                          bf16_probs=prof.rec_bf16_probs and task == "rec" and precision == "bf16",
                          deconv_as_conv=prof.det_deconv_as_conv and task == "det" and precision == "bf16")

    def stage(self, name: str):
        """The optional stage `name` (doc_ori, unwarp, textline), loaded on first use."""
        built = self._stages.get(name)
        if built is not None:
            return built
        with self._stage_lock:
            if name not in self._stages:
                _, setting, task = self.OPTIONAL_STAGES[name]
                ref = getattr(self.config, setting)
                files = resolve(ref, task)
                # f32 on the configured backend whatever use_hpip's profile says: these models are small
                model = load_model(files.onnx, self.det_device, self.config.cpu_threads, self.config.backend)
                if name == "doc_ori":
                    self._stages[name] = DocOrientation(model, ref)
                elif name == "unwarp":
                    self._stages[name] = Unwarper(model, ref)
                else:
                    # PaddleX's PP-LCNet line classifiers take 80 x 160; PaddleOCR 2.x's, 48 x 192
                    # (stages/orientation.py)
                    kind = "lcnet" if "LCNet" in f"{files.name} {files.settings.get('model_name', '')}" else "v2"
                    self._stages[name] = LineOrientation(model, kind, self.config.textline_orientation_batch_size,
                                                         name=ref)
                log.info("stage %s: %s", name, files.onnx)
            return self._stages[name]

    # -- settings ---------------------------------------------------------------------------
    # Settings predict() takes for one call (checked by the config's own rules).
    CALL_KEYS = {f.name for f in dataclasses.fields(det.DetParams)} | {
        "rec_batch_size", "pdf_render_scale", "return_word_box",
        "use_doc_orientation_classify", "use_doc_unwarping", "use_textline_orientation",
        "textline_orientation_verify"}

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
        self, image: np.ndarray, params: det.DetParams | None = None, timer: StageTimer | None = None
    ) -> tuple[np.ndarray, list[float]]:
        """Boxes (N x 4 x 2, reading order) and their scores for one BGR image (the detector stage)."""
        return self.detector(image, params, timer)

    def recognize(
        self, crops: list[np.ndarray], batch_size: int = 6, timer: StageTimer | None = None,
        alignment: list | None = None,
    ) -> list[tuple[str, float]]:
        """(text, score) for each crop, in the order given (the recognizer stage)."""
        return self.recognizer(crops, batch_size, timer, alignment)

    def preprocess(self, image: np.ndarray, conf: cfg.PipelineConfig, timer: StageTimer | None = None
                   ) -> tuple[np.ndarray, dict | None]:
        """The page the text is read from (turned upright, unwarped, as switched on) and PaddleX's
        doc_preprocessor_res for it (None when neither stage runs)."""
        if not (conf.use_doc_orientation_classify or conf.use_doc_unwarping):
            return image, None
        angle = -1
        if conf.use_doc_orientation_classify:
            angle, image = self.stage("doc_ori")(image, timer)
        if conf.use_doc_unwarping:
            image = self.stage("unwarp")(image, timer)
        settings = {"use_doc_orientation_classify": conf.use_doc_orientation_classify,
                    "use_doc_unwarping": conf.use_doc_unwarping}
        return image, {"model_settings": settings, "angle": angle}

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
        conf: cfg.PipelineConfig | None = None,
    ) -> Iterator[tuple[Any, dict | Exception]]:
        """ocr() over (key, image) pairs, yielding (key, result) in the same order.

        An Exception in place of an image is passed through in its place. Under the profile's
        pool_pages the crops of consecutive pages are recognised together, up to POOL_CROPS crops
        or POOL_BYTES of pages held (see the class constants), so results come in groups; an
        error raised while reading or detecting is raised after the results of the pages before
        it. word_boxes (default: the config's return_word_box) adds text_word and
        text_word_region (words.py). conf: the call's settings (which optional stages run); a
        result whose page was changed by them carries it as "_page".
        """
        conf = conf or self.config
        params = params or conf.det
        batch_size = rec_batch_size or conf.rec_batch_size
        word_boxes = conf.return_word_box if word_boxes is None else word_boxes
        # (key, result so far, crops, {line: its crop the other way round, to read both ways})
        pending: deque[tuple[Any, dict, list[np.ndarray], dict[int, np.ndarray]]] = deque()
        held_crops = held_bytes = 0

        def flush() -> Iterator[tuple[Any, dict]]:
            nonlocal held_crops, held_bytes
            alignment = [] if word_boxes else None
            texts = self.recognize([c for _, _, crops, _ in pending for c in crops], batch_size, timer, alignment)
            self._keep_better_readings(pending, texts, alignment, batch_size, timer)
            held_crops = held_bytes = 0
            start = 0
            while pending:  # each page let go of as it is handed over
                key, data, crops, _ = pending.popleft()
                mine = texts[start : start + len(crops)]
                data.update(rec_text=[t for t, _ in mine], rec_score=[s for _, s in mine])
                if word_boxes:
                    data.update(_word_boxes(data["dt_polys"], data["rec_text"], alignment[start : start + len(crops)],
                                            data.get("textline_orientation_angles")))
                start += len(crops)
                if self.config.process_tuning:
                    memory.after_prediction()
                yield key, data

        # Where pages are pooled for recognition (use_hpip) and more than one thread is allowed, the
        # next page's preprocessing and detection model run in a thread while this one finds the
        # boxes and crops the lines of this page (PP-OCRv6_tiny 0-6% faster). Not on the exact path,
        # where each page's recognition would run beside the next page's detection (9% slower).
        ahead = self.profile.pool_pages and conf.cpu_threads != 1

        def located() -> Iterator:
            for key, image in items:
                if isinstance(image, Exception):
                    yield key, image, None, None, None
                    continue
                page, doc_res = self.preprocess(image, conf, timer)
                yield key, image, page, doc_res, self.detector.score_map(page, params, timer, own=ahead)

        maps = read_ahead(located()) if ahead else located()
        try:  # the thread stops, and lets go of its input, when this generator is closed
            while True:
                try:
                    with stage(timer if ahead else None, "det_wait"):
                        item = next(maps, _END)
                    if item is _END:
                        break
                    key, image, page, doc_res, score_map = item
                    if not isinstance(image, Exception):
                        data, crops, others = self._lines(page, doc_res, score_map, conf, params, timer)
                except Exception:
                    yield from flush()  # the pages before the failure are not lost
                    raise
                if isinstance(image, Exception):
                    yield from flush()
                    yield key, image
                    continue
                pending.append((key, data, crops, others))
                held_crops += len(crops) + len(others)
                held_bytes += page.nbytes
                if not self.profile.pool_pages or held_crops >= self.POOL_CROPS or held_bytes >= self.POOL_BYTES:
                    yield from flush()
            yield from flush()
        finally:
            maps.close()

    def _lines(self, page: np.ndarray, doc_res: dict | None, score_map: np.ndarray, conf: cfg.PipelineConfig,
               params: det.DetParams, timer: StageTimer | None) -> tuple[dict, list, dict]:
        """A detected page's result so far, its lines' crops (turned upright where the text line
        stage runs) and the crops that stage doubts, the other way round, to read both ways."""
        boxes, scores = self.detector.boxes(score_map, page.shape, params, timer)
        with stage(timer, "crop"):
            crops = [crop_box(page, box, self.profile.fast_crops) for box in boxes]
        data = {"dt_polys": boxes, "dt_scores": scores}
        if doc_res is not None:
            data.update(doc_preprocessor_res=doc_res, _page=page)
        others: dict[int, np.ndarray] = {}
        if conf.use_textline_orientation:
            data["textline_orientation_angles"], crops, others = self.stage("textline").orient(
                crops, conf.textline_orientation_verify, timer)
        return data, crops, others

    def _keep_better_readings(self, pending, texts: list, alignment: list | None, batch_size: int,
                              timer: StageTimer | None) -> None:
        """Text line orientation's verification: read the lines it doubts the other way round too,
        and where that reading scores clearly higher keep it (text, score, word columns) and flip
        the angle."""
        where, crops, start = [], [], 0
        for n, (_, _, page_crops, others) in enumerate(pending):
            for i, crop in others.items():
                where.append((n, i, start + i))
                crops.append(crop)
            start += len(page_crops)
        if not crops:
            return
        other_alignment = [] if alignment is not None else None
        readings = self.recognize(crops, batch_size, timer, other_alignment)
        for k, ((n, i, j), reading) in enumerate(zip(where, readings)):
            if reading[1] > texts[j][1] + LineOrientation.VERIFY_MARGIN:
                texts[j] = reading
                if alignment is not None:
                    alignment[j] = other_alignment[k]
                pending[n][1]["textline_orientation_angles"][i] ^= 1

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
        for name, (switch, *_) in self.OPTIONAL_STAGES.items():
            if getattr(conf, switch):
                self.stage(name)  # a model that cannot be had fails here, where the switch is written
        # the next page is read and decoded while the models run on this one
        pages = read_ahead(self.pages(x, limits, cancel, conf.pdf_render_scale))
        return self._run(pages, conf, on_error or ("skip" if many else "raise"), timer)

    def _run(self, pages: Iterator, conf: cfg.PipelineConfig, policy: OnError, timer: StageTimer | None
             ) -> Iterator[OCRResult]:
        items = (((label, page), page if isinstance(page, Exception) else page.image)
                 for label, page in _timed(pages, timer))
        for (label, page), data in self.ocr_many(items, timer=timer, conf=conf):
            if isinstance(data, Exception):
                if policy == "raise":
                    raise data
                if callable(policy):
                    policy(label, data)
                else:
                    log.warning("skipped %s", data)
                continue
            data.update(input_path=page.input_path, page_index=page.page_index)
            yield OCRResult(data, image=data.get("_page", page.image), name=page.name, suffix=page.suffix,
                            input_img=page.image)

    __call__ = predict


def _timed(items: Iterator, timer: StageTimer | None) -> Iterator:
    """items, with the time spent waiting for each (reading and decoding not done ahead, read_ahead)
    counted as "decode"."""
    while True:
        with stage(timer, "decode"):
            item = next(items, _END)
        if item is _END:
            return
        yield item


_END = object()


def _word_boxes(boxes: np.ndarray, texts: list[str], alignment: list, angles: list[int] | None = None) -> dict:
    """One page's PaddleX text_word / text_word_region, and `_words`: each line's (word, quad) as the
    exports place them, its box mapped back through the crop's geometry (words.py). A line the
    text line stage turned (angle 1) is read from its box's far corner (PaddleX's own text_word_region
    does not know of the turn, and is kept as it gives it)."""
    text_word, regions, placed = [], [], []
    for i, (box, text, (cols, columns)) in enumerate(zip(boxes, texts, alignment)):
        contents, word_boxes = words.paddlex_word_boxes(text, box, columns, cols)
        text_word.append(contents)
        regions.append([np.asarray(b, np.int32) for b in word_boxes])
        frame = crop_frame(box, turned=bool(angles and angles[i] == 1))
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
