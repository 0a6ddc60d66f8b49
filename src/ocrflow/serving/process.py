"""The synchronous work of one /ocr request (run in an inference thread, never on the event loop):
file text -> bytes -> the pipeline's predict() (the library's input layer, with the service's limits
and the request's cancel event) -> the `result` of the envelope."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import threading
import urllib.parse
from collections.abc import Iterator

import cv2
import numpy as np

from ..draw import draw_ocr
from ..errors import Cancelled, ConfigError, InputError
from ..fetch import FetchError
from ..inputs import FOLDER_SUFFIXES, Source, is_pdf
from .settings import ServeSettings

PDF, IMAGE = 0, 1
IMAGE_SUFFIXES = tuple(FOLDER_SUFFIXES - {".pdf"})
_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):")  # Base64 never holds ':'
_DATA_URL = re.compile(r"^data:([^;,]*)(;[^,]*)?,", re.I)


class ClientError(Exception):
    """Something the client got wrong (or a limit it hit): answered with status and message."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def classify(text: str) -> tuple[str, str, str | None]:
    """('url', url, None) | ('data', base64 payload, media type) | ('base64', text, None).

    Any other scheme (file:, ftp:, gopher: ...) is refused here, before anything is opened."""
    m = _SCHEME.match(text[:64])
    if not m:
        return "base64", text, None
    scheme = m.group(1).lower()
    if scheme in ("http", "https"):
        return "url", text.strip(), None
    if scheme == "data":
        d = _DATA_URL.match(text[:256])
        if not d or "base64" not in (d.group(2) or "").lower():
            raise ClientError(422, "a data: URL must be Base64 encoded (data:<type>;base64,...)")
        return "data", text[d.end():], d.group(1).lower() or None
    raise ClientError(422, f"only http and https URLs (or Base64 file content) are accepted, not {scheme}: URLs")


def file_type_from_url(url: str) -> int | None:
    path = urllib.parse.urlsplit(url).path.lower()
    if path.endswith(".pdf"):
        return PDF
    if path.endswith(IMAGE_SUFFIXES):
        return IMAGE
    return None


def file_type_from_media_type(media_type: str | None) -> int | None:
    if media_type == "application/pdf":
        return PDF
    if media_type and media_type.startswith("image/"):
        return IMAGE
    return None


def decode_base64(text: str) -> bytes:
    """Standard Base64 (line breaks allowed, padding optional); anything else is a 422."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    compact = re.sub(r"\s+", "", text)
    compact += "=" * (-len(compact) % 4) if len(compact) % 4 != 1 else ""
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ClientError(422, f"file is neither an http(s) URL nor valid Base64 ({exc})") from None


def encode_picture(image: np.ndarray, polys: np.ndarray, texts: list[str], settings: ServeSettings) -> str:
    """The side-by-side picture as Base64 JPEG, fitting max_output_img_size. Inputs whose picture
    would not fit are drawn at the output size (the same drawing, without rasterising a picture
    bigger than what is sent)."""
    max_w, max_h = settings.max_output_img_size
    h, w = image.shape[:2]
    scale = min(1.0, max_w / (2 * w), max_h / h)
    if scale < 1.0:
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        quads = np.asarray(polys, np.float32).reshape(-1, 4, 2) * np.float32([nw / w, nh / h])
        picture = draw_ocr(small, quads, texts)
    else:
        picture = draw_ocr(image, polys, texts)
    ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality])
    if not ok:
        raise RuntimeError("JPEG encoding of the result picture failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _result(res, settings: ServeSettings) -> dict:
    image = res.page_img  # the page the polygons are on (turned upright when useDocOrientationClassify)
    polys = np.asarray(res["dt_polys"]).reshape(-1, 4, 2)
    texts = [
        {"poly": poly.astype(int).tolist(), "text": str(text), "score": float(score)}
        for poly, text, score in zip(polys, res["rec_text"], res["rec_score"])
    ]
    picture = encode_picture(image, polys, list(res["rec_text"]), settings)
    return {"texts": texts, "image": picture}


def call_overrides(params) -> dict:
    """predict() settings from a request's inferenceParams (schema.InferenceParams, or None)."""
    if params is None:
        return {}
    overrides = {"limit_side_len": params.maxLongSide, "limit_type": "max"} if params.maxLongSide else {}
    for field, key in (("useDocOrientationClassify", "use_doc_orientation_classify"),
                       ("useDocUnwarping", "use_doc_unwarping"),
                       ("useTextlineOrientation", "use_textline_orientation")):
        if getattr(params, field) is not None:
            overrides[key] = getattr(params, field)
    return overrides


def _pages(pipeline, settings: ServeSettings, payload: bytes | str, file_type: int, params: dict,
           cancel: threading.Event, **extra) -> Iterator:
    """(file bytes, each OCRResult) of a request, its errors as ClientErrors. params: call_overrides()."""
    data = decode_base64(payload) if isinstance(payload, str) else payload
    if not data:
        raise ClientError(422, "file is empty")
    overrides = dict(params)
    pdf = is_pdf(data)
    if file_type == PDF and not pdf:
        raise ClientError(422, f"fileType is 0 (PDF) but the file is not a PDF (first bytes {data[:8]!r})")
    if file_type == IMAGE and pdf:
        raise ClientError(422, "fileType is 1 (image) but the file is a PDF: send fileType 0")
    if settings.pdf_render_scale is not None:
        overrides["pdf_render_scale"] = settings.pdf_render_scale
    try:
        # The bytes are in memory already, bounded by max_body_bytes (Base64) or url_max_bytes (fetched).
        limits = dataclasses.replace(settings.input_limits(), max_bytes=max(settings.max_body_bytes,
                                                                            settings.url_max_bytes))
        source = Source("bytes", data, "file")
        for res in pipeline.predict(source, on_error="raise", limits=limits, cancel=cancel, **overrides, **extra):
            if cancel.is_set():
                raise Cancelled("the request ran out of time")
            yield data, res
    except FetchError as exc:
        raise ClientError(exc.status, str(exc)) from None
    except (InputError, ConfigError) as exc:
        raise ClientError(422, str(exc)) from None


def run(pipeline, settings: ServeSettings, payload: bytes | str, file_type: int, params: dict,
        cancel: threading.Event | None = None) -> dict:
    """payload: fetched bytes, or Base64 text. Returns {ocrResults, dataInfo}."""
    results, pages = [], []
    for _, res in _pages(pipeline, settings, payload, file_type, params, cancel or threading.Event()):
        h, w = res.input_img.shape[:2]
        pages.append({"width": int(w), "height": int(h)})
        results.append(_result(res, settings))
    if file_type == PDF:
        return {"ocrResults": results, "dataInfo": {"numPages": len(pages), "pages": pages, "type": "pdf"}}
    return {"ocrResults": results, "dataInfo": {**pages[0], "type": "image"}}


def run_pdf(pipeline, settings: ServeSettings, payload: bytes | str, file_type: int, params: dict,
            cancel: threading.Event | None = None) -> bytes:
    """The searchable PDF of a request (POST /ocr/pdf): a PDF keeps the pages read, an image becomes
    a page; each with the recognised text as an invisible layer."""
    from ..export import SearchablePdf

    writer = None
    try:
        for data, res in _pages(pipeline, settings, payload, file_type, params, cancel or threading.Event(),
                                return_word_box=True):
            if writer is None:
                writer = SearchablePdf(None, data if file_type == PDF else None, only_added=True)
            writer.add(res)
    except (InputError, IndexError) as exc:  # pikepdf refusing a PDF pdfium read, or counting its pages otherwise
        raise ClientError(422, f"file: cannot add a text layer to this PDF ({exc})") from None
    return writer.to_bytes()
