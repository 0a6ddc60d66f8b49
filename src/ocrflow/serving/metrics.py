"""Prometheus metrics of the service (`GET /metrics`).

One registry per app, so several apps can live in one process (tests). With several worker
processes, `ocrflow serve --workers N` sets PROMETHEUS_MULTIPROC_DIR and every worker's /metrics
reports the sum over all workers.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

PATHS = ("/ocr", "/health", "/metrics", "/", "/docs", "/openapi.json", "/docs/oauth2-redirect")
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def path_label(path: str) -> str:
    """A bounded label set: known paths, /static, or 'other' (never the raw path of a 404)."""
    if path in PATHS:
        return path
    if path.startswith("/static/"):
        return "/static"
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter("ocrflow_http_requests_total", "HTTP requests answered",
                                ["method", "path", "status"], registry=reg)
        self.errors = Counter("ocrflow_http_errors_total", "HTTP answers with an error status (>= 400)",
                              ["path", "status"], registry=reg)
        self.latency = Histogram("ocrflow_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["method", "path"], buckets=BUCKETS, registry=reg)
        self.in_flight = Gauge("ocrflow_http_requests_in_flight", "HTTP requests being answered", ["path"],
                               registry=reg, multiprocess_mode="livesum")
        self.queue = Gauge("ocrflow_ocr_requests_admitted", "OCR requests fetching, running or waiting for a "
                           "thread", registry=reg, multiprocess_mode="livesum")
        self.rejected = Counter("ocrflow_ocr_rejected_total", "OCR requests refused because the queue was full",
                                registry=reg)
        self.pages = Counter("ocrflow_ocr_pages_total", "Images and PDF pages read by OCR", registry=reg)

    def exposition(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
