"""Everything a user can pass to `predict` -> a stream of pages (BGR uint8 arrays).

Accepted: numpy arrays (BGR; gray and BGRA converted), PIL images, bytes, file paths, http(s)
URLs, folders (recursive, sorted), dicts {"img": ...}, lists of any of these, and PDFs (one page
at a time). Files are decoded by content, not by extension.

This is the one input layer of the library and the service: every read goes through `read()` under
one `Limits` (limits.py), URLs through fetch.py's guard, PDFs through pdf.py's child process, and
every failure of a decoder is an InputError that names the input.
"""

from __future__ import annotations

import io
import os
import re
import threading
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import fetch, pdf
from .errors import Cancelled, InputError
from .limits import MAX_PIXELS, Limits

FOLDER_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pdf"}
# The raster formats Pillow may open. Never EPS/PS (Pillow runs Ghostscript on them, unbounded) or
# the other formats that call out to programs or plugins.
PILLOW_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "TIFF", "WEBP", "GIF", "PPM", "JPEG2000", "ICO", "TGA")
# warnings.catch_warnings is process-wide and not thread-safe: our uses of it take turns, so that
# threads never restore each other's filters (a broken file's complaints become its InputError).
_WARNINGS = threading.Lock()
PDF_RENDER_SCALE = 2.0  # pixels per PDF point / 72 dpi: 2.0 = 144 dpi, PaddleX's zoom


@dataclass
class Page:
    """One image to read: where it came from and its pixels."""

    input_path: str | None
    page_index: int | None
    image: np.ndarray
    name: str  # file-name stem for saved outputs
    suffix: str = ".png"


@dataclass(frozen=True)
class Source:
    """One item of the input before it is read: a path, URL, array or bytes."""

    kind: str  # "path", "url", "array", "bytes", "error" (value: the InputError to raise)
    value: object
    label: str  # what error messages call it


def is_url(text: str) -> bool:
    parts = urllib.parse.urlparse(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _failed(label: str, message: str) -> Source:
    """An item that cannot be read: read() raises its InputError in its place in the batch."""
    return Source("error", InputError(message), label)


def expand(x, _counter: list[int] | None = None) -> Iterator[Source]:
    """Flatten the input into sources; folders are walked recursively in sorted order. An item that
    cannot be read becomes a source whose read() raises its InputError, so a batch goes on."""
    counter = _counter if _counter is not None else [0]
    if isinstance(x, Source):  # read as it is, under its own label (the service's "file")
        yield x
    elif isinstance(x, dict):
        if set(x) != {"img"}:
            yield _failed("dict", f"a dict input must have exactly the key 'img', got keys {sorted(map(str, x))}")
            return
        yield from expand(x["img"], counter)
    elif isinstance(x, (list, tuple)):
        for item in x:
            yield from expand(item, counter)
    elif isinstance(x, np.ndarray):
        counter[0] += 1
        yield Source("array", x, f"array #{counter[0]}")
    elif isinstance(x, (bytes, bytearray, memoryview)):
        counter[0] += 1
        yield Source("bytes", bytes(x), f"bytes #{counter[0]}")
    elif isinstance(x, (str, os.PathLike)):
        text = os.fspath(x)
        if isinstance(x, str) and is_url(text):
            yield Source("url", text, text)
            return
        path = Path(text).expanduser()
        if _is_dir(path):
            try:
                files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES)
            except OSError as exc:
                yield _failed(text, f"{text}: the folder cannot be listed ({exc.strerror or exc})")
                return
            for p in files:
                yield Source("path", p, str(p))
        else:
            yield Source("path", path, text)
    elif type(x).__module__.startswith("PIL."):
        counter[0] += 1
        label = f"PIL image #{counter[0]}"
        try:  # a lazily opened image is decoded here: a broken file fails now
            # transparent images keep their alpha, composited over white like an RGBA file or array
            alpha = x.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in x.info
            pixels = np.asarray(x.convert("RGBA" if alpha else "RGB"))
        except Exception as exc:
            yield _failed(label, f"{label}: cannot be converted ({type(exc).__name__}: {exc})")
            return
        yield Source("array", pixels[:, :, [2, 1, 0, 3] if alpha else [2, 1, 0]], label)
    else:
        yield _failed(type(x).__name__, f"cannot read an input of type {type(x).__name__}: pass a path, URL, "
                      "numpy array, dict or list")


ROWS_PER_CHUNK_PIXELS = 1 << 20  # pixels converted at a time: temporaries stay a few MB on any size


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):  # a name too long, a NUL byte: read() says what is wrong
        return False


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Any 2-D or 3-D image array -> BGR uint8 HxWx3 (gray and BGRA converted, 16-bit scaled).

    Conversions run over bands of rows, so a 100-megapixel 16-bit RGBA image needs its output and
    a few MB more, not five float copies of itself."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        shape = getattr(image, "shape", None)
        raise InputError(f"an image array must be HxW or HxWxC with pixels, got shape {shape}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] not in (3, 4):
        raise InputError(f"an image array needs 1, 3 or 4 channels, got {image.shape[2]}")
    if image.dtype not in (np.uint8, np.uint16, bool) and not np.issubdtype(image.dtype, np.floating):
        raise InputError(f"unsupported image dtype {image.dtype}: use uint8, uint16 or float")
    scale = 1.0
    if np.issubdtype(image.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(image)) <= 1.0 else 1.0
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image
    h, w = image.shape[:2]
    out = np.empty((h, w, 3), np.uint8)
    step = max(1, ROWS_PER_CHUNK_PIXELS // w)
    for top in range(0, h, step):
        out[top : top + step] = _bgr_rows(image[top : top + step], scale)
    return out


def _bgr_rows(rows: np.ndarray, scale: float) -> np.ndarray:
    """A band of rows of any accepted dtype / channel count -> BGR uint8."""
    if rows.dtype == np.uint16:
        rows = (rows >> 8).astype(np.uint8)
    elif rows.dtype == bool:
        rows = rows.astype(np.uint8) * 255
    elif rows.dtype != np.uint8:
        rows = np.clip(np.nan_to_num(rows) * scale, 0, 255).astype(np.uint8)
    if rows.ndim == 2:
        return cv2.cvtColor(rows, cv2.COLOR_GRAY2BGR)
    if rows.shape[2] == 4:
        if rows[:, :, 3].min() == 255:
            return rows[:, :, :3]
        alpha = rows[:, :, 3:4].astype(np.float32) / 255
        # transparent pixels composited over white, as a viewer shows them
        return (rows[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return rows


def _image_size(data: bytes) -> tuple[int, str] | None:
    """(pixel count, how to say it) from the header, without decoding the pixels."""
    from PIL import Image

    try:
        # The size check is ours (no warning between Pillow's two limits), and a broken file's
        # complaints become the InputError of the decode, not warnings on the user's stderr.
        with _WARNINGS, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as im:
                w, h = im.size
        return w * h, f"{w}x{h} = {w * h} pixels"
    except Image.DecompressionBombError as exc:  # above Pillow's own limit: its message holds the count
        match = re.search(r"\((\d+) pixels\)", str(exc))
        return (int(match.group(1)), f"{match.group(1)} pixels") if match else None
    except Exception:
        return None


def decode_image(data: bytes, label: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Encoded image bytes -> BGR uint8, by content. Only formats whose size Pillow reads from the
    header are decoded, so that the pixel limit is checked before any pixel is."""
    size = _image_size(data)
    if size is None:
        raise InputError(f"{label}: not a readable image or PDF (first bytes {data[:16]!r})")
    if size[0] > max_pixels:
        raise InputError(f"{label}: image is {size[1]}, above the limit of {max_pixels} (raise max_pixels to read it)")
    try:
        return _decode(data, label)
    except MemoryError:
        raise InputError(f"{label}: ran out of memory while decoding the image") from None
    except InputError:
        raise
    except Exception as exc:  # a decoder's own error on a malformed file
        raise InputError(f"{label}: the image cannot be decoded ({type(exc).__name__}: {exc})") from None


def _decode(data: bytes, label: str) -> np.ndarray:
    is_jpeg = data[:2] == b"\xff\xd8"
    if is_jpeg and not data.endswith(b"\xff\xd9") and data.find(b"\xff\xd9", data.rfind(b"\xff\xda")) == -1:
        # A truncated JPEG (no end marker after the last scan): OpenCV would leave the missing rows
        # uninitialised (garbage, different on every call); with an end marker libjpeg fills them grey.
        data = data + b"\xff\xd9"
    buf = np.frombuffer(data, np.uint8)
    # JPEGs through IMREAD_COLOR so the EXIF orientation is applied, as PaddleX's reader does.
    flags = cv2.IMREAD_COLOR if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        image = cv2.imdecode(buf, flags)
    except cv2.error:
        image = None
    if image is None:
        image = _decode_with_pillow(data)
    if image is None:
        head = data[:16]
        raise InputError(f"{label}: not a readable image or PDF (first bytes {head!r})")
    return to_bgr(image)


def _decode_with_pillow(data: bytes) -> np.ndarray | None:
    """Formats OpenCV does not read (GIF, some TIFFs): first frame, as BGR."""
    from PIL import Image

    try:
        with _WARNINGS, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=PILLOW_FORMATS) as im:
                return np.asarray(im.convert("RGB"))[:, :, ::-1].copy()
    except Exception:
        return None


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]


def fetch_url(url: str, limits: Limits = Limits()) -> bytes:
    """A user's URL under the guard of fetch.py; errors name the URL and keep their HTTP status."""
    try:
        return fetch.fetch(url, limits)
    except fetch.FetchError as exc:
        raise fetch.FetchError(exc.status, f"{url}: {exc.message}") from None


def name_of(text: str) -> tuple[str, str]:
    path = Path(urllib.parse.urlparse(text).path if is_url(text) else text)
    return (path.stem or "input"), (path.suffix.lower() or ".png")


def _read_file(path: Path, label: str, limits: Limits) -> bytes:
    try:
        if not path.exists():
            raise InputError(f"{label}: no such file or folder")
        if not path.is_file():
            raise InputError(f"{label}: not a file")
        with path.open("rb") as f:
            data = f.read(limits.max_bytes + 1)
    except (OSError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{label!r}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if len(data) > limits.max_bytes:
        raise InputError(f"{label}: the file is larger than the {limits.max_bytes} byte limit (max_bytes)")
    return data


def read(source: Source, limits: Limits = Limits(), scale: float = PDF_RENDER_SCALE,
         cancel: threading.Event | None = None) -> Iterator[Page]:
    """One source -> its pages, under `limits`; PDF pages rendered at `scale` x 72 dpi. Raises
    InputError naming the source when it cannot be read, Cancelled when `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{source.label}: cancelled")
    if source.kind == "error":
        raise source.value
    if source.kind == "array":  # already in memory: no pixel limit (detection reads a resized copy)
        yield Page(None, None, to_bgr(source.value), "ndarray", ".png")
        return
    if source.kind == "path":
        data = _read_file(source.value, source.label, limits)
    elif source.kind == "url":
        data = fetch_url(source.value, limits)
    else:
        data = source.value
        if len(data) > limits.max_bytes:
            raise InputError(f"{source.label}: {len(data)} bytes, above the {limits.max_bytes} byte limit (max_bytes)")
    if not data:
        raise InputError(f"{source.label}: the file is empty")
    input_path = None if source.kind == "bytes" else source.label
    stem, suffix = name_of(source.label) if input_path else ("bytes", ".png")
    if is_pdf(data):
        for index, image in enumerate(pdf.pages(data, source.label, scale, limits, cancel)):
            yield Page(input_path, index, image, f"{stem}_{index}", ".png")
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{source.label}: cancelled after page {index}")
        return
    if suffix not in (".jpg", ".jpeg", ".png", ".bmp", ".webp"):
        suffix = ".png"
    yield Page(input_path, None, decode_image(data, source.label, limits.max_pixels), stem, suffix)
