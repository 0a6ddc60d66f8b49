"""The outer layer every HTTP request goes through (plain ASGI, no buffering): a logId, the body
size limit (Content-Length up front, then counted while the body streams in), the body deadline (a
client that stops sending gets 408), metrics, one log line per request, and the 500 envelope for
anything unexpected."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from starlette.exceptions import HTTPException

from .metrics import Metrics, path_label

log = logging.getLogger("ocrflow.serving")


class BodyTooLarge(HTTPException):
    """Raised from receive() when the streamed body passes the limit; an HTTPException so that the
    framework's body reader passes it on (it turns other errors into a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than the limit of {limit} bytes (max_body_bytes)")


class BodyTimeout(HTTPException):
    """Raised from receive() when the body has not arrived by its deadline (see BodyTooLarge)."""

    def __init__(self, seconds: float):
        super().__init__(408, f"the request body did not arrive within {seconds:g} s (body_timeout)",
                         headers={"Connection": "close"})


def envelope(log_id: str, status: int, message: str) -> bytes:
    return json.dumps({"logId": log_id, "errorCode": status, "errorMsg": message}, ensure_ascii=False).encode()


async def send_error(send, log_id: str, status: int, message: str, close: bool = False) -> None:
    body = envelope(log_id, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServingMiddleware:
    def __init__(self, app, max_body_bytes: int, metrics: Metrics, body_timeout: float = 30.0):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.body_timeout = body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        log_id = str(uuid.uuid4())
        scope.setdefault("state", {})["log_id"] = log_id
        method, path = scope["method"], scope["path"]
        label = path_label(path)
        start = time.perf_counter()
        status = 500
        started = False
        limit = self.max_body_bytes

        async def send_wrapper(message):
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-log-id", log_id.encode())]}
            await send(message)

        received = 0
        body_deadline = time.monotonic() + self.body_timeout
        body_done = False

        async def receive_wrapper():
            nonlocal received, body_done
            if body_done:  # afterwards receive() waits for a disconnect, as long as the response takes
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, body_deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise BodyTimeout(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        self.metrics.in_flight.labels(label).inc()
        try:
            length = dict(scope.get("headers", ())).get(b"content-length")
            if length is not None and not length.strip().isdigit():
                await send_error(send_wrapper, log_id, 400, "Content-Length is not a number", close=True)
            elif length is not None and int(length) > limit:
                await send_error(send_wrapper, log_id, 413, f"request body is {int(length)} bytes, above the "
                                 f"limit of {limit} bytes (max_body_bytes)", close=True)
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except (BodyTooLarge, BodyTimeout) as exc:
            if not started:
                await send_error(send_wrapper, log_id, exc.status_code, exc.detail, close=True)
        except Exception:
            log.exception("%s %s %s: internal error", log_id, method, path)
            if not started:
                await send_error(send_wrapper, log_id, 500, "Internal server error")
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.in_flight.labels(label).dec()
            self.metrics.requests.labels(method, label, str(status)).inc()
            self.metrics.latency.labels(method, label).observe(elapsed)
            if status >= 400:
                self.metrics.errors.labels(label, str(status)).inc()
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "%s %s %s %d %.3fs", log_id, method, path, status, elapsed)
