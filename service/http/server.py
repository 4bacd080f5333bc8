"""uvicorn's httptools protocol with the limits httptools lacks: head size and time, trailers,
idle bodies. They hold whatever a client does, before any application code runs. It also lends
each response its client socket for splicing a body (service.http.splice)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import HeadersTooLarge, ServiceError
from service.http.representations import XML_TYPE, rest_exception_xml
from service.http.splice import EXTENSION as SPLICE
from service.http.splice import ClientSocket
from service.settings import Settings

# Chunk framing a well-behaved client sends: a hex size, an extension at most, two CRLFs.
_CHUNK_OVERHEAD = 32


class _RequestTimeout(ServiceError):
    status = 408
    code = 20408
    message = "The request's head took too long to arrive"


class _LimitedProtocol(HttpToolsProtocol):
    """Answers 431 and closes once a request's head (or its trailers) passes ``max_head_bytes``;
    408 once a head takes longer than ``head_timeout``; closes a connection whose request body
    stalls for ``body_idle_timeout`` while the service is ready to read it.

    httptools buffers a header of any size until it ends, keeps parsing trailers into the
    request's header list, and waits for a body forever, so without these one connection can
    hold as much memory, or as long, as its client cares to.
    """

    max_head_bytes = 64 * 1024
    head_timeout = 10.0
    body_idle_timeout = 30.0
    # Whether responses may send their bodies with splice(2) (service.http.splice).
    splice = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._body_phase_bytes = 0
        self._body_bytes = 0
        self._chunks = 0
        self._timer: asyncio.TimerHandle | None = None
        self._can_splice = False

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_header(self, name: bytes, value: bytes) -> None:
        # After the head, headers are chunked trailers: nothing reads them, so none is kept.
        if self._in_head:
            super().on_header(name, value)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._can_splice = self.splice and ClientSocket.possible(transport)
        # A connection that never sends a head is held no longer than a slow head.
        self._arm(self.head_timeout, self._head_too_slow)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._body_phase_bytes = self._body_bytes = self._chunks = 0
        super().on_headers_complete()
        cycle = self.cycle
        if self._can_splice and cycle is not None and cycle.scope is self.scope:
            client = ClientSocket.offer(self.transport, cycle)
            if client is not None:
                extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
                extensions[SPLICE] = client
        # Until the body has come (a bodiless request completes at once and disarms this).
        self._arm(self.body_idle_timeout, self._body_stalled)

    def on_chunk_header(self) -> None:
        self._chunks += 1

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_bytes == 0:
                self._arm(self.head_timeout, self._head_too_slow)
            # Counted before parsing: httptools would buffer the whole head first.
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head_bytes:
                self._refuse(HeadersTooLarge())
                return
            super().data_received(data)
            return
        self._body_phase_bytes += len(data)
        super().data_received(data)
        if self.transport.is_closing():
            return
        # What is neither body nor chunk framing is trailers: bounded like a head.
        framing = self._body_phase_bytes - self._body_bytes - _CHUNK_OVERHEAD * self._chunks
        if framing > self.max_head_bytes:
            self._refuse(HeadersTooLarge("The request's trailers are too large"))
            return
        if not self._in_head:
            self._arm(self.body_idle_timeout, self._body_stalled)

    def _head_too_slow(self) -> None:
        self._timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self._head_bytes:
            self._refuse(_RequestTimeout())
        elif self.cycle is None:
            self.transport.close()  # connected, never asked anything

    def _body_stalled(self) -> None:
        self._timer = None
        if self.transport.is_closing() or self._in_head:
            return
        if self.flow.read_paused:
            # The service is not reading yet: the client is not the one stalling. Look again.
            self._arm(self.body_idle_timeout, self._body_stalled)
            return
        # The application sees a disconnect, as if the client had gone: no half upload is kept.
        self.transport.close()

    def _refuse(self, error: ServiceError) -> None:
        self._disarm()
        body = rest_exception_xml(error.status, error.message)
        reason = {408: "Request Timeout", 431: "Request Header Fields Too Large"}[error.status]
        head = (
            f"HTTP/1.1 {error.status} {reason}\r\n"
            f"content-type: {XML_TYPE}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        if self.cycle is None or not self.cycle.response_started:
            self.transport.write(head.encode() + body)
        self.transport.close()


def http_protocol(
    max_head_bytes: int,
    *,
    head_timeout: float = 10.0,
    body_idle_timeout: float = 30.0,
    splice: bool = False,
) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn as ``http=``."""
    limits = {
        "max_head_bytes": max_head_bytes,
        "head_timeout": head_timeout,
        "body_idle_timeout": body_idle_timeout,
        "splice": splice,
    }
    return type("LimitedProtocol", (_LimitedProtocol,), limits)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for this service, the same for `recordings serve`, dev and tests."""
    return {
        "http": http_protocol(
            settings.max_header_bytes,
            head_timeout=settings.head_timeout_seconds,
            body_idle_timeout=settings.body_idle_timeout_seconds,
            splice=settings.stream_splice,
        ),
        "timeout_keep_alive": settings.keep_alive_seconds,
        # What the service runs on is nobody else's business.
        "server_header": False,
    }


def __getattr__(name: str) -> Any:
    # `recordings serve --workers N` names its protocol class, SettingsProtocol, by import path:
    # uvicorn spawns the worker processes, a class made at run time cannot be pickled to them,
    # and each worker builds it from the settings it reads, as its app does.
    if name == "SettingsProtocol":
        from service.settings import Settings

        return server_options(Settings())["http"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
