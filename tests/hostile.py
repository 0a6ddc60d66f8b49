"""Hostile files for the input layer's tests and benchmarks/fuzz.py: PDFs whose structure lies or
whose rendering never ends, images whose headers declare huge sizes, and a mutator.

The PDFs are written byte by byte on purpose: no PDF library writes files this broken.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib

from PIL import Image


def build_pdf(objects: list[bytes], root: int = 1, trailer: bytes = b"") -> bytes:
    """Objects 1..N (bodies without 'N 0 obj') -> a PDF with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, root, trailer, xref))
    return out.getvalue()


def _stream(data: bytes, compress: bool) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(data) + data + b"\nendstream"
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def page_pdf(content: bytes = b"", size: tuple[float, float] = (200, 100), compress: bool = True,
             kids: bytes = b"[3 0 R]", count: int = 1) -> bytes:
    """One page object (3) with a content stream (4) under a page tree (2) that may lie."""
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids " + kids + b" /Count %d >>" % count,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 4 0 R >>" % size,
        _stream(content, compress),
    ])


def lying_page_count(count: int = 1_000_000) -> bytes:
    """One page, a tree that claims a million."""
    return page_pdf(b"0 0 m 10 10 l S", count=count)


def self_referencing_tree() -> bytes:
    """The page tree lists itself as its own kid."""
    return page_pdf(b"0 0 m 10 10 l S", kids=b"[2 0 R 3 0 R]", count=2)


def repeated_page(times: int = 100_000) -> bytes:
    """One page listed `times` times: a small file with a huge page count."""
    return page_pdf(b"0 0 m 10 10 l S", kids=b"[" + b"3 0 R " * times + b"]", count=times)


def render_bomb(repeats: int = 200_000, compress: bool = True) -> bytes:
    """One page whose content draws the same line `repeats` times: tiny, renders for a long time."""
    return page_pdf(b"0 0 m 595 842 l 0 842 l 595 0 l S\n" * repeats, size=(595, 842), compress=compress)


def huge_page(points: float = 10_000) -> bytes:
    """A page of points x points (at 144 dpi, 20000 x 20000 pixels)."""
    return page_pdf(b"0 0 m 10 10 l S", size=(points, points))


_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    i = j = 0
    out = bytearray()
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def encrypted_pdf(user_password: bytes = b"secret") -> bytes:
    """A one-page PDF under the standard security handler (RC4 40-bit, revision 2)."""
    def pad(pw: bytes) -> bytes:
        return (pw + _PAD)[:32]

    owner_key = _rc4(hashlib.md5(pad(b"owner")).digest()[:5], pad(user_password))
    file_id = b"0123456789abcdef"
    key = hashlib.md5(pad(user_password) + owner_key + (-4).to_bytes(4, "little", signed=True) + file_id).digest()
    user_key = _rc4(key[:5], _PAD)
    fid = file_id.hex().encode()
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>"
        % (owner_key.hex().encode(), user_key.hex().encode()),
    ], trailer=b"/Encrypt 4 0 R /ID [<%s> <%s>] " % (fid, fid))


def huge_png(side: int = 19_999) -> bytes:
    """A real 1-bit PNG of side x side: a few hundred KB that decodes to side^2 x 3 bytes."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def lying_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header declares a huge size over one row of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 301))
            + chunk(b"IEND", b""))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation: truncation, byte flips, a spliced run, a duplicated block, or a number
    in the text (PDF sizes, counts, lengths) replaced by a huge or negative one."""
    data = bytearray(data)
    kind = rng.randrange(6)
    if kind == 0 and len(data) > 1:
        return bytes(data[: rng.randrange(1, len(data))])
    if kind == 1:
        for _ in range(rng.randint(1, 16)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        at = rng.randrange(len(data))
        return bytes(data[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))) + data[at:])
    if kind == 3 and len(data) > 8:
        a = rng.randrange(len(data) - 4)
        b = min(len(data), a + rng.randint(4, 4096))
        return bytes(data[:b] + data[a:b] * rng.randint(1, 8) + data[b:])
    if kind == 4:
        digits = [i for i in range(len(data)) if 48 <= data[i] <= 57]
        if digits:
            at = rng.choice(digits)
            end = at
            while end < len(data) and 48 <= data[end] <= 57:
                end += 1
            new = rng.choice([b"0", b"-1", b"99999999", b"4294967295", b"1e308", b"18446744073709551616"])
            return bytes(data[:at] + new + data[end:])
    # structural bytes of image headers: width/height fields right after the signature
    at = rng.randrange(min(len(data), 64))
    data[at : at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"])
    return bytes(data)
