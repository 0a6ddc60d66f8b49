"""The plan of a batch run: every page of every input as a unit with a stable id.

A unit is (path, page): page None for an image, 0..n-1 for the pages of a PDF. Its id hashes the
absolute path, the file's size and mtime and the page, so the same file gives the same ids on every
run (resume skips them) and a file changed since gives new ones. Everything here runs on the
driver without models; PDFs are opened (in pdf.py's child process) only to count their pages.
"""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .. import pdf
from ..errors import InputError
from ..inputs import FOLDER_SUFFIXES, _read_file, is_pdf
from ..limits import Limits

LIST_SUFFIXES = {".txt", ".lst", ".list"}  # --input as a list file: one path per line
COUNT_THREADS = 4  # PDFs whose pages are counted at once (pdf.py keeps up to 4 renderers)


@dataclass(frozen=True)
class Unit:
    """One page to read, or an input that failed before its pages were known (error set)."""

    id: str
    path: str
    page: int | None  # None: an image, or an input that cannot be read at all
    error: str | None = None


def unit_id(path: str, size: int, mtime_ns: int, page: int | None) -> str:
    key = f"{path}\0{size}\0{mtime_ns}\0{'' if page is None else page}"
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def list_inputs(spec: str | os.PathLike | Iterable) -> list[str]:
    """--input -> absolute paths in a stable order: a folder (recursive, sorted, images and PDFs), a
    list file (.txt/.lst/.list: one path per line, relative to the list's folder, # comments), a
    glob, a single file, or a Python list of any of these. Duplicates are dropped (first kept)."""
    if not isinstance(spec, (str, os.PathLike)):
        found = [p for item in spec for p in list_inputs(item)]
    else:
        text = os.fspath(spec)
        path = Path(text).expanduser()
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES)
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            found = []
            for line in path.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    found.extend(list_inputs(path.parent / Path(line).expanduser()))
        elif glob.has_magic(text):
            found = sorted(p for p in glob.glob(str(path), recursive=True) if os.path.isfile(p))
        else:
            found = [text]  # a file, or a missing one: planned as an error that names it
    seen: set[str] = set()
    out = []
    for p in found:
        p = os.path.abspath(p)
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def units_of(path: str, limits: Limits) -> list[Unit]:
    """The units of one input file; an input that cannot be opened is one unit with its error."""
    try:
        st = os.stat(path)
    except OSError as exc:
        reason = "no such file or folder" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc))
        return [Unit(unit_id(path, -1, -1, None), path, None, f"{path}: {reason}")]
    try:
        with open(path, "rb") as f:
            head = f.read(1024)
        if not is_pdf(head):
            return [Unit(unit_id(path, st.st_size, st.st_mtime_ns, None), path, None)]
        count = page_count(_read_file(Path(path), path, limits), path, limits)
    except InputError as exc:
        return [Unit(unit_id(path, st.st_size, st.st_mtime_ns, None), path, None, str(exc))]
    except OSError as exc:
        return [Unit(unit_id(path, st.st_size, st.st_mtime_ns, None), path, None,
                     f"{path}: cannot be read ({exc.strerror or exc})")]
    return [Unit(unit_id(path, st.st_size, st.st_mtime_ns, i), path, i) for i in range(count)]


def page_count(data: bytes, label: str, limits: Limits) -> int:
    """Pages of a PDF to read, under the same rules as pdf.pages (max_pages, page_overflow)."""
    with pdf.PdfDocument(data, label, limits) as doc:
        count = len(doc)
    if count == 0:
        raise InputError(f"{label}: PDF has no pages")
    if count > limits.max_pages and limits.page_overflow == "error":
        raise InputError(f"{label}: PDF has {count} pages, above the limit of {limits.max_pages} (max_pages)")
    return min(count, limits.max_pages)


def plan(paths: list[str], limits: Limits) -> Iterator[Unit]:
    """The units of all inputs, in input order (PDFs counted a few at a time)."""
    with ThreadPoolExecutor(COUNT_THREADS) as pool:
        for units in pool.map(lambda p: units_of(p, limits), paths):
            yield from units

