"""The PDF renderer's child process (started by pdf.py as `python -I pdf_worker.py FD_IN FD_OUT PATH`).

It runs as a plain script, importing only the standard library and, from the parent's import path
(PATH, JSON), pypdfium2: it starts fast and nothing of the script's folder can shadow a module. It
answers requests one at a time over two pipes. Requests are JSON headers, some followed by a
payload; every answer is a JSON header, a rendered page is followed by its pixels:

    {"op": "open", "address_space": N} + PDF bytes   -> {"pages": count} | {"error": text}
    {"op": "render", "index": i, "scale": s, "max_pixels": n}
                                                     -> {"height", "width", "stride"} + BGR rows | {"error": text}
    {"op": "close"}                                  -> {"ok": true}

A page that renders too long or a pdfium crash only ends this process: the parent kills it at its
deadline and starts another for the next document.
"""

import json
import resource
import signal
import sys
from multiprocessing.connection import Connection


def _limit_memory(address_space: int) -> None:
    """Cap this process's address space (soft limit only, so the next document may raise it)."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        address_space = min(address_space, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, hard))
    except (ValueError, OSError):  # not enforceable here (macOS): the page's pixel limit still holds
        pass


def _render(pdf, req: dict, out: Connection) -> None:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    try:
        page = pdf[req["index"]]
    except pdfium.PdfiumError as exc:
        out.send_bytes(json.dumps({"error": f"the page cannot be loaded: the page tree is broken ({exc})"}).encode())
        return
    try:
        w, h = page.get_size()
        scale = req["scale"]
        pixels = w * scale * h * scale
        if not pixels <= req["max_pixels"]:  # also refuses NaN sizes
            out.send_bytes(json.dumps({"error": f"renders to {w * scale:.0f} x {h * scale:.0f} pixels at scale "
                                       f"{scale}, above the limit of {req['max_pixels']} (max_pixels)",
                                       "limit": "max_pixels"}).encode())
            return
        bitmap = page.render(scale=scale, force_bitmap_format=pdfium_c.FPDFBitmap_BGR)
        try:
            head = {"height": bitmap.height, "width": bitmap.width, "stride": bitmap.stride}
            out.send_bytes(json.dumps(head).encode())
            out.send_bytes(memoryview(bitmap.buffer).cast("B"))
        finally:
            bitmap.close()
    finally:
        page.close()


def main(fd_in: int, fd_out: int, path: list[str]) -> None:
    sys.path[:] = [p for p in path if p]  # where the parent found pypdfium2 (a venv, PYTHONPATH, --target)
    import pypdfium2 as pdfium

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; EOF ends us
    requests, out = Connection(fd_in, writable=False), Connection(fd_out, readable=False)
    pdf = None
    while True:
        try:
            req = json.loads(requests.recv_bytes())
        except EOFError:
            return
        op = req["op"]
        try:
            if op == "open":
                _limit_memory(req["address_space"])
                data = requests.recv_bytes()
                if pdf is not None:
                    pdf.close()
                pdf = pdfium.PdfDocument(data)
                out.send_bytes(json.dumps({"pages": len(pdf)}).encode())
            elif op == "render":
                _render(pdf, req, out)
            elif op == "close":
                if pdf is not None:
                    pdf.close()
                    pdf = None
                out.send_bytes(b'{"ok": true}')
        except MemoryError:
            out.send_bytes(b'{"error": "ran out of memory while rendering", "limit": "memory"}')
        except Exception as exc:  # pdfium's errors, reported to the parent, which names the file
            out.send_bytes(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]))
