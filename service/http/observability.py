"""Request ids, access logs and metrics for every request, as pure ASGI middleware."""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.splice import EXTENSION as SPLICE
from service.logs import new_request_id, request_id
from service.metrics import Metrics

log = logging.getLogger("recordings.access")
_AUDIO = {b"audio/x-wav": "wav", b"audio/mpeg": "mp3"}
# httptools takes only the methods HTTP defines, and routes are the app's templates, so the
# label sets are few; the bound only keeps a surprise from growing the cache.
_MAX_CACHED_LABELS = 1024


class ObservabilityMiddleware:
    """Tags each request with an id (echoed as ``X-Request-Id``), times it, counts it, logs it."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, access_log: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        # Each request's metric children, looked up once per label set: prometheus_client's
        # labels() validates and locks on every call.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.latency.labels(method, route),
            )
            if len(self._children) < _MAX_CACHED_LABELS:
                self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                offered = value.decode("latin-1")
        rid = new_request_id(offered)
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        audio: str | None = None
        sent = 0

        async def tagged_send(message: Message) -> None:
            nonlocal status, audio, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
                for name, value in headers:
                    if name.lower() == b"content-type":
                        audio = _AUDIO.get(value.split(b";")[0].strip())
            await send(message)
            # Counted once sent: a send given up on (a stalled client) is sent again whole.
            if message["type"] == "http.response.body" and audio is not None:
                sent += len(message.get("body", b""))

        try:
            await self.app(scope, receive, tagged_send)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self._observe(method, route, status, elapsed)
            client = (scope.get("extensions") or {}).get(SPLICE)
            spliced = client.spliced if client is not None else 0
            if audio is not None and sent + spliced:
                self.metrics.bytes_streamed.labels(audio).inc(sent + spliced)
                if spliced:
                    self.metrics.bytes_spliced.labels(audio).inc(spliced)
            if self.access_log:
                # The path as sent, still percent-encoded: a decoded %0A could forge log lines.
                raw = scope.get("raw_path") or scope["path"].encode()
                log.info(
                    "%s %s %d",
                    method,
                    raw.decode("latin-1"),
                    status,
                    extra={
                        "status": status,
                        "route": route,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id.reset(token)
