"""The FastAPI app: PaddleX 3.0-beta2 basic serving (`POST /ocr`, `GET /health`), `/metrics`, and
the web demo at `/`.

    create_app(pipeline, settings) -> FastAPI      # any object with the OCRPipeline.predict API
    app_from_env()                                 # factory for uvicorn workers: OCRFLOW_SERVE_CONFIG

Inference runs in a bounded thread pool (`threads`); at most `threads + queue_size` OCR requests
are admitted at once, the next gets 503 with Retry-After at once. URL downloads run in their own
threads, so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__
from .. import fetch as fetching
from ..errors import Cancelled
from . import process
from .metrics import Metrics
from .middleware import ServingMiddleware, log
from .schema import HealthResponse, InferRequest, InferResponse, error_responses
from .settings import ServeSettings

STATIC = Path(__file__).parent / "static"
ENV_CONFIG = "OCRFLOW_SERVE_CONFIG"
DEMO_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Runtime:
    """What the routes share: the pipeline, settings, thread pools, admission count and metrics."""

    def __init__(self, pipeline, settings: ServeSettings):
        self.pipeline = pipeline
        self.settings = settings
        self.capacity = settings.threads + settings.queue_size
        self.pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="ocrflow-ocr")
        self.fetch_pool = ThreadPoolExecutor(min(32, self.capacity), thread_name_prefix="ocrflow-fetch")
        self.limits = settings.input_limits()
        self.metrics = Metrics()
        self._admitted = 0
        self._lock = threading.Lock()

    def try_admit(self) -> bool:
        with self._lock:
            if self._admitted >= self.capacity:
                return False
            self._admitted += 1
        self.metrics.queue.inc()
        return True

    def release(self, *_ignored) -> None:
        with self._lock:
            self._admitted -= 1
        self.metrics.queue.dec()

    def shutdown(self) -> None:
        self.fetch_pool.shutdown(wait=False, cancel_futures=True)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.metrics.multiprocess:  # this worker's live gauges stop counting
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


def log_id_of(request: Request) -> str:
    return getattr(request.state, "log_id", None) or "-"


def printable(text: str) -> str:
    """text that JSON can encode as UTF-8: a lone surrogate (from a client's JSON or a file name)
    is written as its escape instead of failing the answer."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def error_response(request: Request, status: int, message: str, headers: dict | None = None) -> JSONResponse:
    log_id = log_id_of(request)
    message = printable(message)
    log.info("%s %s %s -> %d: %s", log_id, request.method, request.url.path, status, message[:500])
    return JSONResponse({"logId": log_id, "errorCode": status, "errorMsg": message}, status_code=status,
                        headers=headers)


def _short(value, limit: int = 200):
    """Validation errors echo the input: keep the echo of a 50 MB Base64 string short."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return text[:limit] + f"... ({len(text)} characters)"
    if isinstance(value, (dict, list)) and len(json.dumps(value, default=str)) > limit:
        return "(omitted)"
    return value


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error_response(request, exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{**e, "input": _short(e.get("input"))} if "input" in e else e for e in exc.errors()]
        return error_response(request, 422, json.dumps(jsonable_encoder(errors, custom_encoder={
            Exception: str}), ensure_ascii=False, default=str))

    @app.exception_handler(process.ClientError)
    async def client_error(request: Request, exc: process.ClientError):
        return error_response(request, exc.status, exc.message, exc.headers)

    @app.exception_handler(fetching.FetchError)
    async def fetch_error(request: Request, exc: fetching.FetchError):
        return error_response(request, exc.status, exc.message)


def _file_type(kind: str, value: str, given: int | None, media_type: str | None) -> int:
    if given is not None:
        return given
    if kind == "url":
        found = process.file_type_from_url(value)
        hint = "the URL's extension is not .pdf or an image type"
    elif kind == "data":
        found = process.file_type_from_media_type(media_type)
        hint = "the data: URL's media type is not application/pdf or image/*"
    else:
        found, hint = None, "Base64 content needs fileType"
    if found is None:
        raise process.ClientError(422, f"Unknown file type: {hint}; set fileType (0: PDF, 1: image)")
    return found


async def infer(body: InferRequest, request: Request) -> JSONResponse:
    """OCR of an image or the first pages of a PDF, from a URL or Base64 content."""
    result = await _work(body, request, process.run)
    request.app.state.runtime.metrics.pages.inc(len(result["ocrResults"]))
    return JSONResponse({"logId": log_id_of(request), "errorCode": 0, "errorMsg": "Success", "result": result})


async def infer_pdf(body: InferRequest, request: Request) -> Response:
    """The searchable PDF of an image or of the first pages of a PDF (the request of POST /ocr)."""
    data = await _work(body, request, process.run_pdf)
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": 'attachment; filename="ocr.pdf"'})


async def _work(body: InferRequest, request: Request, work):
    """Admission, the URL download and work(pipeline, settings, payload, file_type, params, cancel)
    in an inference thread, under the request's deadline."""
    rt: Runtime = request.app.state.runtime
    settings = rt.settings
    kind, value, media_type = process.classify(body.file)
    file_type = _file_type(kind, value, body.fileType, media_type)
    if kind == "url":
        fetching.check_url(value)  # a malformed URL is a 422 before anything else
    params = process.call_overrides(body.inferenceParams)
    if not rt.try_admit():
        rt.metrics.rejected.inc()
        raise process.ClientError(503, f"the server is busy ({rt.capacity} requests in flight); retry later",
                                  headers={"Retry-After": str(settings.retry_after)})
    handed_off = False
    start = time.monotonic()
    deadline = start + settings.request_timeout
    cancel = threading.Event()
    try:
        if kind == "url":
            job = rt.fetch_pool.submit(fetching.fetch, value, rt.limits, deadline)
            try:
                payload = await asyncio.wait_for(asyncio.wrap_future(job), timeout=settings.request_timeout + 1)
            except asyncio.TimeoutError:
                raise process.ClientError(504, f"fetching {value} took longer than {settings.request_timeout} s "
                                          "(request_timeout)") from None
        else:
            payload = value
        job = rt.pool.submit(work, rt.pipeline, settings, payload, file_type, params, cancel)
        job.add_done_callback(rt.release)  # the slot is free when the thread is, not before
        handed_off = True
        left = max(0.0, deadline - time.monotonic())
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(job), timeout=left)
        except asyncio.TimeoutError:
            cancel.set()
            raise process.ClientError(504, f"the request took longer than {settings.request_timeout} s "
                                      "(request_timeout)") from None
        except Cancelled:
            raise process.ClientError(504, f"the request took longer than {settings.request_timeout} s "
                                      "(request_timeout)") from None
    finally:
        if not handed_off:
            rt.release()
    return result


def create_app(pipeline, settings: ServeSettings | None = None) -> FastAPI:
    """The service around a pipeline (an OCRPipeline, or any object with its predict())."""
    settings = settings or ServeSettings()
    runtime = Runtime(pipeline, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runtime.shutdown()

    app = FastAPI(
        title="ocrflow OCR service",
        version=__version__,
        description="The PaddleX 3.0-beta2 basic-serving API of the General OCR pipeline. Every answer is an "
        "envelope {logId, errorCode, errorMsg[, result]}; errorCode is 0 on success, else the HTTP status.",
        docs_url="/docs" if settings.docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_handlers(app)

    app.add_api_route(
        "/ocr", infer, methods=["POST"], operation_id="infer", summary="OCR of an image or PDF",
        response_model=None,
        responses={200: {"model": InferResponse, "description": "Success"},
                   **error_responses(400, 403, 408, 413, 422, 500, 502, 503, 504)},
    )

    app.add_api_route(
        "/ocr/pdf", infer_pdf, methods=["POST"], operation_id="inferPdf", summary="Searchable PDF of an image or PDF",
        response_model=None, description="The request of POST /ocr; the answer is the searchable PDF "
        "(application/pdf): the pages read, each with the recognised text as an invisible layer. Errors are "
        "the JSON envelope of POST /ocr.",
        responses={200: {"content": {"application/pdf": {}}, "description": "The searchable PDF"},
                   **error_responses(400, 403, 408, 413, 422, 500, 502, 503, 504)},
    )

    @app.get("/health", operation_id="health", summary="Liveness", response_model=None,
             responses={200: {"model": HealthResponse, "description": "Healthy"}, **error_responses(500)})
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"logId": log_id_of(request), "errorCode": 0, "errorMsg": "Healthy"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        data, content_type = runtime.metrics.exposition()
        return Response(data, media_type=content_type)

    if settings.demo:
        @app.get("/", include_in_schema=False)
        async def demo() -> FileResponse:
            return FileResponse(STATIC / "index.html", headers=DEMO_HEADERS)

        app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(ServingMiddleware, max_body_bytes=settings.max_body_bytes, metrics=runtime.metrics,
                       body_timeout=settings.body_timeout)
    return app


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes (`--factory ocrflow.serving.app:app_from_env`):
    OCRFLOW_SERVE_CONFIG holds {"pipeline", "device", "pipeline_settings", "settings"} as JSON."""
    from ..pipeline import create_pipeline
    from .settings import from_mapping

    spec = json.loads(os.environ.get(ENV_CONFIG) or "{}")
    settings = from_mapping(spec.get("settings") or {}, where="OCRFLOW_SERVE_CONFIG")
    pipeline = create_pipeline(spec.get("pipeline") or "OCR", device=spec.get("device"),
                               **(spec.get("pipeline_settings") or {}))
    logging.getLogger("ocrflow").setLevel(settings.log_level.upper())
    return create_app(pipeline, settings)
