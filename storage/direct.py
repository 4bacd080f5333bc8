"""An object's bytes read straight off the socket, for streaming them on: a presigned GET on a
connection of its own, received into one buffer a chunk at a time.

aiohttp (under aiobotocore) turns every socket read into a new bytes object, slices the body out
of it in its parser, queues the slices and joins them again into the chunk asked for: three copies
and a few Python calls per 64-256 KiB before the chunk is written on. Here the kernel writes into
the chunk's buffer itself (``BufferedProtocol``), the chunk is handed over as one copy, and nothing
runs per read but a counter. The stream reads ahead by one chunk while the last one is sent.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import AsyncIterator, Callable
from typing import cast
from urllib.parse import urlsplit

from storage.errors import ObjectNotFound, StorageUnavailable

# Longer heads than this are not an S3 server's answer to a GET.
_MAX_HEAD = 64 * 1024


@functools.cache
def _tls() -> ssl.SSLContext:
    # The CA bundle botocore would use when one is set for it; else the system's.
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)


class _Head:
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers


def _parse_head(raw: bytes) -> _Head:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise StorageUnavailable(f"storage answered {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return _Head(int(parts[1]), headers)


class _Receiver(asyncio.BufferedProtocol):
    """Receives one GET's answer: the head, then the body into ``chunk``-sized buffers."""

    def __init__(self, request: bytes, chunk: int) -> None:
        self._request = request
        self._chunk = chunk
        # Room for the head (and what comes with it) until the reader says how it reads the
        # body: a stream spliced on never needs a chunk of its own (see start_chunks).
        self._buffer = bytearray(_MAX_HEAD)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self.head: _Head | None = None
        self.left = 0  # body bytes not yet received
        self.transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._done = False  # the connection is gone (closed, or the body is all here)
        self._error: BaseException | None = None
        self._paused = False
        self._scratch = bytearray(4096)
        self._surplus = False
        self._handed_over = False

    # The loop's side.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are alike, not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.head is None:
            return self._view[self._filled :]
        # Never past the body's end, so the view given is never larger than what is due.
        room = self._view[self._filled : self._filled + min(self._chunk - self._filled, self.left)]
        if room:
            return room
        # Nothing is due (the body is all here) and the loop reads anyway: an empty buffer is a
        # fatal error to asyncio, so the read goes to a scratch one and is refused as surplus.
        self._surplus = True
        return memoryview(self._scratch)

    def buffer_updated(self, nbytes: int) -> None:
        if self._surplus:
            self._surplus = False
            self._fail(StorageUnavailable("storage sent more than its Content-Length"))
            return
        self._filled += nbytes
        if self.head is None:
            self._take_head()
            if self.head is not None:
                self._pause()  # until start_chunks or hand_over
            return
        self.left -= nbytes
        if self._filled >= self._chunk or self.left == 0:
            # A whole chunk (or the end): hand it over; no more reads until it is taken.
            self._pause()
            self._wake()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._done = True
        if self._error is None and (self.head is None or self.left > 0):
            self._error = StorageUnavailable(
                f"storage closed the connection: {exc}" if exc else "storage closed the connection"
            )
        self._wake()

    # The reader's side.

    def _take_head(self) -> None:
        end = self._buffer.find(b"\r\n\r\n", 0, self._filled)
        if end < 0:
            if self._filled >= _MAX_HEAD:
                self._fail(StorageUnavailable("storage's answer has no end of head"))
            return
        try:
            head = _parse_head(bytes(self._buffer[:end]))
        except StorageUnavailable as exc:
            self._fail(exc)
            return
        length = head.headers.get("content-length", "")
        if not length.isdigit() or "transfer-encoding" in head.headers:
            self._fail(StorageUnavailable("storage's answer has no Content-Length"))
            return
        rest = self._filled - (end + 4)
        if rest > int(length):
            self._fail(StorageUnavailable("storage sent more than its Content-Length"))
            return
        self.head = head
        self._buffer[:rest] = self._buffer[end + 4 : self._filled]
        self._filled = rest
        self.left = int(length) - rest
        self._wake()

    def _fail(self, error: BaseException) -> None:
        self._error = error
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _pause(self) -> None:
        if not self._paused and self.transport is not None and not self._done:
            self._paused = True
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self._handed_over:
            return
        if self._paused and self.transport is not None and not self._done:
            self._paused = False
            self.transport.resume_reading()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, ready: Callable[[], bool], timeout: float) -> None:
        while not ready():
            if self._error is not None:
                raise self._error
            if self._done:
                raise StorageUnavailable("storage closed the connection")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._waiter
            except TimeoutError:
                raise StorageUnavailable(f"no bytes from storage for {timeout:.0f} s") from None
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def chunk_ready(self) -> bool:
        return self._filled >= self._chunk or (self.left == 0 and self._filled > 0)

    def start_chunks(self) -> None:
        """Read the body on into chunk-sized buffers (the head's buffer is made one)."""
        if len(self._buffer) < self._chunk:
            grown = bytearray(self._chunk)
            grown[: self._filled] = self._view[: self._filled]
            self._buffer, self._view = grown, memoryview(grown)
        if self._filled < self._chunk and self.left > 0:
            self._resume()

    def hand_over(self) -> tuple[bytes, int]:
        """What has been received of the body, and how many of its bytes have not; reading
        stops for good (another reader takes the rest off the socket)."""
        if self._error is not None:
            raise self._error
        self._handed_over = True
        self._pause()
        data = bytes(self._view[: self._filled])
        self._filled = 0
        return data, self.left

    def take(self) -> bytes:
        """The next chunk received (a copy); reading resumes into the room it leaves."""
        size = min(self._filled, self._chunk)
        data = bytes(self._view[:size])
        if size < self._filled:
            # Only after the head: more of the body came with it than one (small) chunk.
            self._buffer[: self._filled - size] = self._buffer[size : self._filled]
        self._filled -= size
        # Once the body is all here nothing more is read: storage's FIN is left unread until
        # the stream is closed.
        if self._filled < self._chunk and self.left > 0:
            self._resume()
        return data


class DirectStream:
    """An open direct GET of one object (or one byte range of it); always close it.

    The same reading interface as ``storage.client.ObjectStream``."""

    def __init__(
        self,
        receiver: _Receiver,
        content_length: int,
        release: Callable[[], None],
        *,
        timeout: float,
        secure: bool,
    ):
        self._receiver = receiver
        self.content_length = content_length
        self._release = release
        self.timeout = timeout  # seconds storage may send nothing before the read fails
        self._secure = secure

    def take_socket(self) -> tuple[bytes, int] | None:
        """For a reader that takes the rest of the body off the socket itself (splice(2)): the
        body bytes received so far and the connection's file descriptor. The stream reads
        nothing more (``iter_chunks`` is not to be used after this) and still owns the
        connection, which ``aclose`` closes. None over TLS: the socket carries ciphertext.

        When the whole body has been received, the descriptor is -1: nothing is left to read."""
        transport = self._receiver.transport
        if self._secure or transport is None:
            return None
        sock = transport.get_extra_info("socket")
        if sock is None:
            return None
        received, left = self._receiver.hand_over()
        if not left:
            return received, -1
        if transport.is_closing():
            raise StorageUnavailable("storage closed the connection")
        return received, sock.fileno()

    async def iter_chunks(self, chunk_size: int) -> AsyncIterator[bytes]:
        """The body in chunks of the stream's chunk size (the last one shorter); raises
        StorageUnavailable if the transfer is cut short. ``chunk_size`` is fixed at open."""
        receiver = self._receiver
        receiver.start_chunks()
        received = 0
        while received < self.content_length:
            await receiver.wait(receiver.chunk_ready, self.timeout)
            chunk = receiver.take()
            received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        """Drop the connection (it is never reused) and give the slot back."""
        transport = self._receiver.transport
        if transport is not None and not transport.is_closing():
            transport.abort()
        self._release()


async def open_direct(
    url: str,
    *,
    first: int | None,
    last: int | None,
    chunk: int,
    timeout: float,
    key: str,
    release: Callable[[], None],
) -> DirectStream:
    """GET the presigned ``url`` (bytes ``first..last`` when given) on a new connection and
    wait for the head; the body is then read by the stream. ``release`` is called on close."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    if first is not None:
        lines.append(f"Range: bytes={first}-{'' if last is None else last}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    receiver = _Receiver(request, chunk)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(min(5.0, timeout)):
            await loop.create_connection(
                lambda: receiver, host, port, ssl=_tls() if secure else None
            )
        await receiver.wait(lambda: receiver.head is not None, timeout)
    except BaseException as exc:
        if receiver.transport is not None:
            receiver.transport.abort()
        if isinstance(exc, TimeoutError | OSError):
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc
        raise
    head = receiver.head
    assert head is not None
    if head.status not in (200, 206):
        assert receiver.transport is not None
        receiver.transport.abort()
        if head.status == 404:
            raise ObjectNotFound(key)
        raise StorageUnavailable(f"storage answered {head.status}")
    length = int(head.headers["content-length"])
    return DirectStream(receiver, length, release, timeout=timeout, secure=secure)
