"""Every limit of the HTTP service in one dataclass: defaults < pipeline YAML `Serving:` < flags."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from ..errors import ConfigError
from ..limits import Limits

MiB = 1024 * 1024
_LIB = Limits()  # the library's defaults, where the service keeps them


@dataclass(frozen=True)
class ServeSettings:
    """Settings of `ocrflow serve` (README "Serving", docs/serving.md); each is a flag and a `Serving:` YAML key."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # uvicorn worker processes, each with its own pipeline
    threads: int = 2  # inference threads per process (requests running at once)
    queue_size: int = 8  # requests waiting for a thread; beyond threads + queue_size: 503
    retry_after: int = 2  # seconds, the Retry-After of a 503
    request_timeout: float = 60.0  # seconds for one /ocr request (fetch + inference); then 504, work stopped
    body_timeout: float = 30.0  # seconds to receive the request body; then 408
    max_body_bytes: int = 64 * MiB  # request body (the Base64 file is 4/3 of the file); then 413
    max_pixels: int = 40_000_000  # decoded pixels of one image or rendered PDF page; then 422
    max_pdf_pages: int = 10  # PDF pages read (the first N); PaddleX's max_num_input_imgs
    pdf_render_scale: float | None = None  # PDF pixels per point / 72 dpi; None: the pipeline's (2.0)
    render_timeout: float = _LIB.render_timeout  # seconds to render one PDF page; then 422, renderer killed
    max_output_img_size: tuple[int, int] = (2000, 2000)  # (width, height) the result picture fits in
    jpeg_quality: int = 90
    url_connect_timeout: float = _LIB.url_connect_timeout  # seconds to connect to a URL's server
    url_read_timeout: float = _LIB.url_read_timeout  # seconds of silence while reading
    url_timeout: float = _LIB.url_timeout  # seconds for the whole download (redirects included)
    url_max_bytes: int = 32 * MiB  # size of a file fetched from a URL; then 413
    url_max_redirects: int = _LIB.url_max_redirects
    url_allow: tuple[str, ...] = ()  # CIDRs, IPs or host names that may be fetched although not public
    demo: bool = True  # the web demo at /
    docs: bool = True  # /docs and /openapi.json
    log_level: str = "info"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            check(f.name, getattr(self, f.name))

    def input_limits(self) -> Limits:
        """The input layer's limits for one request: the first max_pdf_pages pages of a PDF are read
        (PaddleX's max_num_input_imgs), and a URL's body is capped at url_max_bytes."""
        return Limits(max_bytes=self.url_max_bytes, max_pixels=self.max_pixels, max_pages=self.max_pdf_pages,
                      page_overflow="truncate", render_timeout=self.render_timeout,
                      url_connect_timeout=self.url_connect_timeout, url_read_timeout=self.url_read_timeout,
                      url_timeout=self.url_timeout, url_max_redirects=self.url_max_redirects,
                      url_allow=self.url_allow)


_POSITIVE_INT = {"port", "workers", "threads", "retry_after", "max_body_bytes", "max_pixels", "max_pdf_pages",
                 "url_max_bytes"}
_NON_NEGATIVE_INT = {"queue_size", "url_max_redirects"}
_POSITIVE_FLOAT = {"request_timeout", "body_timeout", "render_timeout", "url_connect_timeout", "url_read_timeout",
                   "url_timeout", "pdf_render_scale"}
BYTE_FIELDS = {"max_body_bytes", "url_max_bytes"}  # sizes: a number of bytes or "200MB"
_LEVELS = ("critical", "error", "warning", "info", "debug")
FIELDS = {f.name: f for f in dataclasses.fields(ServeSettings)}
# PaddleX's Serving.extra keys -> ours.
ALIASES = {"max_num_input_imgs": "max_pdf_pages", "max_num_imgs": "max_pdf_pages"}


def check(name: str, value) -> None:
    bad = None
    if name in _POSITIVE_INT or name in _NON_NEGATIVE_INT:
        low = 0 if name in _NON_NEGATIVE_INT else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            bad = "a positive integer" if low else "an integer >= 0"
    elif name in _POSITIVE_FLOAT:
        if value is None and name == "pdf_render_scale":
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            bad = "a positive number"
    elif name == "max_output_img_size":
        if (not isinstance(value, tuple) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            bad = "two positive integers (width, height)"
    elif name == "jpeg_quality":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            bad = "an integer in 1..100"
    elif name == "url_allow":
        if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
            bad = "a list of CIDRs, IP addresses or host names"
    elif name in ("demo", "docs"):
        if not isinstance(value, bool):
            bad = "true or false"
    elif name == "log_level":
        if value not in _LEVELS:
            bad = f"one of {', '.join(_LEVELS)}"
    elif name == "host":
        if not isinstance(value, str) or not value:
            bad = "a host name or IP address"
    if bad:
        raise ConfigError(f"Serving.{name} must be {bad}, got {value!r}")


def parse_bytes(text: str | int) -> int:
    """'64M', '512k', '1G', '1000' -> bytes (binary units)."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    m = re.fullmatch(r"\s*(\d+)\s*([kmg]?)i?b?\s*", str(text), re.I)
    if not m:
        raise ConfigError(f"not a size: {text!r} (use e.g. 1048576, 512K, 64M, 1G)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}[m.group(2).lower()]


def coerce(name: str, value):
    """A YAML or command-line value -> the field's type (sizes, lists, pairs); checked by check()."""
    if name in BYTE_FIELDS and isinstance(value, str):
        return parse_bytes(value)
    if name == "url_allow":
        if isinstance(value, str):
            value = [v for v in re.split(r"[,\s]+", value) if v]
        return tuple(value) if isinstance(value, (list, tuple)) else value
    if name == "max_output_img_size":
        if isinstance(value, str):
            value = re.split(r"[x,\s]+", value.strip())
            try:
                value = [int(v) for v in value]
            except ValueError:
                raise ConfigError(f"Serving.max_output_img_size must be WIDTHxHEIGHT, got {value!r}") from None
        return tuple(value) if isinstance(value, (list, tuple)) else value
    if name in _POSITIVE_FLOAT and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_mapping(section: dict | None, base: ServeSettings | None = None, where: str = "Serving") -> ServeSettings:
    """Apply a `Serving:` YAML section (our keys, or PaddleX's `extra:` keys) over base."""
    base = base or ServeSettings()
    if section is None:
        return base
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be a mapping of settings")
    flat = dict(section)
    extra = flat.pop("extra", None) or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}.extra must be a mapping")
    flat.update(extra)
    values = {}
    for raw, value in flat.items():
        name = ALIASES.get(raw, raw)
        if name not in FIELDS:
            raise ConfigError(f"unknown key {where}.{raw!r}; known keys: {', '.join(sorted(FIELDS))}")
        values[name] = coerce(name, value)
    return dataclasses.replace(base, **values)


def to_mapping(settings: ServeSettings) -> dict:
    """JSON-ready dict (for the worker processes' environment)."""
    data = dataclasses.asdict(settings)
    data["max_output_img_size"] = list(settings.max_output_img_size)
    data["url_allow"] = list(settings.url_allow)
    return data


