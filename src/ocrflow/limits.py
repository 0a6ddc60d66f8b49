"""Every limit on reading one input, defined once: the library's defaults here, the service's
stricter ones in serving/settings.py (it builds a Limits from them).

Each limit bounds the work one hostile file can cause: bytes read, pixels decoded (and so memory),
pages of a PDF, seconds to render one PDF page (in a child process that is killed at the deadline,
pdf.py), and which URLs may be fetched (fetch.py: public addresses only unless url_allow says so).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .errors import ConfigError

MiB = 1 << 20

# A page at this limit costs 0.43-0.58 GB over the pipeline's own memory as an 8-bit image or a PDF
# page, 1.5 GB as a 16-bit RGBA PNG (benchmarks/input_memory.py). A 600 dpi A3 scan is 70 Mpx.
MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class Limits:
    """Bounds on what one input may cost. A value over a limit is an InputError naming the limit."""

    max_bytes: int = 200 * MiB  # one file, bytes object or downloaded URL body
    max_pixels: int = MAX_PIXELS  # one decoded image or rendered PDF page
    max_pages: int = 1000  # pages of one PDF; more is an error (page_overflow="error") or cut there
    page_overflow: str = "error"  # "error": refuse the PDF | "truncate": read the first max_pages
    render_timeout: float = 15.0  # seconds to render one PDF page; the renderer is killed then
    url_connect_timeout: float = 5.0  # seconds to connect to a URL's server
    url_read_timeout: float = 15.0  # seconds of silence while reading
    url_timeout: float = 30.0  # seconds for a whole download, redirects included
    url_max_redirects: int = 3
    url_allow: tuple[str, ...] = ()  # hosts, '.domain' suffixes, IPs or CIDRs fetched although not public

    def __post_init__(self) -> None:
        if isinstance(self.url_allow, (list, str)):  # YAML lists and "a,b" strings
            items = self.url_allow.replace(",", " ").split() if isinstance(self.url_allow, str) else self.url_allow
            object.__setattr__(self, "url_allow", tuple(items))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "page_overflow":
                ok = value in ("error", "truncate")
                want = "'error' or 'truncate'"
            elif f.name == "url_allow":
                ok = all(isinstance(v, str) and v.strip() for v in value)
                want = "a list of host names, .domain suffixes, IP addresses or CIDRs"
            elif f.type == "float" or f.type is float:
                ok = not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0
                want = "a positive number of seconds"
            else:
                low = 0 if f.name == "url_max_redirects" else 1
                ok = not isinstance(value, bool) and isinstance(value, int) and value >= low
                want = "an integer >= 0" if low == 0 else "a positive integer"
            if not ok:
                raise ConfigError(f"{f.name} must be {want}, got {value!r}")


FIELDS = tuple(f.name for f in dataclasses.fields(Limits))
