"""ocrflow batch: the plan and the shards without models, then real runs on a local Ray with two
workers and on a two-node Ray cluster started here (a worker killed, the driver killed)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ocrflow
from ocrflow.batch import plan, store
from ocrflow.errors import ConfigError
from ocrflow.limits import Limits

DATA = Path(__file__).parent / "data"
IMAGES = sorted((DATA / "golden" / "imgs_en").glob("*"))  # two real English pictures
FUNSD = Path("/work/shared/data/funsd_test/images")
SRC = str(Path(ocrflow.__file__).resolve().parents[1])  # the ocrflow under test, for Ray's workers


def form_pages(count: int) -> list[Image.Image]:
    """Real scanned forms when the shared data set is here, else the repository's own pictures."""
    files = sorted(FUNSD.glob("*.png"))[:count] if FUNSD.is_dir() else []
    files = files or [DATA / "general_ocr_002.png", *IMAGES]
    return [Image.open(files[i % len(files)]).convert("RGB") for i in range(count)]


def make_pdf(path: Path, pages: list[Image.Image]) -> None:
    pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=144.0)  # rendered at 1:1


def make_bad_files(folder: Path) -> dict[str, str]:
    """Inputs that cannot be read, and a word of the reason each must be given."""
    (folder / "text.png").write_bytes(b"this is not an image")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "cut.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")
    return {"text.png": "not a readable image", "empty.jpg": "empty", "cut.pdf": "PDF cannot be opened"}


def records(folder: Path, kind: str) -> list[dict]:
    return [r for path in sorted((folder / kind).glob("part-*")) for r in store.read_shard(path)]


def assert_exactly_once(out: Path, units: list[plan.Unit], summary: dict) -> None:
    counts = store.census(out, summary["format"])
    assert sorted(counts) == sorted(u.id for u in units)  # every planned page, nothing else
    assert set(counts.values()) == {1}  # once each
    assert summary["complete"] and summary["missing"] == 0 and summary["duplicates"] == 0


# -- the plan -------------------------------------------------------------------------------------


def test_list_inputs_folder_list_file_glob(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/2.png", "a/1.jpg", "a/notes.md", "b.pdf"):
        (tmp_path / name).write_bytes(b"x")
    folder = plan.list_inputs(tmp_path)
    assert folder == [str(tmp_path / "a/1.jpg"), str(tmp_path / "a/2.png"), str(tmp_path / "b.pdf")]
    listing = tmp_path / "inputs.txt"
    listing.write_text("# scans\nb.pdf\na/1.jpg\n\nb.pdf\nmissing.png\n")
    assert plan.list_inputs(listing) == [str(tmp_path / "b.pdf"), str(tmp_path / "a/1.jpg"),
                                         str(tmp_path / "missing.png")]  # duplicates dropped, missing kept
    assert plan.list_inputs(str(tmp_path / "a" / "*.png")) == [str(tmp_path / "a/2.png")]


def test_units_pages_of_a_pdf_and_stable_ids(tmp_path):
    make_pdf(tmp_path / "doc.pdf", form_pages(3))
    shutil.copy(IMAGES[0], tmp_path / "pic.jpg")
    bad = make_bad_files(tmp_path)
    limits = Limits()
    units = list(plan.plan(plan.list_inputs(tmp_path), limits))
    by_name = {}
    for u in units:
        by_name.setdefault(Path(u.path).name, []).append(u)
    assert [u.page for u in by_name["doc.pdf"]] == [0, 1, 2]
    assert [u.page for u in by_name["pic.jpg"]] == [None]
    assert "PDF cannot be opened" in by_name["cut.pdf"][0].error  # found while counting pages
    assert by_name["text.png"][0].error is None  # images are decoded by the workers
    assert len({u.id for u in units}) == len(units) == 3 + 1 + len(bad)
    assert [u.id for u in plan.plan(plan.list_inputs(tmp_path), limits)] == [u.id for u in units]
    assert plan.units_of(str(tmp_path / "nope.png"), limits)[0].error.endswith("no such file or folder")
    os.utime(tmp_path / "pic.jpg", ns=(1, 1))  # a changed file is new work
    assert plan.units_of(str(tmp_path / "pic.jpg"), limits)[0].id != by_name["pic.jpg"][0].id
    assert "above the limit of 2" in plan.units_of(str(tmp_path / "doc.pdf"), Limits(max_pages=2))[0].error


# -- the shards -----------------------------------------------------------------------------------


def result(unit: str, page: int = 0) -> dict:
    return {"unit": unit, "input_path": "/x.pdf", "page_index": page, "dt_polys": [[[1, 2], [3, 4], [5, 6], [7, 8]]],
            "dt_scores": [0.9], "rec_text": ["word"], "rec_score": [0.99], "settings": {"det_model": "m"}}


@pytest.mark.parametrize("fmt", store.FORMATS)
def test_shards_round_trip_skip_temporaries_and_deduplicate(tmp_path, fmt):
    first = store.write_shard(tmp_path, "results", [result("a", 0), result("b", 1)], fmt)
    assert store.write_shard(tmp_path, "results", [result("b", 1), result("a", 0)], fmt) == first  # same units
    assert store.read_shard(first) == [result("b", 1), result("a", 0)]  # replaced by the same records
    empty = {**result("e"), "dt_polys": [], "dt_scores": [], "rec_text": [], "rec_score": []}
    store.write_shard(tmp_path, "results", [empty], fmt)  # a page without text keeps the columns' types
    store.write_shard(tmp_path, "errors", [{"unit": "c", "input_path": "/y.png", "page_index": None,
                                             "reason": "/y.png: broken"}], fmt)
    (tmp_path / "results" / f"{store.TMP_PREFIX}part-zzz.{fmt}.1").write_bytes(b"half a shard")  # a killed write
    assert store.done_units(tmp_path, fmt) == {"a", "b", "c", "e"}
    store.clean_temporaries(tmp_path)
    assert not list((tmp_path / "results").glob(f"{store.TMP_PREFIX}*"))

    store.write_shard(tmp_path, "results", [result("b", 1), result("d", 2)], fmt)  # "b" a second time
    assert store.census(tmp_path, fmt)["b"] == 2
    assert store.deduplicate(tmp_path, fmt) == 1
    counts = store.census(tmp_path, fmt)
    assert counts == {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}
    assert store.deduplicate(tmp_path, fmt) == 0
    table = store.write_errors_table(tmp_path, fmt)
    assert [(r["input_path"], r["page_index"], r["reason"]) for r in store.read_shard(table)] == [
        ("/y.png", None, "/y.png: broken")]


def test_worker_without_ray_word_boxes_in_parquet(tmp_path):
    """OcrWorker as Ray calls it, here in process: records of a picture, a PDF page and a bad file."""
    from ocrflow.batch.runner import recorded_settings
    from ocrflow.batch.worker import OcrWorker
    from ocrflow.config import PipelineConfig

    make_pdf(tmp_path / "doc.pdf", form_pages(1))
    conf = PipelineConfig(return_word_box=True)
    worker = OcrWorker(conf, recorded_settings(conf))
    paths = [str(IMAGES[1]), str(tmp_path / "doc.pdf"), str(tmp_path / "doc.pdf"), str(tmp_path / "none.png")]
    out = worker({"unit": np.array(["a", "b", "c", "d"]), "path": np.array(paths), "page": np.array([-1, 0, 1, -1])})
    assert list(out["ok"]) == [True, True, False, False]
    records = [json.loads(t) for t in out["record"]]
    assert "past the end of the PDF" in records[2]["reason"] and "no such file" in records[3]["reason"]
    assert records[0]["page_index"] is None and records[1]["page_index"] == 0
    assert len(records[0]["text_word"]) == len(records[0]["rec_text"]) > 0
    shard = store.write_json_shard(tmp_path, "results", ["a", "b"], list(out["record"][:2]), "parquet")
    assert store.read_shard(shard) == records[:2]  # nested word boxes and settings survive Parquet


def test_resume_refuses_other_settings(tmp_path):
    store.check_settings(tmp_path, {"det_model": "a", "limits": {"max_pages": 5}})
    store.check_settings(tmp_path, {"det_model": "a", "limits": {"max_pages": 5}})
    with pytest.raises(ConfigError, match="det_model differ"):
        store.check_settings(tmp_path, {"det_model": "b", "limits": {"max_pages": 5}})


# -- a local Ray, two workers ----------------------------------------------------------------------


def test_cli_verb_and_its_errors(tmp_path, capsys):
    from ocrflow.cli import main

    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    assert "--cpus_per_worker" in capsys.readouterr().out
    (tmp_path / "file").write_text("x")
    assert main(["batch", "--input", str(tmp_path), "--output", str(tmp_path / "file")]) == 1
    assert "is a file: give a folder" in capsys.readouterr().err
    assert main(["batch", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--box_thresh", "-1"]) == 1
    assert "box_thresh" in capsys.readouterr().err


def test_local_ray_two_workers_every_page_once_and_bad_files_reported(tmp_path, pipeline, caplog):
    pytest.importorskip("ray.data")
    from ocrflow.batch import run

    caplog.set_level("INFO", logger="ocrflow")

    inputs = tmp_path / "in"
    inputs.mkdir()
    for image in IMAGES:
        shutil.copy(image, inputs / image.name)
    make_pdf(inputs / "forms.pdf", form_pages(4))
    bad = make_bad_files(inputs)
    out = tmp_path / "out"
    summary = run(inputs, out, workers=2, pages_per_block=1, shard_pages=2, log_every=3)
    assert "batch: 3/8 pages" in caplog.text and "batch: 6/8 pages" in caplog.text  # cut.pdf failed in the plan
    units = list(plan.plan(plan.list_inputs(inputs), Limits()))
    assert summary["workers"] == 2 and summary["pages"] == len(units) == 2 + 4 + len(bad)
    assert summary["results"] == 6 and summary["errors"] == len(bad)
    assert_exactly_once(out, units, summary)

    # the same answers as the pipeline in this process, page by page
    got = {(Path(r["input_path"]).name, r["page_index"]): r for r in records(out, "results")}
    for res in pipeline.predict([str(p) for p in (*IMAGES, inputs / "forms.pdf")]):
        mine = got[(Path(res["input_path"]).name, res["page_index"])]
        assert mine["rec_text"] == res["rec_text"]
        assert np.array_equal(np.reshape(mine["dt_polys"], (-1, 4, 2)), np.reshape(res["dt_polys"], (-1, 4, 2)))
        assert mine["settings"]["det_model"] == pipeline.config.det_model
    errors = store.read_shard(out / "errors.jsonl")
    assert {Path(e["input_path"]).name: e["page_index"] for e in errors} == dict.fromkeys(bad)
    for e in errors:
        assert bad[Path(e["input_path"]).name] in e["reason"] and e["input_path"] in e["reason"]
    assert json.loads((out / "summary.json").read_text()) == summary

    again = run(inputs, out, workers=2)  # nothing left to do: Ray is not even started
    assert again["processed"] == 0 and again["skipped"] == len(units) and again["workers"] == 0
    assert_exactly_once(out, units, again)


# -- a two-node Ray cluster on this machine ---------------------------------------------------------

RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": SRC}
PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def processes_of(root: str) -> list[int]:
    """The processes of one Ray node: those whose command line names its temp dir, and their children."""
    mine, parents = set(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if root in (entry / "cmdline").read_bytes().decode(errors="replace"):
                mine.add(int(entry.name))
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return sorted(mine | {pid for pid, ppid in parents.items() if ppid in mine})


def stop(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + 3
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and
                                                                            "Z" not in _state(p) for p in pids):
            time.sleep(0.2)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` and a second node `ray start --address`, each with its own temp dir, on
    free ports, 1 CPU each; stopped (every process of theirs, by id) even when a test fails."""
    pytest.importorskip("ray.data")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    env = {**os.environ, **RAY_ENV}
    roots = [tempfile.mkdtemp(prefix="ocrflow-ray-", dir="/tmp") for _ in range(2)]  # short: socket paths
    head_port, dashboard, *ports = free_ports(2 + 2 * len(PORT_FLAGS))
    address = f"127.0.0.1:{head_port}"
    try:
        for node, root in enumerate(roots):
            flags = [x for i, flag in enumerate(PORT_FLAGS) for x in (flag, str(ports[node * len(PORT_FLAGS) + i]))]
            role = (["--head", f"--port={head_port}", "--include-dashboard=false", f"--dashboard-port={dashboard}"]
                    if node == 0 else [f"--address={address}"])
            subprocess.run([ray_cli, "start", *role, "--num-cpus=1", f"--temp-dir={root}",
                            "--node-ip-address=127.0.0.1", "--disable-usage-stats", *flags],
                           env=env, check=True, timeout=180, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        yield address, env, roots
    finally:
        for root in roots[::-1]:
            stop(processes_of(root))
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """12 pages: an 8-page PDF of forms and 4 pictures."""
    folder = tmp_path_factory.mktemp("archive")
    make_pdf(folder / "forms.pdf", form_pages(8))
    for i, image in enumerate(IMAGES * 2):
        shutil.copy(image, folder / f"{i}{image.suffix}")
    return folder, list(plan.plan(plan.list_inputs(folder), Limits()))


def start_batch(archive_dir: Path, out: Path, address: str, env: dict) -> subprocess.Popen:
    """`ocrflow batch` as a user runs it, one page per task and per shard: many points to stop at."""
    return subprocess.Popen(
        [sys.executable, "-m", "ocrflow.cli", "batch", "--input", str(archive_dir), "--output", str(out),
         "--address", address, "--workers", "2", "--format", "parquet", "--pages_per_block", "1",
         "--shard_pages", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_shards(out: Path, count: int, proc: subprocess.Popen, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        written = len(list((out / "results").glob("part-*.parquet")))
        if written >= count:
            return written
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} shards after {timeout} s")


def map_workers(root: str) -> list[int]:
    """The Ray Data actors (OcrWorker) of one node."""
    return [pid for pid in processes_of(root)
            if "MapWorker" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]


def finish(proc: subprocess.Popen, out: Path) -> dict:
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads((out / "summary.json").read_text())  # stdout has Ray's worker logs too


def test_cluster_worker_killed_mid_run_nothing_lost_nothing_twice(cluster, archive, tmp_path):
    address, env, roots = cluster
    folder, units = archive
    out = tmp_path / "out"
    proc = start_batch(folder, out, address, env)
    try:
        wait_for_shards(out, 2, proc)
        deadline = time.monotonic() + 60
        while not (victims := map_workers(roots[1])) and time.monotonic() < deadline:
            time.sleep(0.2)  # the second node's actor may still be starting
        assert len(victims) == 1  # the OCR actor on the second node
        os.kill(victims[0], signal.SIGKILL)
        assert len(list((out / "results").glob("part-*"))) < len(units)  # killed mid-run
        summary = finish(proc, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert summary["processed"] == len(units) and summary["results"] == len(units)
    assert_exactly_once(out, units, summary)
    pages = sorted(r["page_index"] for r in records(out, "results") if r["input_path"].endswith("forms.pdf"))
    assert pages == list(range(8))


def test_cluster_driver_killed_then_rerun_processes_only_the_missing_pages(cluster, archive, tmp_path):
    address, env, _ = cluster
    folder, units = archive
    out = tmp_path / "out"
    proc = start_batch(folder, out, address, env)
    try:
        wait_for_shards(out, 3, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and nothing else: Ray ends its job
        proc.communicate()
    before = store.done_units(out, "parquet")
    assert 3 <= len(before) < len(units)
    summary = finish(start_batch(folder, out, address, env), out)
    assert summary["skipped"] == len(before)
    assert summary["processed"] == len(units) - len(before)
    assert_exactly_once(out, units, summary)
    assert store.read_shard(out / "errors.parquet") == []
