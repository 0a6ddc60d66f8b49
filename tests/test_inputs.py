"""Every input kind `predict` accepts (SPEC section 1) reads the demo image the same way as its path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from conftest import DEMO, serve_folder
from PIL import Image

from ocrflow import InputError, Limits, create_pipeline, inputs, pdf


def texts(results) -> list[list[str]]:
    return [r["rec_text"] for r in results]


@pytest.fixture(scope="module")
def demo_bgr() -> np.ndarray:
    image = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (528, 896, 3)
    return image


@pytest.fixture(scope="module")
def reference(pipeline) -> list[str]:
    """The texts of the demo read by its path: what every other input kind must give."""
    (res,) = pipeline.predict(str(DEMO))
    assert res["input_path"] == str(DEMO)
    assert res["page_index"] is None
    assert "BOARDING" in res["rec_text"] and len(res["rec_text"]) >= 25
    return res["rec_text"]


@pytest.fixture(scope="module")
def small_bgr(demo_bgr) -> np.ndarray:
    """The 'BOARDING PASS' strip of the demo: cheap to OCR."""
    return np.ascontiguousarray(demo_bgr[0:90, 400:860])


def page_images(pipeline, x) -> list[np.ndarray]:
    """The decoded pages of an input, without running the models."""
    out = []
    for label, item in pipeline.pages(x):
        assert not isinstance(item, Exception), f"{label}: {item}"
        out.append(item.image)
    return out


def test_path_input(pipeline, reference, demo_bgr):
    (image,) = page_images(pipeline, str(DEMO))
    assert image.shape == demo_bgr.shape and image.dtype == np.uint8
    assert np.array_equal(image, demo_bgr)


def test_pathlib_path_input(pipeline, demo_bgr):
    (source,) = inputs.expand(DEMO)
    (page,) = inputs.read(source)
    assert page.input_path == str(DEMO)
    assert np.array_equal(page.image, demo_bgr)


def test_bgr_array(pipeline, reference, demo_bgr):
    (res,) = pipeline.predict(demo_bgr)
    assert res["input_path"] is None and res["page_index"] is None
    assert res["rec_text"] == reference


def test_gray_array_is_converted_to_bgr(pipeline, demo_bgr):
    gray = cv2.cvtColor(demo_bgr, cv2.COLOR_BGR2GRAY)
    (image,) = page_images(pipeline, gray)
    assert image.shape == demo_bgr.shape
    assert np.array_equal(image, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    (res,) = pipeline.predict(gray)
    assert res["input_path"] is None
    assert "BOARDING" in res["rec_text"] and len(res["rec_text"]) >= 25


def test_gray_png_file(pipeline, demo_bgr, tmp_path):
    gray = cv2.cvtColor(demo_bgr, cv2.COLOR_BGR2GRAY)
    path = tmp_path / "gray.png"
    assert cv2.imwrite(str(path), gray)
    (image,) = page_images(pipeline, str(path))
    assert np.array_equal(image, cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))


def test_gray_array_with_channel_axis(demo_bgr):
    gray = cv2.cvtColor(demo_bgr, cv2.COLOR_BGR2GRAY)
    assert np.array_equal(inputs.to_bgr(gray[:, :, None]), inputs.to_bgr(gray))


def test_bgra_array(pipeline, reference, demo_bgr):
    bgra = cv2.cvtColor(demo_bgr, cv2.COLOR_BGR2BGRA)
    assert bgra.shape[2] == 4
    (res,) = pipeline.predict(bgra)
    assert res["rec_text"] == reference


def test_bgra_transparent_pixels_become_white():
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[:2, :, 3] = 255  # top half opaque black, bottom half fully transparent
    bgr = inputs.to_bgr(bgra)
    assert bgr.shape == (4, 4, 3) and bgr.dtype == np.uint8
    assert (bgr[:2] == 0).all() and (bgr[2:] == 255).all()


def test_16bit_png(pipeline, reference, demo_bgr, tmp_path):
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), demo_bgr.astype(np.uint16) * 257)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    (res,) = pipeline.predict(str(path))
    assert res["input_path"] == str(path)
    assert res["rec_text"] == reference


def test_float_array_in_0_1(demo_bgr):
    assert np.array_equal(inputs.to_bgr(demo_bgr.astype(np.float32) / 255), demo_bgr)


def test_pil_image(pipeline, reference):
    with Image.open(DEMO) as im:
        (res,) = pipeline.predict(im)
    assert res["input_path"] is None
    assert res["rec_text"] == reference


def test_transparent_pil_image_matches_its_file(pipeline, tmp_path):
    """Black text on a transparent background: read over white, whether given as a file or a PIL image."""
    rgba = np.zeros((60, 220, 4), np.uint8)  # fully transparent black
    cv2.putText(rgba, "HELLO", (10, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 0, 255), 3)
    path = tmp_path / "transparent.png"
    assert cv2.imwrite(str(path), rgba)
    (from_file,) = page_images(pipeline, str(path))
    with Image.open(path) as im:
        assert im.mode == "RGBA"
        (from_pil,) = page_images(pipeline, im)
        (res,) = pipeline.predict(im)
    assert from_file.mean() > 200  # white background
    assert np.array_equal(from_pil, from_file)
    assert res["rec_text"] == ["HELLO"]
    (res_rgba,) = pipeline.predict(rgba)  # a BGRA array: the same
    assert res_rgba["rec_text"] == ["HELLO"]


def test_bytes(pipeline, reference):
    (res,) = pipeline.predict(DEMO.read_bytes())
    assert res["input_path"] is None
    assert res["rec_text"] == reference


def test_dict_input(pipeline, reference):
    (res,) = pipeline.predict({"img": str(DEMO)})
    assert res["input_path"] == str(DEMO)
    assert res["rec_text"] == reference


def test_list_of_path_and_array_keeps_order(pipeline, reference, demo_bgr):
    results = list(pipeline.predict([str(DEMO), demo_bgr]))
    assert len(results) == 2
    assert [r["input_path"] for r in results] == [str(DEMO), None]
    assert texts(results) == [reference, reference]


def test_predict_is_a_generator(pipeline, small_bgr):
    gen = pipeline.predict([small_bgr, small_bgr])
    assert iter(gen) is gen
    first = next(gen)
    assert "BOARDING" in first["rec_text"]
    assert len(list(gen)) == 1


def test_folder_recursive_sorted_non_images_ignored(pipeline, small_bgr, tmp_path):
    (res_small,) = pipeline.predict(small_bgr)
    assert "BOARDING" in res_small["rec_text"]
    folder = tmp_path / "scans"
    (folder / "b_sub").mkdir(parents=True)
    (folder / "b_sub" / "deeper").mkdir()
    cv2.imwrite(str(folder / "c.png"), small_bgr)
    cv2.imwrite(str(folder / "a.bmp"), small_bgr)
    cv2.imwrite(str(folder / "b_sub" / "x.png"), small_bgr)
    cv2.imwrite(str(folder / "b_sub" / "deeper" / "y.png"), small_bgr)
    cv2.imwrite(str(folder / "D.JPG"), small_bgr)  # upper-case suffixes count
    (folder / "notes.txt").write_text("not an image")
    (folder / "b_sub" / "data.json").write_text("{}")
    (folder / "README").write_bytes(b"\x00\x01")
    results = list(pipeline.predict(str(folder)))
    expected = [folder / "D.JPG", folder / "a.bmp", folder / "b_sub" / "deeper" / "y.png",
                folder / "b_sub" / "x.png", folder / "c.png"]
    assert [r["input_path"] for r in results] == [str(p) for p in expected]
    assert all(r["rec_text"] == res_small["rec_text"] for r in results)


def test_png_named_jpg_is_decoded_by_content(pipeline, reference, demo_bgr, tmp_path):
    path = tmp_path / "really_a_png.jpg"
    ok, encoded = cv2.imencode(".png", demo_bgr)
    assert ok
    path.write_bytes(encoded.tobytes())
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (res,) = pipeline.predict(str(path))
    assert res["input_path"] == str(path)
    assert res["rec_text"] == reference


def test_jpeg_named_png_is_decoded_by_content(pipeline, reference, tmp_path):
    data = DEMO.read_bytes()
    assert data[:3] == b"\xff\xd8\xff"  # the demo itself is a JPEG named .png
    path = tmp_path / "copy.png"
    path.write_bytes(data)
    (res,) = pipeline.predict(str(path))
    assert res["rec_text"] == reference


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 (free port) serving a folder; yields (base URL, folder)."""
    root = tmp_path_factory.mktemp("www")
    with serve_folder(root) as base:
        yield base, root


def test_http_url(pipeline, reference, http_root, no_proxy):
    base, root = http_root
    (root / "demo.png").write_bytes(DEMO.read_bytes())
    url = f"{base}/demo.png"
    with pytest.raises(InputError, match="loopback address; the url_allow setting can permit it"):
        list(pipeline.predict(url))  # not a public address: refused by default
    (res,) = pipeline.predict(url, limits=Limits(url_allow=("127.0.0.1",)))
    assert res["input_path"] == url
    assert res["page_index"] is None
    assert res["rec_text"] == reference


def make_pdf(path, image_bgr: np.ndarray, pages: int, resolution: float) -> None:
    """A PDF of `pages` copies of the image, `resolution` pixels per inch (72 -> 1 px per point)."""
    im = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    im.save(path, "PDF", save_all=True, append_images=[im] * (pages - 1), resolution=resolution)


def test_two_page_pdf(pipeline, reference, demo_bgr, tmp_path):
    path = tmp_path / "two.pdf"
    make_pdf(path, demo_bgr, pages=2, resolution=144.0)  # rendered at the default scale 2.0: the demo's size
    results = list(pipeline.predict(str(path)))
    assert [r["page_index"] for r in results] == [0, 1]
    assert [r["input_path"] for r in results] == [str(path), str(path)]
    for res in results:
        assert "BOARDING" in res["rec_text"]
        shared = set(res["rec_text"]) & set(reference)
        assert len(shared) >= 0.8 * len(reference)  # re-encoded in the PDF: near-identical texts
    assert results[0]["rec_text"] == results[1]["rec_text"]


def test_pdf_given_as_bytes(pipeline, small_bgr, tmp_path):
    path = tmp_path / "one.pdf"
    make_pdf(path, small_bgr, pages=1, resolution=144.0)
    (res,) = pipeline.predict(path.read_bytes())
    assert res["input_path"] is None and res["page_index"] == 0
    assert "BOARDING" in res["rec_text"]


def test_pdf_pages_render_scale(demo_bgr, tmp_path):
    path = tmp_path / "scale.pdf"
    make_pdf(path, demo_bgr, pages=2, resolution=72.0)  # 896 x 528 points
    data = path.read_bytes()
    at_1 = list(pdf.pages(data, "scale.pdf", 1.0))
    at_2 = list(pdf.pages(data, "scale.pdf", 2.0))
    assert [p.shape for p in at_1] == [(528, 896, 3)] * 2
    assert [p.shape for p in at_2] == [(1056, 1792, 3)] * 2
    assert all(p.dtype == np.uint8 for p in at_1 + at_2)
    # pdfium's BGR order is kept: the rendered page looks like the source image.
    diff = np.abs(at_1[0].astype(np.int16) - demo_bgr.astype(np.int16))
    assert diff.mean() < 5  # swapped channels would give ~14


def test_pdf_render_scale_setting(small_bgr, tmp_path):
    path = tmp_path / "strip.pdf"
    make_pdf(path, small_bgr, pages=1, resolution=72.0)  # 460 x 90 points
    h, w = small_bgr.shape[:2]
    (at_1,) = create_pipeline(device="cpu", pdf_render_scale=1.0).predict(str(path))
    (at_2,) = create_pipeline(device="cpu").predict(str(path))
    assert at_1.img.shape == (h, 2 * w, 3)
    assert at_2.img.shape == (2 * h, 4 * w, 3)
    assert "BOARDING" in at_1["rec_text"] and "BOARDING" in at_2["rec_text"]
    xs_1 = max(int(p[:, 0].max()) for p in at_1["dt_polys"])
    xs_2 = max(int(p[:, 0].max()) for p in at_2["dt_polys"])
    assert xs_1 <= w and w < xs_2 <= 2 * w
