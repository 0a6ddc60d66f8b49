"""Bad input gets a clear error naming the file and the problem; a batch goes on past a bad file."""

from __future__ import annotations

import dataclasses
import gc
import logging
import socket
import tracemalloc

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
from conftest import DEMO, serve_folder
from hostile import encrypted_pdf
from PIL import Image

import ocrflow
from ocrflow import InputError, Limits, ModelError, create_pipeline, inputs, pdf


@pytest.fixture(scope="module")
def small_bgr() -> np.ndarray:
    """The 'BOARDING PASS' strip of the demo: cheap to OCR."""
    image = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(image[0:90, 400:860])


def raises_input_error(pipeline, x, *words: str) -> InputError:
    """predict(x) raises InputError (before yielding anything) whose message holds every word."""
    with pytest.raises(InputError) as info:
        list(pipeline.predict(x))
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return info.value


# -- files -------------------------------------------------------------------------------------
def test_missing_file(pipeline, tmp_path):
    path = tmp_path / "nowhere" / "missing.png"
    raises_input_error(pipeline, str(path), str(path), "no such file")


def test_empty_file(pipeline, tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    raises_input_error(pipeline, str(path), str(path), "empty")


def test_empty_bytes(pipeline):
    raises_input_error(pipeline, b"", "empty")


def test_text_file_named_jpg(pipeline, tmp_path):
    path = tmp_path / "letter.jpg"
    path.write_text("Dear reader, this is not a picture.\n")
    raises_input_error(pipeline, str(path), str(path), "not a readable image")


def test_random_bytes(pipeline):
    data = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    raises_input_error(pipeline, data, "not a readable image")


def test_truncated_jpeg_decodes_partially(pipeline, tmp_path):
    """Half a JPEG: what is there is decoded, the missing rows are plain grey, every time."""
    data = DEMO.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    full = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    decoded = []
    for _ in range(3):
        (label, page), = pipeline.pages(str(path))
        assert label == str(path) and not isinstance(page, Exception)
        decoded.append(page.image)
        np.random.default_rng().integers(0, 256, full.shape, dtype=np.uint8)  # dirty the heap
    assert all(np.array_equal(decoded[0], d) for d in decoded[1:]), "missing rows must not be garbage"
    image = decoded[0]
    assert image.shape == full.shape  # full size, the missing part filled in
    assert np.array_equal(image[:150], full[:150])  # the top is intact
    assert (image[-100:] == 128).all()  # the lost bottom is grey
    (res,) = pipeline.predict(str(path))
    assert res["input_path"] == str(path)
    assert "BOARDING" in res["rec_text"]
    assert 0 < len(res["rec_text"]) < 32  # the full demo has 32 lines


def test_truncated_png(pipeline, tmp_path):
    ok, encoded = cv2.imencode(".png", cv2.imread(str(DEMO), cv2.IMREAD_COLOR))
    path = tmp_path / "half.png"
    path.write_bytes(encoded.tobytes()[: encoded.size // 2])
    raises_input_error(pipeline, str(path), str(path), "not a readable image")


def test_1x1_image(pipeline, tmp_path):
    (res,) = pipeline.predict(np.full((1, 1, 3), 255, np.uint8))
    assert len(res["dt_polys"]) == len(res["rec_text"]) == 0
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.zeros((1, 1, 3), np.uint8))
    (res,) = pipeline.predict(str(path))
    assert res["input_path"] == str(path)
    assert len(res["rec_text"]) <= 1


@pytest.mark.parametrize("shape", [(0, 0, 3), (0, 10), (10, 0, 3), (0,)])
def test_zero_size_array(pipeline, shape):
    raises_input_error(pipeline, np.zeros(shape, np.uint8), str(shape))


def test_array_with_two_channels(pipeline):
    raises_input_error(pipeline, np.zeros((10, 10, 2), np.uint8), "channels", "2")


def test_array_with_too_many_dimensions(pipeline):
    raises_input_error(pipeline, np.zeros((4, 10, 10, 3), np.uint8), "(4, 10, 10, 3)")


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.complex64, object])
def test_array_with_wrong_dtype(pipeline, dtype):
    raises_input_error(pipeline, np.zeros((10, 10, 3), dtype), "dtype", np.dtype(dtype).name)


def test_unsupported_python_type(pipeline):
    raises_input_error(pipeline, 42, "int")


def test_dict_without_img_key(pipeline):
    raises_input_error(pipeline, {"image": str(DEMO)}, "'img'")


# -- size limits -------------------------------------------------------------------------------
def _peak_during_predict(pipeline, image: np.ndarray) -> tuple[int, list]:
    gc.collect()
    tracemalloc.start()
    try:
        results = list(pipeline.predict(image))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, results


def test_huge_bgr_array_memory_is_bounded(pipeline):
    image = np.full((20000, 20000, 3), 255, np.uint8)  # 1.2 GB, at the default pixel limit
    peak, results = _peak_during_predict(pipeline, image)
    assert len(results) == 1 and results[0]["rec_text"] == []
    print(f"20000x20000x3: peak {peak / 1e6:.1f} MB over {image.nbytes / 1e6:.0f} MB input")
    assert peak < 2 * image.nbytes
    assert peak < 0.1 * image.nbytes  # no full-size copy at all: detection reads a resized image


def test_huge_gray_array_memory_is_bounded(pipeline):
    image = np.full((20000, 20000), 255, np.uint8)  # 400 MB
    peak, results = _peak_during_predict(pipeline, image)
    assert len(results) == 1 and results[0]["rec_text"] == []
    print(f"20000x20000 gray: peak {peak / 1e6:.1f} MB over {image.nbytes / 1e6:.0f} MB input")
    # the one BGR copy (3x) and nothing more
    assert peak < 3.2 * image.nbytes


def test_file_above_pixel_limit_via_pipeline(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(DEMO.read_bytes())
    small = create_pipeline(device="cpu", max_pixels=100_000)
    err = raises_input_error(small, str(path), str(path), "100000", "896x528")
    assert "max_pixels" in str(err)


def test_decode_image_pixel_limit():
    with pytest.raises(InputError, match=r"demo\.jpg: .*above the limit of 1000\b"):
        inputs.decode_image(DEMO.read_bytes(), "demo.jpg", max_pixels=1000)
    assert inputs.decode_image(DEMO.read_bytes(), "demo.jpg", max_pixels=896 * 528).shape == (528, 896, 3)


def test_pixel_limit_holds_above_pillows_own_limit(monkeypatch):
    """Images so big that Pillow refuses to read their header must still be checked, not decoded."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the demo is now a 'decompression bomb' to Pillow
    with pytest.raises(InputError, match=r"demo\.jpg: image is 473088 pixels, above the limit of 100000"):
        inputs.decode_image(DEMO.read_bytes(), "demo.jpg", max_pixels=100_000)


def test_pdf_page_above_pixel_limit(small_bgr, tmp_path):
    path = tmp_path / "page.pdf"
    Image.fromarray(small_bgr[:, :, ::-1]).save(path, "PDF", resolution=72.0)
    with pytest.raises(InputError, match=r"page\.pdf: rendering page 0: .* above the limit of 1000 \(max_pixels\)"):
        list(pdf.pages(path.read_bytes(), "page.pdf", 2.0, Limits(max_pixels=1000)))


# -- PDFs --------------------------------------------------------------------------------------
def test_encrypted_pdf(pipeline, tmp_path):
    data = encrypted_pdf(b"secret")
    # the file is a valid encrypted PDF: pdfium opens it with the password
    doc = pdfium.PdfDocument(data, password="secret")
    assert len(doc) == 1
    doc.close()
    path = tmp_path / "locked.pdf"
    path.write_bytes(data)
    raises_input_error(pipeline, str(path), str(path), "encrypted", "password")


def test_broken_pdf(pipeline, tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4 garbage")
    raises_input_error(pipeline, str(path), str(path), "broken")


def test_pdf_with_a_jpg_name_is_read_as_pdf(pipeline, tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"%PDF-1.4 garbage")
    raises_input_error(pipeline, str(path), str(path), "PDF", "broken")


# -- models ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["det_model", "rec_model"])
def test_unknown_model_name(key):
    with pytest.raises(ModelError, match="No_Such_Model_v9"):
        create_pipeline(device="cpu", **{key: "No_Such_Model_v9"})


def test_unknown_setting():
    with pytest.raises(ocrflow.ConfigError, match="bogus_key"):
        create_pipeline(device="cpu", bogus_key=1)


# -- URLs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http_base(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "demo.jpg").write_bytes(DEMO.read_bytes())
    with serve_folder(root) as base:
        yield base


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


LOOPBACK = Limits(url_allow=("127.0.0.1",))


@pytest.fixture(scope="module")
def loopback_pipeline():
    return create_pipeline(device="cpu", url_allow="127.0.0.1")


def test_unreachable_url(loopback_pipeline, no_proxy):
    url = f"http://127.0.0.1:{_closed_port()}/x.png"
    raises_input_error(loopback_pipeline, url, url, "cannot connect")


def test_url_404(loopback_pipeline, http_base, no_proxy):
    url = f"{http_base}/missing.png"
    raises_input_error(loopback_pipeline, url, url, "404")


def test_url_above_size_limit(http_base, no_proxy):
    url = f"{http_base}/demo.jpg"
    limits = dataclasses.replace(LOOPBACK, max_bytes=1000)
    with pytest.raises(InputError, match="1000 byte limit"):
        list(inputs.read(inputs.Source("url", url, url), limits))


# -- batches -----------------------------------------------------------------------------------
@pytest.fixture
def folder_with_bad_file(tmp_path, small_bgr):
    folder = tmp_path / "batch"
    folder.mkdir()
    cv2.imwrite(str(folder / "a_good.png"), small_bgr)
    (folder / "b_bad.jpg").write_text("not an image")
    cv2.imwrite(str(folder / "c_good.jpg"), small_bgr)
    return folder


def test_batch_goes_on_and_reports_to_callback(pipeline, folder_with_bad_file):
    folder = folder_with_bad_file
    failed = []
    results = list(pipeline.predict(str(folder), on_error=lambda label, exc: failed.append((label, exc))))
    assert [r["input_path"] for r in results] == [str(folder / "a_good.png"), str(folder / "c_good.jpg")]
    assert all("BOARDING" in r["rec_text"] for r in results)
    assert len(failed) == 1
    label, exc = failed[0]
    assert label == str(folder / "b_bad.jpg")
    assert isinstance(exc, InputError) and str(folder / "b_bad.jpg") in str(exc)


def test_batch_default_policy_skips_with_warning(pipeline, folder_with_bad_file, caplog):
    folder = folder_with_bad_file
    with caplog.at_level(logging.WARNING, logger="ocrflow"):
        results = list(pipeline.predict(str(folder)))
    assert len(results) == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(folder / "b_bad.jpg") in warnings[0].getMessage()


def test_list_with_bad_item_skips_it(pipeline, small_bgr, tmp_path, caplog):
    missing = tmp_path / "missing.png"
    with caplog.at_level(logging.WARNING, logger="ocrflow"):
        results = list(pipeline.predict([small_bgr, str(missing), small_bgr]))
    assert len(results) == 2
    assert any(str(missing) in r.getMessage() for r in caplog.records)


def test_batch_policy_raise(pipeline, folder_with_bad_file):
    folder = folder_with_bad_file
    gen = pipeline.predict(str(folder), on_error="raise")
    assert next(gen)["input_path"] == str(folder / "a_good.png")
    with pytest.raises(InputError, match="b_bad.jpg"):
        next(gen)


def test_single_bad_input_raises(pipeline, tmp_path):
    path = tmp_path / "bad.png"
    path.write_text("nope")
    raises_input_error(pipeline, str(path), str(path))
    raises_input_error(pipeline, {"img": str(path)}, str(path))


def test_bad_on_error_value(pipeline, small_bgr):
    with pytest.raises(ocrflow.ConfigError, match="on_error"):
        list(pipeline.predict(small_bgr, on_error="ignore"))
