"""Results as the formats people use: plain text, hOCR 1.2, ALTO v4 and searchable PDF.

Each writer takes the results of one input (one per image or PDF page, in order). Words come from
`text_word` / `text_word_region` (return_word_box); a result without them is split at spaces, each
word given its share of the line's box by its number of characters.

The searchable PDF is written with pikepdf (`pip install 'ocrflow[pdf]'`): an image input becomes a
page showing the image; a PDF input keeps its pages as they are (nothing re-rasterised) and gains
the text. The text is invisible (render mode 3), one run per word, rotated with its line and
stretched to the word's width, in a font without glyphs whose codes are Unicode code points, so
copying and searching work for any script, Chinese included.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import quoteattr

import cv2
import numpy as np

IMAGE_DPI = 144  # pixels per inch of an image input's page: 1 px = 0.5 pt, as PDF pages are rendered


# -- words of a result -----------------------------------------------------------------------------
def words_of(result, line: int) -> list[tuple[str, np.ndarray]]:
    """(word, 4 x 2 quad in page pixels) for each word of one line of a result: the words placed by
    the crop's geometry when the result has them, else PaddleX's text_word (spaces dropped), else
    the line split at spaces."""
    placed = getattr(result, "words", None)
    if placed is not None:
        found = [(w, np.asarray(q, np.float64).reshape(4, 2)) for w, q in placed[line]]
        text = result["rec_text"][line].strip()
        if found or not text:
            return found
        return [(text, np.asarray(result["dt_polys"][line], np.float64).reshape(4, 2))]  # no columns: the line
    if "text_word" in result:
        return [(w, np.asarray(q, np.float64).reshape(4, 2))
                for w, q in zip(result["text_word"][line], result["text_word_region"][line]) if w.strip()]
    text = result["rec_text"][line]
    quad = np.asarray(result["dt_polys"][line], np.float64).reshape(4, 2)
    total = max(len(text), 1)
    out, pos = [], 0
    for token in text.split(" "):
        if token:
            a, b = pos / total, (pos + len(token)) / total
            top = quad[0] + (quad[1] - quad[0]) * np.array([[a], [b]])
            bottom = quad[3] + (quad[2] - quad[3]) * np.array([[a], [b]])
            out.append((token, np.array([top[0], top[1], bottom[1], bottom[0]])))
        pos += len(token) + 1
    return out


def _bbox(points: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The integer box around points, inside the page."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    x0, y0 = np.floor(pts.min(axis=0))
    x1, y1 = np.ceil(pts.max(axis=0))
    return (int(min(max(x0, 0), width)), int(min(max(y0, 0), height)),
            int(min(max(x1, 0), width)), int(min(max(y1, 0), height)))


def _size(result) -> tuple[int, int]:
    image = result.page_img
    if image is None:
        raise ValueError("this result carries no image: its page size is unknown")
    return image.shape[1], image.shape[0]


# -- plain text ------------------------------------------------------------------------------------
def to_text(results: Iterable) -> str:
    """The lines in reading order, one per line; pages separated by a form feed."""
    return "\f".join("".join(f"{t}\n" for t in r["rec_text"]) for r in results)


# -- hOCR ------------------------------------------------------------------------------------------
def hocr_head(title: str = "") -> str:
    from . import __version__

    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">',
        '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">',
        f" <head>\n  <title>{html.escape(title)}</title>",
        '  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>',
        f'  <meta name="ocr-system" content="ocrflow {__version__}"/>',
        '  <meta name="ocr-capabilities" content="ocr_page ocr_carea ocr_line ocrx_word ocrp_wconf"/>',
        " </head>", " <body>", ""])


HOCR_FOOT = " </body>\n</html>\n"


def hocr_page(res, p: int) -> str:
    """One ocr_page (p counts from 1)."""
    w, h = _size(res)
    image = res.get("input_path") or ""
    page_title = f"image {_hocr_quote(str(image))}; bbox 0 0 {w} {h}; ppageno {p - 1}"
    out = [f'  <div class="ocr_page" id="page_{p}" title={quoteattr(page_title)}>']
    for i, score in enumerate(res["rec_score"], 1):
        if not res["rec_text"][i - 1].strip():
            continue  # a line read as nothing: no words to give
        box = " ".join(map(str, _bbox(res["dt_polys"][i - 1], w, h)))
        conf = round(100 * float(score))
        out.append(f'   <div class="ocr_carea" id="block_{p}_{i}" title="bbox {box}">')
        out.append(f'    <span class="ocr_line" id="line_{p}_{i}" title="bbox {box}; x_wconf {conf}">')
        for j, (word, quad) in enumerate(words_of(res, i - 1), 1):
            wbox = " ".join(map(str, _bbox(quad, w, h)))
            out.append(f'     <span class="ocrx_word" id="word_{p}_{i}_{j}" title="bbox {wbox}; '
                       f'x_wconf {conf}">{html.escape(word)}</span>')
        out.append("    </span>\n   </div>")
    out.append("  </div>\n")
    return "\n".join(out)


def to_hocr(results: Iterable, title: str = "") -> str:
    """hOCR 1.2 (XHTML): ocr_page > ocr_carea > ocr_line > ocrx_word, with bbox and x_wconf (0-100)."""
    return hocr_head(title) + "".join(hocr_page(r, p) for p, r in enumerate(results, 1)) + HOCR_FOOT


def _hocr_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- ALTO ------------------------------------------------------------------------------------------
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"


def alto_head(file_name: str = "") -> str:
    from . import __version__

    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<alto xmlns="{ALTO_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{ALTO_NS} http://www.loc.gov/alto/v4/alto-4-4.xsd">',
        "  <Description>", "    <MeasurementUnit>pixel</MeasurementUnit>",
        "    <sourceImageInformation>", f"      <fileName>{html.escape(file_name)}</fileName>",
        "    </sourceImageInformation>",
        '    <Processing ID="ocrflow">', "      <processingSoftware>",
        "        <softwareName>ocrflow</softwareName>",
        f"        <softwareVersion>{__version__}</softwareVersion>",
        "      </processingSoftware>", "    </Processing>", "  </Description>", "  <Layout>", ""])


ALTO_FOOT = "  </Layout>\n</alto>\n"


def alto_page(res, p: int) -> str:
    """One Page (p counts from 1): PrintSpace > TextBlock > TextLine > String / SP, WC in 0-1."""
    w, h = _size(res)
    out = [f'    <Page ID="page_{p}" PHYSICAL_IMG_NR="{p}" WIDTH="{w}" HEIGHT="{h}">',
           f'      <PrintSpace HPOS="0" VPOS="0" WIDTH="{w}" HEIGHT="{h}">']
    for i, score in enumerate(res["rec_score"], 1):
        if not res["rec_text"][i - 1].strip():
            continue  # ALTO wants a String in every TextLine
        x0, y0, x1, y1 = _bbox(res["dt_polys"][i - 1], w, h)
        pos = f'HPOS="{x0}" VPOS="{y0}" WIDTH="{x1 - x0}" HEIGHT="{y1 - y0}"'
        out.append(f'        <TextBlock ID="block_{p}_{i}" {pos}>')
        out.append(f'          <TextLine ID="line_{p}_{i}" {pos}>')
        words = words_of(res, i - 1)
        for j, (word, quad) in enumerate(words, 1):
            a0, b0, a1, b1 = _bbox(quad, w, h)
            out.append(f'            <String ID="word_{p}_{i}_{j}" CONTENT={quoteattr(word)} HPOS="{a0}" '
                       f'VPOS="{b0}" WIDTH="{a1 - a0}" HEIGHT="{b1 - b0}" WC="{float(score):.4f}"/>')
            if j < len(words):
                nxt = _bbox(words[j][1], w, h)[0]
                out.append(f'            <SP HPOS="{a1}" VPOS="{b0}" WIDTH="{max(nxt - a1, 0)}"/>')
        out.append("          </TextLine>\n        </TextBlock>")
    out.append("      </PrintSpace>\n    </Page>\n")
    return "\n".join(out)


def to_alto(results: Iterable, file_name: str = "") -> str:
    """ALTO v4 in pixels, one Page per result."""
    return alto_head(file_name) + "".join(alto_page(r, p) for p, r in enumerate(results, 1)) + ALTO_FOOT


# -- searchable PDF --------------------------------------------------------------------------------
def _to_unicode(extra: dict[str, int] | None = None) -> bytes:
    """The ToUnicode CMap: 2-byte codes are Unicode code points, except D800-DFFF, which name the
    characters beyond the BMP that `extra` gives them."""
    cmap = ["/CIDInit /ProcSet findresource begin", "12 dict begin", "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def", "/CMapType 2 def",
            "1 begincodespacerange", "<0000> <FFFF>", "endcodespacerange"]
    rows = [f"<{hi:02X}00> <{hi:02X}FF> <{hi:02X}00>" for hi in range(256) if not 0xD8 <= hi <= 0xDF]
    for start in range(0, len(rows), 100):
        chunk = rows[start:start + 100]
        cmap += [f"{len(chunk)} beginbfrange", *chunk, "endbfrange"]
    chars = sorted((extra or {}).items(), key=lambda kv: kv[1])
    for start in range(0, len(chars), 100):
        chunk = chars[start:start + 100]
        cmap += [f"{len(chunk)} beginbfchar",
                 *(f"<{code:04X}> <{char.encode('utf-16-be').hex().upper()}>" for char, code in chunk), "endbfchar"]
    cmap += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(cmap).encode("ascii")


def _font(pdf):
    """A Type0 font without glyphs: 2-byte codes are Unicode (ToUnicode says so), every glyph half
    an em wide."""
    import pikepdf
    from pikepdf import Array, Dictionary, Name

    descriptor = Dictionary(Type=Name.FontDescriptor, FontName=Name("/OcrflowGlyphless"), Flags=4,
                            FontBBox=Array([0, -200, 500, 800]), ItalicAngle=0, Ascent=800, Descent=-200,
                            CapHeight=700, StemV=80)
    cid_font = Dictionary(Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name("/OcrflowGlyphless"),
                          CIDSystemInfo=Dictionary(Registry=pikepdf.String("Adobe"),
                                                   Ordering=pikepdf.String("Identity"), Supplement=0),
                          FontDescriptor=pdf.make_indirect(descriptor), DW=500, CIDToGIDMap=Name.Identity)
    return pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.Type0, BaseFont=Name("/OcrflowGlyphless"), Encoding=Name("/Identity-H"),
        DescendantFonts=Array([pdf.make_indirect(cid_font)]), ToUnicode=pdf.make_stream(_to_unicode())))


class Codes:
    """Characters -> the font's 2-byte codes: a BMP character is its code point; one beyond the BMP
    gets a free code of D800-DFFF (2048 of them per document, then U+FFFD)."""

    def __init__(self):
        self.extra: dict[str, int] = {}

    def hex(self, word: str) -> str:
        out = []
        for char in word:
            code = ord(char)
            if code > 0xFFFF or 0xD800 <= code <= 0xDFFF:
                if char not in self.extra and len(self.extra) < 0x800:
                    self.extra[char] = 0xD800 + len(self.extra)
                code = self.extra.get(char, 0xFFFD)
            out.append(f"{code:04X}")
        return "".join(out)


def _runs(text: str, line_words: list[tuple[str, np.ndarray]]) -> list[tuple[str, int, int, np.ndarray]]:
    """The line's text cut at the start of each word: (run, characters before the word inside the
    run, the word's length, its quad). Nothing of the line is lost (spaces, punctuation between
    words)."""
    runs, starts, pos = [], [], 0
    for word, quad in line_words:
        at = text.find(word, pos)
        if at < 0:
            return [(word, 0, len(word), quad) for word, quad in line_words]  # not in the text: as they are
        starts.append((at, word, quad))
        pos = at + len(word)
    for i, (at, word, quad) in enumerate(starts):
        begin = at if i > 0 or not text[:at].strip() else 0  # leading spaces are not placed
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        run = text[begin:end].rstrip() if i + 1 == len(starts) else text[begin:end]
        runs.append((run, at - begin, len(word), quad))
    return runs


def text_layer(result, to_pdf, font_name: str = "/OcrflowText", codes: Codes | None = None) -> bytes:
    """Content-stream operators that draw the result's text invisibly, one run per word: the word
    and what follows it up to the next word, its characters spread over the word's box. to_pdf maps
    N x 2 page pixels to PDF user space."""
    codes = codes or Codes()
    ops = ["BT", "3 Tr"]
    for line, text in enumerate(result["rec_text"]):
        for run, lead, word_chars, quad in _runs(text, words_of(result, line)):
            tl, tr, br, bl = to_pdf(np.asarray(quad, np.float64).reshape(4, 2))
            along = br - bl
            length = float(np.hypot(*along))
            height = float(max(np.hypot(*(tl - bl)), np.hypot(*(tr - br))))
            if length < 0.1 or height < 0.1 or not run or not word_chars:
                continue
            cos, sin = along / length
            pitch = length / word_chars  # user-space width of one character
            origin = bl - np.array([cos, sin]) * (lead * pitch)  # characters before the word go before it
            stretch = 100 * pitch / (0.5 * height)  # glyphs are half an em wide
            ops.append(f"{font_name} {height:.2f} Tf {stretch:.2f} Tz {cos:.5f} {sin:.5f} {-sin:.5f} {cos:.5f} "
                       f"{origin[0]:.2f} {origin[1]:.2f} Tm <{codes.hex(run)}> Tj")
    ops.append("ET")
    return ("\n".join(ops) + "\n").encode("ascii")


def _image_page(pdf, result, dpi: float, jpeg_quality: int):
    """A new page of the result's image, dpi pixels per inch; returns (page, pixels -> PDF points)."""
    from pikepdf import Dictionary, Name

    image = result.page_img
    h, w = image.shape[:2]
    k = 72.0 / dpi
    page = pdf.add_blank_page(page_size=(w * k, h * k))
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise OSError("could not encode the page image")
    xobject = pdf.make_stream(jpeg.tobytes(), Type=Name.XObject, Subtype=Name.Image, Width=w, Height=h,
                              ColorSpace=Name.DeviceRGB, BitsPerComponent=8, Filter=Name.DCTDecode)
    page.obj.Resources = Dictionary(XObject=Dictionary(Im0=xobject))
    page.obj.Contents = pdf.make_stream(f"q {w * k:.4f} 0 0 {h * k:.4f} 0 0 cm /Im0 Do Q\n".encode())

    def to_pdf(points: np.ndarray) -> np.ndarray:
        return np.stack([points[:, 0] * k, (h - points[:, 1]) * k], axis=1)

    return page, to_pdf


def _pdf_page_mapping(page, result):
    """pixels of the rendered page -> the page's user space (its crop box, its /Rotate)."""
    def corners(box) -> tuple[float, float, float, float]:
        b = [float(v) for v in box]
        return min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])

    mx0, my0, mx1, my1 = corners(page.mediabox)
    x0, y0, x1, y1 = corners(page.obj.get("/CropBox") or page.mediabox)
    x0, y0, x1, y1 = max(x0, mx0), max(y0, my0), min(x1, mx1), min(y1, my1)  # what pdfium renders
    if x1 <= x0 or y1 <= y0:
        x0, y0, x1, y1 = mx0, my0, mx1, my1
    rotate = int(page.obj.get("/Rotate", 0)) % 360
    img_w, img_h = _size(result)
    shown_w, shown_h = (y1 - y0, x1 - x0) if rotate in (90, 270) else (x1 - x0, y1 - y0)
    sx, sy = shown_w / img_w, shown_h / img_h

    def to_pdf(points: np.ndarray) -> np.ndarray:
        dx, dy = points[:, 0] * sx, points[:, 1] * sy  # points of the page as shown, from its top left
        if rotate == 90:
            return np.stack([x0 + dy, y0 + dx], axis=1)
        if rotate == 180:
            return np.stack([x1 - dx, y0 + dy], axis=1)
        if rotate == 270:
            return np.stack([x1 - dy, y1 - dx], axis=1)
        return np.stack([x0 + dx, y1 - dy], axis=1)

    return to_pdf


class SearchablePdf:
    """Writes one searchable PDF: `add(result)` page by page, then `close()` (or use `with`).

    source: the input PDF (path or bytes) whose pages the results belong to; its pages are kept
    as they are and gain the text layer. Without it each result becomes an image page."""

    def __init__(self, path: str | Path | None, source: str | Path | bytes | None = None, dpi: float = IMAGE_DPI,
                 jpeg_quality: int = 90, only_added: bool = False):
        try:
            import pikepdf
        except ModuleNotFoundError:
            raise ModuleNotFoundError("searchable PDFs need pikepdf: pip install 'ocrflow[pdf]'") from None
        self.path = Path(path) if path is not None else None
        self.dpi, self.jpeg_quality = dpi, jpeg_quality
        self.only_added = only_added  # a PDF source: keep only the pages given to add()
        self.added: list[int] = []
        if source is not None:
            import io

            data = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
            from .errors import InputError

            try:
                self.pdf = pikepdf.open(data)
            except pikepdf.PasswordError:
                raise InputError(f"{path or 'PDF'}: the input PDF is encrypted; cannot add a text layer") from None
            except pikepdf.PdfError as exc:
                raise InputError(f"{path or 'PDF'}: cannot add a text layer to this PDF ({exc})") from None
            self.source = True
        else:
            self.pdf = pikepdf.new()
            self.source = False
        self.font = _font(self.pdf)
        self.codes = Codes()

    def add(self, result) -> None:
        from pikepdf import Dictionary

        if self.source:
            self.added.append(result["page_index"] or 0)
            page = self.pdf.pages[self.added[-1]]
            to_pdf = _pdf_page_mapping(page, result)
        else:
            page, to_pdf = _image_page(self.pdf, result, self.dpi, self.jpeg_quality)
        if not result["rec_text"]:
            return  # a page without text: no text layer
        resources = page.obj.get("/Resources")
        if resources is None:
            page.obj.Resources = resources = Dictionary()
        if "/Font" not in resources:
            resources.Font = Dictionary()
        name = "/OcrflowText"
        resources.Font[name] = self.font
        if self.source:  # the page's own content, its graphics state closed before our text
            page.contents_add(self.pdf.make_stream(b"q\n"), prepend=True)
            page.contents_add(self.pdf.make_stream(b"Q\n" + text_layer(result, to_pdf, name, self.codes)))
        else:
            page.contents_add(self.pdf.make_stream(text_layer(result, to_pdf, name, self.codes)))

    def _finish(self) -> None:
        if self.codes.extra:  # characters beyond the BMP were given codes: name them
            self.font.ToUnicode = self.pdf.make_stream(_to_unicode(self.codes.extra))
        if self.source and self.only_added:
            keep = set(self.added)
            for index in reversed(range(len(self.pdf.pages))):
                if index not in keep:
                    del self.pdf.pages[index]

    def close(self) -> Path:
        """Write the file (atomically: a .part file renamed) and close."""
        self._finish()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".part")
        self.pdf.save(tmp)
        self.pdf.close()
        tmp.replace(self.path)
        return self.path

    def to_bytes(self) -> bytes:
        """The PDF as bytes, instead of close() (the service's answer)."""
        import io

        self._finish()
        buf = io.BytesIO()
        self.pdf.save(buf)
        self.pdf.close()
        return buf.getvalue()

    def __enter__(self) -> SearchablePdf:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.pdf.close()


def searchable_pdf(results: Iterable, path: str | Path, source: str | Path | bytes | None = None, **kw) -> Path:
    """Write the results of one input as one searchable PDF (see SearchablePdf)."""
    with SearchablePdf(path, source, **kw) as writer:
        for res in results:
            writer.add(res)
    return writer.path


FORMATS = ("json", "img", "pdf", "hocr", "alto", "txt")
SUFFIXES = {"pdf": ".pdf", "hocr": ".hocr", "alto": ".alto.xml", "txt": ".txt"}


class InputWriter:
    """The files of one input (an image, or every page of a PDF) in the document formats (pdf,
    hocr, alto, txt), written page by page: only the text of the pages is held, never their images."""

    def __init__(self, folder: str | Path, name: str, formats: Iterable[str], source_pdf: str | Path | None = None):
        self.folder = Path(folder)
        self.name = name
        self.formats = [f for f in formats if f in SUFFIXES]
        self.parts: dict[str, list[str]] = {f: [] for f in self.formats if f != "pdf"}
        self.pdf = None
        if "pdf" in self.formats:
            target = self.target("pdf")
            if source_pdf is not None and Path(source_pdf).resolve() == target.resolve():
                raise ValueError(f"{target} is the input PDF: choose another name or folder")
            self.pdf = SearchablePdf(target, source_pdf)
        self.pages = 0

    def target(self, fmt: str) -> Path:
        return self.folder / f"{self.name}{SUFFIXES[fmt]}"

    def add(self, res) -> None:
        self.pages += 1
        if self.pdf is not None:
            self.pdf.add(res)
        if "txt" in self.parts:
            self.parts["txt"].append(to_text([res]))
        if "hocr" in self.parts:
            self.parts["hocr"].append(hocr_page(res, self.pages))
        if "alto" in self.parts:
            self.parts["alto"].append(alto_page(res, self.pages))

    def close(self) -> list[Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        if self.pdf is not None:
            written.append(self.pdf.close())
        heads = {"txt": ("", "", "\f"), "hocr": (hocr_head(self.name), HOCR_FOOT, ""),
                 "alto": (alto_head(self.name), ALTO_FOOT, "")}
        for fmt, parts in self.parts.items():
            head, foot, sep = heads[fmt]
            target = self.target(fmt)
            target.write_text(head + sep.join(parts) + foot, encoding="utf-8")
            written.append(target)
        return written
