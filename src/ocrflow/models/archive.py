"""Download (retries, back-off, resume, size check, progress bar) and safe .tar unpacking.

Errors are `FetchError`s carrying a short reason; the store turns them into a ModelError that
names the model, the URL and what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

RETRIES = 4  # attempts per download, after the first one made progress the count starts again
BACKOFF_S = 1.0  # wait before retry n: BACKOFF_S * 2 ** (n - 1)
TIMEOUT_S = 30.0  # per socket operation
CHUNK = 1 << 16
MAX_DOWNLOAD = 4 << 30  # no official archive comes near this

MAX_MEMBERS = 10_000
MAX_MEMBER_BYTES = 2 << 30
MAX_UNPACKED_BYTES = 4 << 30


class FetchError(Exception):
    """A download or unpacking failure. `partial`: a resumable .part file was kept."""

    def __init__(self, reason: str, *, partial: Path | None = None):
        super().__init__(reason)
        self.reason = reason
        self.partial = partial


def _user_agent() -> str:
    from .. import __version__

    return f"ocrflow/{__version__} (+model fetch)"


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """'bytes 100-199/200' -> (100, 200); None when absent or unparseable."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        span, total = value[6:].split("/", 1)
        start = int(span.split("-", 1)[0])
        return start, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def download(url: str, part: Path, *, desc: str, expected_size: int | None = None,
             progress: bool | None = None) -> int:
    """Download url into `part`, resuming a partial `part` with HTTP Range where the server allows.

    Returns the number of bytes. On failure raises FetchError; the partial file is kept (for the
    next attempt to resume) only if the server said it accepts ranges, and deleted otherwise.
    """
    from tqdm import tqdm

    part.parent.mkdir(parents=True, exist_ok=True)
    attempt = 0
    ranges_ok = False
    while True:
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
        if have:
            headers["Range"] = f"bytes={have}-"
        progressed = False
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S) as resp:
                status = getattr(resp, "status", None) or 200
                ranges_ok = ranges_ok or status == 206 or resp.headers.get("Accept-Ranges", "").lower() == "bytes"
                length = resp.headers.get("Content-Length")
                length = int(length) if length and length.isdigit() else None
                if status == 206:
                    span = _content_range(resp.headers.get("Content-Range"))
                    if span is None or span[0] != have:  # not the range asked for: start again
                        part.unlink(missing_ok=True)
                        raise _Retry("the server answered a different byte range than asked for")
                    total = span[1] if span[1] is not None else (have + length if length is not None else None)
                    mode = "ab"
                else:
                    have, total, mode = 0, length, "wb"
                if expected_size is not None and total is not None and total != expected_size:
                    part.unlink(missing_ok=True)
                    raise FetchError(f"the server offers {total} bytes, but the archive has {expected_size}")
                if total is not None and total > MAX_DOWNLOAD:
                    part.unlink(missing_ok=True)
                    raise FetchError(f"the server offers {total} bytes, more than the {MAX_DOWNLOAD}-byte limit")
                got = have
                bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                           disable=not _show_progress(progress), leave=False, file=sys.stderr)
                with bar, open(part, mode) as out:
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        try:
                            out.write(block)
                        except OSError as exc:  # a full disk is not the network's fault: no retry
                            raise FetchError(f"cannot write {part}: {exc}") from None
                        got += len(block)
                        progressed = True
                        bar.update(len(block))
                        if got > (total if total is not None else MAX_DOWNLOAD):
                            part.unlink(missing_ok=True)
                            raise FetchError(f"the server sent more than the {total} bytes it announced")
                if total is not None and got != total:
                    raise _Retry(f"the connection closed after {got} of {total} bytes")
                return got
        except FetchError:
            raise
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have:  # the partial file does not fit what the server has now
                part.unlink(missing_ok=True)
                reason = "HTTP 416 for the resumed range (starting again)"
            elif exc.code in (408, 425, 429) or exc.code >= 500:
                reason = f"HTTP {exc.code} {exc.reason}"
            else:
                part.unlink(missing_ok=True)
                raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
        except _Retry as exc:
            reason = str(exc)
        except (urllib.error.URLError, OSError, EOFError, http.client.HTTPException) as exc:
            # refused / reset connections, timeouts, IncompleteRead, RemoteDisconnected, ...
            reason = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"
            if url.startswith("file:"):  # a local mirror: nothing to wait for
                part.unlink(missing_ok=True)
                raise FetchError(reason) from None
        if not ranges_ok:
            part.unlink(missing_ok=True)
        if progressed and ranges_ok:
            attempt = 0  # a resumable download that moves on is not failing
        attempt += 1
        if attempt >= RETRIES:
            kept = part if ranges_ok and part.exists() else None
            raise FetchError(f"{reason} (gave up after {RETRIES} attempts)", partial=kept)
        time.sleep(BACKOFF_S * 2 ** (attempt - 1))


class _Retry(Exception):
    pass


# -- unpacking ------------------------------------------------------------------------------

_KINDS = {
    tarfile.SYMTYPE: "symbolic link", tarfile.LNKTYPE: "hard link", tarfile.CHRTYPE: "character device",
    tarfile.BLKTYPE: "block device", tarfile.FIFOTYPE: "FIFO", tarfile.CONTTYPE: "contiguous file",
}


def _member_path(name: str) -> PurePosixPath:
    """The member's path, refused if it could land outside the target folder."""
    if "\x00" in name:
        raise FetchError(f"the archive member {name!r} has a NUL byte in its name")
    norm = name.replace("\\", "/")
    path = PurePosixPath(norm)
    if path.is_absolute() or (len(norm) > 1 and norm[1] == ":"):
        raise FetchError(f"the archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise FetchError(f"the archive member {name!r} points outside the target folder")
    return path


def safe_extract(archive: Path, dest: Path, *, max_members: int | None = None,
                 max_member_bytes: int | None = None, max_total_bytes: int | None = None) -> list[Path]:
    """Unpack a .tar (plain or compressed) into dest: regular files and folders only.

    Refused: absolute paths, `..`, links of either kind, devices, FIFOs, duplicate names, more
    than max_members members, or more bytes than the limits. Returns the files written.
    """
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_member_bytes = MAX_MEMBER_BYTES if max_member_bytes is None else max_member_bytes
    max_total_bytes = MAX_UNPACKED_BYTES if max_total_bytes is None else max_total_bytes
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written: list[Path] = []
    try:
        with tarfile.open(archive, "r:*") as tf:
            total = count = 0
            for member in tf:
                count += 1
                if count > max_members:
                    raise FetchError(f"the archive has more than {max_members} members")
                rel = _member_path(member.name)
                if not rel.parts or rel.parts == (".",):
                    continue
                target = root.joinpath(*rel.parts)
                if root != target and root not in target.parents:
                    raise FetchError(f"the archive member {member.name!r} points outside the target folder")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    kind = _KINDS.get(member.type, f"member of type {member.type!r}")
                    raise FetchError(f"the archive member {member.name!r} is a {kind}: links and devices are refused")
                if member.size > max_member_bytes:
                    raise FetchError(f"the archive member {member.name!r} is {member.size} bytes, over the limit")
                total += member.size
                if total > max_total_bytes:
                    raise FetchError(f"the archive unpacks to more than {max_total_bytes} bytes")
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have data
                    raise FetchError(f"the archive member {member.name!r} has no data")
                try:
                    out = open(target, "xb")
                except FileExistsError:
                    raise FetchError(f"the archive has the member {member.name!r} twice") from None
                with src, out:
                    left = member.size
                    while left:
                        block = src.read(min(CHUNK, left))
                        if not block:
                            raise FetchError(f"the archive is truncated inside {member.name!r}")
                        out.write(block)
                        left -= len(block)
                written.append(target)
    except FetchError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        raise FetchError(f"the archive is corrupt, not a tar file, or could not be unpacked "
                         f"({type(exc).__name__}: {exc})") from None
    if not written:
        raise FetchError("the archive holds no files")
    return written


@contextlib.contextmanager
def file_lock(path: Path):
    """An exclusive lock between processes (POSIX flock; a no-op where that does not exist)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
