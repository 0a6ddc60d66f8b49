"""Fuzz campaign of the input layer: mutated images and PDFs through ocrflow's reader (and, for a
share of them, the whole predict()).

    python benchmarks/fuzz.py [--n 10000] [--seed 0] [--predict_every 20] [--json out.json]
    python benchmarks/fuzz.py --cost [--pages 20]     # what the PDF child process costs per page

Seeds: real images of every format the reader takes (JPEG, PNG gray / RGBA / 16-bit, BMP, GIF,
TIFF, WebP), ordinary and hostile PDFs (lying page trees, a page bomb, a render bomb, a huge page,
an encrypted file) and an image header declaring 10^10 pixels. Each input is a seed with 1-3
random mutations (tests/hostile.py: truncation, byte flips, spliced runs, duplicated blocks, numbers
replaced by huge or negative ones, header fields overwritten).

Verdict, printed and in --json: crashes (an exception that is not an ocrflow error, with the input
saved under --save), inputs over their time bound ((pages + 1) x render_timeout + 2 s), the parent's
peak RSS and the renderer children's peak RSS. Exit 1 on any crash or time-out.

--cost renders --pages pages of FUNSD forms (../shared/data/funsd_test, else the demo image) as a
PDF at 144 dpi, three ways, medians per page: pypdfium2 in this process (before the child process),
ocrflow's child process, and a whole predict() per page for scale.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # hostile.py: the bad files the tests use too

import hostile  # noqa: E402

from ocrflow import Limits, OcrflowError, create_pipeline, pdf  # noqa: E402
from ocrflow.inputs import Source, read  # noqa: E402

DEMO = ROOT / "tests" / "data" / "general_ocr_002.png"


def seeds() -> dict[str, bytes]:
    from PIL import Image

    demo = cv2.imread(str(DEMO), cv2.IMREAD_COLOR)
    small = demo[0:120, 380:880]
    rgb = Image.fromarray(small[:, :, ::-1])
    out = {"demo.jpg": DEMO.read_bytes()}
    for fmt, ext, mode in (("PNG", "png", "RGB"), ("PNG", "gray.png", "L"), ("PNG", "rgba.png", "RGBA"),
                           ("BMP", "bmp", "RGB"), ("GIF", "gif", "P"), ("TIFF", "tif", "RGB"),
                           ("WEBP", "webp", "RGB")):
        buf = io.BytesIO()
        rgb.convert(mode).save(buf, fmt)
        out[f"small.{ext}"] = buf.getvalue()
    out["small16.png"] = cv2.imencode(".png", small.astype(np.uint16) * 257)[1].tobytes()
    buf = io.BytesIO()
    rgb.save(buf, "PDF", save_all=True, append_images=[rgb], resolution=144.0)
    out["two_pages.pdf"] = buf.getvalue()
    out.update({
        "lying_count.pdf": hostile.lying_page_count(),
        "self_tree.pdf": hostile.self_referencing_tree(),
        "page_bomb.pdf": hostile.repeated_page(5000),
        "render_bomb.pdf": hostile.render_bomb(200_000),
        "huge_page.pdf": hostile.huge_page(),
        "encrypted.pdf": hostile.encrypted_pdf(),
        "lying_header.png": hostile.lying_png_header(),
    })
    return out


_renderer_peak_kib = [0]
_kill = pdf._Worker.kill


def _kill_and_record(worker) -> None:
    """pdf._Worker.kill, noting the renderer's peak RSS (VmHWM) first."""
    try:
        with open(f"/proc/{worker.proc.pid}/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        _renderer_peak_kib[0] = max(_renderer_peak_kib[0], hwm)
    except (OSError, StopIteration):
        pass
    _kill(worker)


pdf._Worker.kill = _kill_and_record


def child_peak_mib() -> float:
    """Peak RSS of any renderer process so far (the idle ones are ended first)."""
    with pdf._idle_lock:
        idle, pdf._idle[:] = list(pdf._idle), []
    for worker in idle:
        worker.kill()
    return _renderer_peak_kib[0] / 1024


def campaign(args) -> int:
    rng = random.Random(args.seed)
    corpus = seeds()
    names = sorted(corpus)
    limits = Limits(render_timeout=args.render_timeout)
    pipeline = create_pipeline("OCR", device="cpu") if args.predict_every else None
    save = Path(args.save)
    counts = {"ok": 0, "input_error": 0, "crash": 0, "over_time": 0, "pages": 0}
    errors: dict[str, int] = {}
    slowest = (0.0, "")
    start = time.monotonic()
    for i in range(args.n):
        name = rng.choice(names)
        data = corpus[name]
        for _ in range(rng.randint(1, 3)):
            data = hostile.mutate(data, rng)
        label = f"fuzz#{i}:{name}"
        whole = bool(args.predict_every) and i % args.predict_every == 0
        t0 = time.monotonic()
        pages = 0
        try:
            if whole:
                pages = sum(1 for _ in pipeline.predict(data, limits=limits))
            else:
                pages = sum(1 for _ in read(Source("bytes", data, label), limits))
            counts["ok"] += 1
        except OcrflowError as exc:
            counts["input_error"] += 1
            reason = str(exc).split(": ", 1)[-1][:60]
            key = "".join("#" if c.isdigit() else c for c in reason)
            errors[key] = errors.get(key, 0) + 1
        except Exception:
            counts["crash"] += 1
            save.mkdir(parents=True, exist_ok=True)
            (save / f"crash_{i}_{name}").write_bytes(data)
            print(f"CRASH on {label} (saved under {save}):\n{traceback.format_exc()}", file=sys.stderr)
        seconds = time.monotonic() - t0
        counts["pages"] += pages
        if seconds > (pages + 1) * args.render_timeout + 2:
            counts["over_time"] += 1
            print(f"OVER TIME: {label} took {seconds:.1f} s for {pages} pages", file=sys.stderr)
        slowest = max(slowest, (seconds, label))
        if args.progress and (i + 1) % args.progress == 0:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{i + 1}/{args.n}: {counts}, peak RSS {rss:.0f} MiB, {time.monotonic() - start:.0f} s",
                  file=sys.stderr)
    report = {
        "inputs": args.n, "seed": args.seed, "render_timeout": args.render_timeout, **counts,
        "seconds": round(time.monotonic() - start, 1),
        "slowest": {"seconds": round(slowest[0], 2), "input": slowest[1]},
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "renderer_peak_rss_mib": round(child_peak_mib()),
        "errors": dict(sorted(errors.items(), key=lambda kv: -kv[1])[:25]),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 1 if counts["crash"] or counts["over_time"] else 0


def cost(args) -> int:
    """Per-page seconds: in-process pypdfium2 vs the child process vs a whole predict()."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c
    from PIL import Image

    folder = ROOT.parent / "shared" / "data" / "funsd_test" / "images"
    files = sorted(folder.glob("*.png"))[: args.pages] if folder.is_dir() else [DEMO] * args.pages
    images = [Image.open(f).convert("RGB") for f in files]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=144.0)
    data = buf.getvalue()

    def in_process() -> float:
        t0 = time.perf_counter()
        doc = pdfium.PdfDocument(data)
        for index in range(len(doc)):
            page = doc[index]
            bitmap = page.render(scale=2.0, force_bitmap_format=pdfium_c.FPDFBitmap_BGR)
            np.array(bitmap.to_numpy())
            page.close()
        doc.close()
        return (time.perf_counter() - t0) / len(images)

    def child() -> float:
        t0 = time.perf_counter()
        n = sum(1 for _ in pdf.pages(data, "cost.pdf", 2.0))
        return (time.perf_counter() - t0) / n

    def cold_child() -> float:  # a new renderer process for the document (none idle)
        child_peak_mib()
        return child()

    pipeline = create_pipeline("OCR", device="cpu")

    def whole() -> float:
        t0 = time.perf_counter()
        n = sum(1 for _ in pipeline.predict(data))
        return (time.perf_counter() - t0) / n

    child()  # a warm renderer, as in a long run
    rows = {}
    for label, fn in (("in-process pypdfium2", in_process), ("child process (warm)", child),
                      ("child process (new process)", cold_child), ("predict() per page", whole)):
        rows[label] = statistics.median(fn() for _ in range(args.rounds if label != "predict() per page" else 1))
    size = images[0].size
    print(f"{len(images)} pages of {size[0]}x{size[1]} px at 144 dpi ({len(data) / 1e6:.1f} MB PDF), "
          f"median of {args.rounds} rounds, ms per page:")
    base = rows["in-process pypdfium2"]
    for label, seconds in rows.items():
        print(f"  {label:28} {seconds * 1000:8.1f}   ({seconds / base:.2f}x in-process)")
    extra = rows["child process (warm)"] - base
    print(f"child process overhead: {extra * 1000:+.1f} ms per page = "
          f"{100 * extra / rows['predict() per page']:+.1f}% of a whole predict() per page")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000, help="inputs to try")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render_timeout", type=float, default=2.0,
                    help="seconds per PDF page (the library's default is 15; shorter keeps the campaign short)")
    ap.add_argument("--predict_every", type=int, default=20, help="every Nth input through the whole predict()")
    ap.add_argument("--progress", type=int, default=1000, help="a progress line every N inputs")
    ap.add_argument("--save", default="fuzz-crashes", help="folder for inputs that crashed")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--cost", action="store_true", help="measure the PDF child process's cost per page instead")
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    return cost(args) if args.cost else campaign(args)


if __name__ == "__main__":
    sys.exit(main())
