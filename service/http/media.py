"""Audio responses made for browsers: ranges, validators, caching, CORS, streaming from storage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import anyio
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from service.errors import PreconditionFailed, RangeNotSatisfiable
from service.http.conditionals import Outcome, Validators, evaluate, if_range_allows
from service.http.cors import CORS_HEADERS
from service.http.ranges import ByteRange, Unsatisfiable, parse_range
from service.http.splice import EXTENSION as SPLICE
from service.http.splice import (
    ClientGone,
    ClientSocket,
    ClientStalled,
    Pump,
    SourceEnded,
    SourceStalled,
)
from storage.client import ObjectStream, Storage
from storage.direct import DirectStream
from storage.errors import StorageUnavailable

# A SID's audio never changes, so caches may keep it; a day bounds how long a deleted
# recording can outlive its DELETE in a shared cache.
PUBLIC_CACHE = "public, max-age=86400, immutable"
PRIVATE_CACHE = "private, max-age=86400, immutable"


@dataclass(frozen=True)
class MediaObject:
    """One stored audio object as the API serves it."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str
    filename: str
    # Where the bytes are read from while the object is still being stored (a just-made MP3).
    local_path: Path | None = None


class StreamWatch(Protocol):
    """Told what a stream's client does (service.limits tells busy clients from hostile ones)."""

    def sent(self) -> None: ...

    def stalled(self) -> None: ...


@dataclass(frozen=True)
class StreamPolicy:
    """How a media stream treats its client."""

    chunk_size: int
    # A client that takes no bytes for send_timeout seconds is dropped; after release_after
    # seconds its storage connection is given back, and the read resumes once it catches up.
    send_timeout: float = 60.0
    release_after: float = 2.0
    # Called once the stream is over, however it ends (a per-client slot, say).
    on_close: Callable[[], None] | None = None
    watch: StreamWatch | None = None


class ClientTooSlow(Exception):
    """The client took no bytes for the whole send timeout."""


@dataclass(frozen=True)
class _SpliceSource:
    """An open storage answer to splice the rest of from: the body bytes already received,
    the socket, and how long storage may send nothing."""

    client: ClientSocket
    received: bytes
    fd: int
    timeout: float


class SpanStreamResponse(StreamingResponse):
    """Streams bytes ``first..last`` of some audio under a StreamPolicy, whose ``on_close`` is
    called once however the stream ends; subclasses say where the bytes come from."""

    def __init__(
        self,
        span: tuple[int, int],
        policy: StreamPolicy,
        *,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self._first, self._last = span
        self._policy = policy
        super().__init__(_nothing(), status_code=status_code, headers=headers)

    async def _closed(self) -> None:
        """What a subclass gives back when the stream ends (shielded from cancellation)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Starlette cancels the stream when the client leaves; shielded, the close still runs.
            with anyio.CancelScope(shield=True):
                await self._closed()
                if self._policy.on_close is not None:
                    self._policy.on_close()


class ObjectStreamResponse(SpanStreamResponse):
    """Streams bytes ``first..last`` of a stored object, never holding storage for a client
    that is not reading: the storage GET is closed while the client stalls and reopened at the
    same offset when it reads again."""

    def __init__(
        self,
        storage: Storage,
        key: str,
        stream: ObjectStream | DirectStream,
        span: tuple[int, int],
        policy: StreamPolicy,
        *,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self._storage = storage
        self._key = key
        self._stream: ObjectStream | DirectStream | None = stream
        # The client's socket, when the server lends it for splicing the body (set per call).
        self._client: ClientSocket | None = None
        super().__init__(span, policy, status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._client = (scope.get("extensions") or {}).get(SPLICE)
        await super().__call__(scope, receive, send)

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        offset = self._first
        pump: Pump | None = None
        try:
            while offset <= self._last:
                if self._stream is None:
                    self._stream = await self._storage.open_stream(
                        self._key, offset, self._last, chunk_size=self._policy.chunk_size
                    )
                    if self._stream.content_length != self._last - offset + 1:
                        raise StorageUnavailable(f"{self._key}: stored size changed")
                source = self._splice_source(self._last - offset + 1)
                if source is None:
                    if pump is not None:
                        await self._flush(pump, self._policy.send_timeout)  # its bytes go first
                    offset = await self._send_chunks(send, offset)
                    continue
                if pump is None:
                    watch = self._policy.watch
                    on_sent = watch.sent if watch is not None else None
                    pump = Pump(source.client, self._policy.chunk_size, on_sent=on_sent)
                offset = await self._splice(send, source, pump, offset)
            if pump is not None:
                await self._flush(pump, self._policy.send_timeout)
        except ClientGone:
            if self._client is not None:
                await self._client.gone()
            return
        finally:
            if pump is not None:
                pump.close()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _splice_source(self, count: int) -> _SpliceSource | None:
        """The open storage stream as a socket to splice ``count`` bytes from, when both it and
        the client's connection allow (plain HTTP on both sides, Linux)."""
        client = self._client
        if client is None or not isinstance(self._stream, DirectStream):
            return None
        if not client.usable(count):
            return None
        taken = self._stream.take_socket()
        if taken is None:
            return None
        received, fd = taken
        return _SpliceSource(client, received, fd, self._stream.timeout)

    async def _splice(self, send: Send, source: _SpliceSource, pump: Pump, offset: int) -> int:
        """Send on the open storage stream's body from ``offset`` through ``pump``; the offset
        reached. When the client stalls, storage is given back (the caller reopens it)."""
        policy = self._policy
        if source.received:
            # What came in with storage's head is in user space: it goes into the pipe ahead of
            # the rest, or (a pipe kept small) is sent as a chunk.
            offset += len(source.received)
            if not pump.put(source.received) and await self._send_chunk(send, source.received):
                return offset
        try:
            await source.client.flushed(policy.release_after)
            offset += await pump.take(
                source.fd,
                self._last - offset + 1,
                client_idle=policy.release_after,
                source_idle=source.timeout,
            )
        except ClientStalled as stall:
            offset += stall.taken
            if policy.watch is not None:
                policy.watch.stalled()
            await self._release_storage()
            await self._flush(pump, max(policy.send_timeout - policy.release_after, 0.0))
        except (SourceStalled, SourceEnded) as exc:
            raise StorageUnavailable(f"{self._key}: {exc}") from exc
        return offset

    async def _flush(self, pump: Pump, idle: float) -> None:
        """Send what ``pump``'s pipe holds; ClientTooSlow if the client takes nothing for
        ``idle`` seconds."""
        try:
            if pump.in_pipe and self._client is not None:
                # What uvicorn still holds (the head) goes out before the pipe's bytes.
                await self._client.flushed(idle)
            await pump.flush(client_idle=idle)
        except ClientStalled:
            raise ClientTooSlow(f"no bytes taken for {self._policy.send_timeout:.0f} s") from None

    async def _send_chunks(self, send: Send, offset: int) -> int:
        """Send the open storage stream's body from ``offset`` in chunks through the ASGI
        server; the offset reached (short of the end when storage was given back while the
        client stalled: the caller reopens it)."""
        assert self._stream is not None
        chunks = self._stream.iter_chunks(self._policy.chunk_size)
        try:
            async for chunk in chunks:
                offset += len(chunk)
                if await self._send_chunk(send, chunk):
                    break  # storage given back while the client stalled: reopen
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]
        return offset

    async def _send_chunk(self, send: Send, chunk: bytes) -> bool:
        """Send one chunk; True when the storage stream was closed while the client stalled.

        A send that times out is cancelled while it waits for the client to drain, before it
        writes anything (uvicorn waits, then writes), so the same chunk is simply sent again.
        """
        message = {"type": "http.response.body", "body": chunk, "more_body": True}
        watch = self._policy.watch
        try:
            async with asyncio.timeout(self._policy.release_after):
                await send(message)
            if watch is not None:
                watch.sent()
            return False
        except TimeoutError:
            pass
        if watch is not None:
            watch.stalled()
        await self._release_storage()
        remaining = max(self._policy.send_timeout - self._policy.release_after, 0.0)
        await _send_or_drop(send, message, remaining, self._policy)
        if watch is not None:
            watch.sent()
        return True

    async def _release_storage(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.aclose()

    async def _closed(self) -> None:
        await self._release_storage()


class FileStreamResponse(SpanStreamResponse):
    """Streams bytes ``first..last`` of a just-written local file (an MP3 still being stored),
    dropping a client that takes no bytes for the policy's send timeout."""

    def __init__(
        self,
        path: Path,
        span: tuple[int, int],
        policy: StreamPolicy,
        *,
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self._path = path
        super().__init__(span, policy, status_code=status_code, headers=headers)

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        # Read on the event loop: the file was just written, so its pages are in memory, and a
        # read from the page cache is cheaper than a worker thread's round trip.
        with self._path.open("rb") as source:
            source.seek(self._first)
            left = self._last - self._first + 1
            while left > 0:
                chunk = source.read(min(self._policy.chunk_size, left))
                if not chunk:
                    raise OSError(f"{self._path}: ended {left} bytes early")
                left -= len(chunk)
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                await _send_or_drop(send, message, self._policy.send_timeout, self._policy)
                if self._policy.watch is not None:
                    self._policy.watch.sent()
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_or_drop(send: Send, message: Message, seconds: float, policy: StreamPolicy) -> None:
    """Send ``message``, or give the client up (ClientTooSlow) if it takes nothing in time."""
    try:
        async with asyncio.timeout(seconds):
            await send(message)
    except TimeoutError:
        raise ClientTooSlow(f"no bytes taken for {policy.send_timeout:.0f} s") from None


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""


def media_headers(
    media: MediaObject, *, private: bool, cors: Mapping[str, str] = CORS_HEADERS
) -> dict[str, str]:
    """The headers every answer about this object carries (200, 206, 304, HEAD)."""
    validators = Validators(media.etag, media.last_modified)
    return {
        "Accept-Ranges": "bytes",
        "ETag": media.etag,
        "Last-Modified": validators.last_modified_header,
        "Cache-Control": PRIVATE_CACHE if private else PUBLIC_CACHE,
        "Content-Disposition": f'inline; filename="{media.filename}"',
        **cors,
    }


async def redirect_response(
    storage: Storage,
    media: MediaObject,
    *,
    expires: int,
    cors: Mapping[str, str] = CORS_HEADERS,
) -> Response:
    """A 307 to a presigned storage URL: storage then answers ranges and conditionals itself."""
    url = await storage.presign_get(
        media.key,
        expires,
        content_type=media.content_type,
        content_disposition=f'inline; filename="{media.filename}"',
    )
    # The URL expires, so neither the redirect nor its target may be cached for longer.
    return Response(
        status_code=307,
        headers={"Location": url, "Cache-Control": "private, no-store", **cors},
    )


@dataclass(frozen=True)
class _Body:
    """A GET that sends bytes ``span`` of the object, with these status and headers."""

    status: int
    headers: dict[str, str]
    span: tuple[int, int]


def _decide(
    media: MediaObject,
    *,
    method: str,
    headers: Mapping[str, str],
    private: bool,
    cors: Mapping[str, str],
) -> Response | _Body:
    """The answer the API gives itself (304, HEAD, an empty object) or the body to send."""
    validators = Validators(media.etag, media.last_modified)
    base = media_headers(media, private=private, cors=cors)
    request_headers = {k: headers[k] for k in _CONDITIONAL if k in headers}
    outcome = evaluate(request_headers, validators)
    if outcome is Outcome.NOT_MODIFIED:
        return Response(status_code=304, headers=base)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed()

    wanted: ByteRange | Unsatisfiable | None = None
    if if_range_allows(headers.get("if-range"), validators):
        wanted = parse_range(headers.get("range"), media.size)
    if isinstance(wanted, Unsatisfiable):
        raise RangeNotSatisfiable(media.size)

    out = {**base, "Content-Type": media.content_type}
    status = 200
    if wanted is not None:
        status = 206
        out["Content-Range"] = wanted.content_range
        out["Content-Length"] = str(wanted.length)
    else:
        out["Content-Length"] = str(media.size)
    if method == "HEAD" or media.size == 0:
        return Response(status_code=status, headers=out)
    span = (0, media.size - 1) if wanted is None else (wanted.first, wanted.last)
    return _Body(status, out, span)


async def media_response(
    storage: Storage,
    media: MediaObject,
    *,
    method: str,
    headers: Mapping[str, str],
    private: bool,
    policy: StreamPolicy,
    cors: Mapping[str, str] = CORS_HEADERS,
) -> Response:
    """The 200/206/304 answer to a GET or HEAD of ``media``."""
    decided = _decide(media, method=method, headers=headers, private=private, cors=cors)
    if isinstance(decided, Response):
        return decided
    if media.local_path is not None:
        return FileStreamResponse(
            media.local_path,
            decided.span,
            policy,
            status_code=decided.status,
            headers=decided.headers,
        )
    first, last = decided.span
    chunk_size = policy.chunk_size
    if decided.status == 200:
        stream = await storage.open_stream(media.key, chunk_size=chunk_size)
    else:
        stream = await storage.open_stream(media.key, first, last, chunk_size=chunk_size)
    expected = last - first + 1
    if stream.content_length != expected:
        await stream.aclose()
        raise StorageUnavailable(
            f"{media.key}: stored {stream.content_length}, expected {expected}"
        )
    return ObjectStreamResponse(
        storage,
        media.key,
        stream,
        decided.span,
        policy,
        status_code=decided.status,
        headers=decided.headers,
    )


# The internal nginx location that streams the object (deploy/nginx.conf), and the headers of
# the API's answer it reads: where to fetch and which bytes.
ACCEL_LOCATION = "/_media/"
ACCEL_URL_HEADER = "X-Media-Url"
ACCEL_RANGE_HEADER = "X-Media-Range"


async def accel_response(
    storage: Storage,
    media: MediaObject,
    *,
    method: str,
    headers: Mapping[str, str],
    private: bool,
    expires: int,
    cors: Mapping[str, str] = CORS_HEADERS,
) -> Response:
    """The answer of proxy mode, except that a body is sent by nginx: an ``X-Accel-Redirect``
    to its internal location, which fetches the object from storage with a presigned URL.

    Conditionals, ranges and errors are decided here, exactly as proxy mode decides them; the
    range nginx asks storage for is the one decided here (a failed If-Range, a malformed or
    multi-range header mean the whole object), never the client's header as it came.
    """
    decided = _decide(media, method=method, headers=headers, private=private, cors=cors)
    if isinstance(decided, Response):
        return decided
    url = await storage.presign_internal_get(media.key, expires)
    first, last = decided.span
    # No body here: nginx takes the length (and Content-Range) from storage's answer.
    out = {k: v for k, v in decided.headers.items() if k != "Content-Length"}
    out = {
        **out,
        "X-Accel-Redirect": ACCEL_LOCATION + media.filename,
        ACCEL_URL_HEADER: url,
    }
    if decided.status == 206:
        out[ACCEL_RANGE_HEADER] = f"bytes={first}-{last}"
    return Response(status_code=decided.status, headers=out)


_CONDITIONAL = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
