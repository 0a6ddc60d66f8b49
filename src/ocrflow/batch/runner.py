"""ocrflow.batch.run: plan the pages, OCR them on Ray Data's actor pool, write the shards, check.

Ray does the scheduling, the transport and the retries: the plan is a dataset of units
(`from_items`), `map_batches` runs OcrWorker on a fixed pool of actors (each loads the models
once), streaming execution with Ray's backpressure, and the driver consumes the results as they
come (`iter_batches`) and writes them into shards (store.py). See docs/batch.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

from .. import __version__
from .. import config as cfg
from ..errors import ConfigError, OcrflowError
from . import plan, store
from .worker import OcrWorker, error_record

log = logging.getLogger("ocrflow")

# Settings that do not change a result: left out of the settings recorded with each record, so a
# resume may use other workers or threads.
NOT_RECORDED = {"cpu_threads", "process_tuning", "input"}
TASK_RETRIES = 5


@dataclasses.dataclass
class Progress:
    """Pages written so far; a log line every `every` pages (Ray Data's bar is for terminals)."""

    total: int
    every: int
    done: int = 0
    errors: int = 0
    start: float = dataclasses.field(default_factory=time.monotonic)
    next_log: int = 0
    first: float | None = None  # when the first page came back (Ray and the models started)
    last: float | None = None

    def add(self, ok: bool) -> None:
        self.last = time.monotonic()
        self.first = self.first or self.last
        self.done += 1
        self.errors += not ok
        if self.every and self.done >= self.next_log + self.every:
            self.next_log = self.done - self.done % self.every
            rate = self.done / max(time.monotonic() - self.start, 1e-9)
            log.info("batch: %d/%d pages, %d errors, %.2f pages/s", self.done, self.total, self.errors, rate)


def recorded_settings(conf: cfg.PipelineConfig) -> dict:
    settings = {k: v for k, v in dataclasses.asdict(conf).items() if k not in NOT_RECORDED}
    settings["limits"]["url_allow"] = list(settings["limits"]["url_allow"])
    settings["ocrflow"] = __version__
    return settings


def run(
    input,
    output: str | os.PathLike,
    *,
    pipeline: str = "OCR",
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    format: str = "jsonl",
    device: str | None = None,
    use_hpip: bool = False,
    pages_per_block: int = 4,
    shard_pages: int = 256,
    shard_seconds: float = 30.0,
    log_every: int = 1000,
    progress_bar: bool | None = None,
    **settings,
) -> dict:
    """OCR every page of `input` (folder, list file, glob, path or list of these) on Ray into
    `output`; returns the summary (also written to <output>/summary.json).

    address: None starts a local Ray on this machine (and stops it at the end), "auto" or
    "ray://host:port" joins a cluster (a Ray already initialised in this process is used as it is).
    workers: actors, each with `cpus_per_worker` CPUs and as many inference threads (default: as
    many as the cluster's CPUs allow). settings: the pipeline settings of create_pipeline().
    Running it again on the same output processes only the pages not written yet."""
    if format not in store.FORMATS:
        raise ConfigError(f"format must be one of {', '.join(store.FORMATS)}, got {format!r}")
    for name, value in (("cpus_per_worker", cpus_per_worker), ("pages_per_block", pages_per_block),
                        ("shard_pages", shard_pages)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    wall = time.monotonic()
    base, _ = cfg.load(pipeline)
    if device is not None:
        settings.update(device=device, det_device=None, rec_device=None)
    if use_hpip:
        settings["use_hpip"] = True
    settings.update(cpu_threads=cpus_per_worker, process_tuning=True)  # an actor is a process of its own
    conf = cfg.build(settings, base, where="batch")
    record_settings = recorded_settings(conf)

    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file: give a folder")
    store.check_settings(folder, record_settings)
    store.clean_temporaries(folder)
    repaired = store.deduplicate(folder, format)
    done = store.done_units(folder, format)

    paths = plan.list_inputs(input)
    units = list(plan.plan(paths, conf.limits))
    failed = [error_record(u.id, u.path, u.page, u.error) for u in units if u.error and u.id not in done]
    store.write_shard(folder, "errors", failed, format)
    todo = [u for u in units if not u.error and u.id not in done]
    log.info("batch: %d inputs, %d pages; %d already written, %d to do", len(paths), len(units),
             len(units) - len(todo) - len(failed), len(todo))

    processed = Progress(len(todo), log_every)
    used_workers = 0
    if todo:
        used_workers = _process(todo, folder, format, conf, record_settings, address, workers,
                                cpus_per_worker, pages_per_block, shard_pages, shard_seconds, processed,
                                progress_bar)
    seconds = time.monotonic() - processed.start

    return _finish(folder, format, units, {
        "processed": processed.done, "skipped": len(units) - len(todo) - len(failed),
        "errors_this_run": processed.errors + len(failed), "seconds_ocr": round(seconds, 3),
        "pages_per_s": round(processed.done / seconds, 3) if processed.done else 0.0,
        # from the first page back to the last: the rate once Ray and the models are up
        "first_page_s": round(processed.first - processed.start, 3) if processed.first else None,
        "steady_pages_per_s": round((processed.done - 1) / (processed.last - processed.first), 3)
        if processed.done > 1 and processed.last > processed.first else None,
        "wall_s": round(time.monotonic() - wall, 3), "workers": used_workers, "cpus_per_worker": cpus_per_worker,
        "address": address or "local", "format": format, "repaired_duplicates": repaired,
    })


def _process(todo, folder, fmt, conf, record_settings, address, workers, cpus_per_worker,
             pages_per_block, shard_pages, shard_seconds, progress: Progress, progress_bar) -> int:
    try:
        import ray
        from ray.data import ActorPoolStrategy, DataContext
    except ModuleNotFoundError as exc:
        raise ConfigError(f"ocrflow batch needs Ray ({exc.name} is missing): pip install 'ocrflow[cluster]'") from None

    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            need = (workers or 1) * cpus_per_worker
            ray.init(num_cpus=max(os.cpu_count() or 1, need), include_dashboard=False, logging_level=logging.WARNING)
        started = True
    ctx = DataContext.get_current()
    saved = ctx.enable_progress_bars
    ctx.enable_progress_bars = sys.stderr.isatty() if progress_bar is None else progress_bar
    buffer: dict[str, tuple[list, list]] = {"results": ([], []), "errors": ([], [])}  # (unit ids, JSON texts)
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        for kind, (units, texts) in buffer.items():
            store.write_json_shard(folder, kind, units, texts, fmt)
            units.clear()
            texts.clear()
        last_flush = time.monotonic()

    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if workers is None:
            workers = max(1, cpus // cpus_per_worker)
        if workers * cpus_per_worker > cpus:  # Ray would wait for an autoscaler to add nodes
            log.warning("batch: %d workers x %d CPUs asked for, the cluster has %d CPUs: the workers that do "
                        "not fit wait until CPUs are free", workers, cpus_per_worker, cpus)
        rows = [{"unit": u.id, "path": u.path, "page": -1 if u.page is None else u.page} for u in todo]
        ds = ray.data.from_items(rows, override_num_blocks=math.ceil(len(rows) / pages_per_block))
        del rows  # the blocks hold the plan now
        ds = ds.map_batches(
            OcrWorker,
            fn_constructor_kwargs={"config": conf, "record_settings": record_settings},
            batch_size=pages_per_block, batch_format="numpy", compute=ActorPoolStrategy(size=workers),
            num_cpus=cpus_per_worker,
            # Ray restarts a dead worker forever, and reruns its tasks this many times: a lost node
            # costs one retry; a page that kills every worker it meets stops the run, not loops.
            max_task_retries=TASK_RETRIES,
        )
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for unit, ok, text in zip(batch["unit"], batch["ok"], batch["record"]):
                    units, texts = buffer["results" if ok else "errors"]
                    units.append(str(unit))
                    texts.append(str(text))
                    progress.add(bool(ok))
                held = len(buffer["results"][0]) + len(buffer["errors"][0])
                if held >= shard_pages or time.monotonic() - last_flush >= shard_seconds:
                    flush()
        except ray.exceptions.RayError as exc:
            raise OcrflowError(f"the Ray run stopped ({type(exc).__name__}: {str(exc)[:500]}); the "
                               f"{progress.done} pages received are written: run the same command to go on") from exc
    finally:
        flush()  # what arrived is whole: written even when the run is interrupted
        ctx.enable_progress_bars = saved
        if started:
            ray.shutdown()
    return workers


def _finish(folder: Path, fmt: str, units: list, figures: dict) -> dict:
    """The exactly-once check over the whole folder, the errors table and the summary."""
    figures["repaired_duplicates"] += store.deduplicate(folder, fmt)
    per_kind = {kind: store.census(folder, fmt, [kind]) for kind in store.KINDS}
    counts = per_kind["results"] + per_kind["errors"]
    planned = {u.id for u in units}
    results, errors = (sum(n for u, n in per_kind[kind].items() if u in planned) for kind in ("results", "errors"))
    missing = sum(1 for u in planned if counts[u] == 0)
    summary = {
        "pages": len(planned), "results": results, "errors": errors, "missing": missing,
        "duplicates": sum(1 for u in planned if counts[u] > 1),
        "stale": sum(1 for u in counts if u not in planned),  # inputs changed or removed since written
        **figures,
    }
    summary["complete"] = missing == 0 and summary["duplicates"] == 0
    store.write_errors_table(folder, fmt)
    store.write_atomic(folder / "summary.json", json.dumps(summary, indent=2).encode())
    return summary
