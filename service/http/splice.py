"""Media bodies moved from storage's socket to the client's by the kernel: splice(2) through a
pipe, so the bytes never enter the process.

Received and written again, every byte of a proxy-mode stream costs two copies through user
space and some Python per chunk: most of the service's 0.7-1.2 s of CPU per GB (bench/proxy.py).
Spliced, a stream costs a few system calls per batch, and the copies are gone. It is off by
default (RECORDINGS_STREAM_SPLICE): a reader on the same host pays for spliced bytes, nginx in
front more than the service saves (docs/performance.md).

uvicorn owns the client's connection, so the protocol (service.http.server) offers each GET a
``ClientSocket`` in the ASGI scope's extensions, under ``EXTENSION``, where splicing can work:
Linux, plain TCP (TLS bytes are made in user space), a body with a Content-Length. It lends the
stream a duplicate of the socket and keeps uvicorn's count of the body's bytes, so the response
still ends, and the connection is reused, as uvicorn expects. Bytes go through uvicorn or
through the pipe, never both at once: the pipe is flushed before uvicorn writes, and uvicorn's
buffer before the pipe is.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable
from typing import Any

EXTENSION = "recordings.splice"

# Linux's numbers: fcntl names them only there, and the module is imported everywhere.
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
# How long bytes under a batch may wait in the source's socket before they are read anyway.
_TRICKLE = 0.05
# What a splice to a client that is gone fails with.
_GONE = {errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.ESHUTDOWN}


def available() -> bool:
    """Whether this platform has splice(2)."""
    return hasattr(os, "splice")


class ClientGone(Exception):
    """The client's connection broke while bytes were moving to it."""


class ClientStalled(Exception):
    """The client took no bytes for the time allowed; ``taken`` bytes came from the source."""

    def __init__(self, taken: int) -> None:
        super().__init__(f"the client took no bytes ({taken} read from storage)")
        self.taken = taken


class SourceStalled(Exception):
    """The source sent nothing for the time allowed."""


class SourceEnded(Exception):
    """The source's connection ended before the bytes asked for."""


class ClientSocket:
    """One response's client connection, lent by the protocol for splicing its body.

    ``cycle`` is uvicorn's RequestResponseCycle of this request: its ``expected_content_length``
    is what uvicorn still waits for before the response is complete."""

    def __init__(self, transport: Any, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self.spliced = 0  # body bytes that went through the pipe (for the metrics)

    @staticmethod
    def possible(transport: Any) -> bool:
        """Whether splicing can work on this connection: Linux, TCP, no TLS (the bytes of a
        TLS connection are made in user space). The same for every request on it."""
        if not available() or transport.get_extra_info("sslcontext") is not None:
            return False
        sock = transport.get_extra_info("socket")
        return sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)

    @classmethod
    def offer(cls, transport: Any, cycle: Any) -> ClientSocket | None:
        """The lender for this request's body, on a connection where splicing is possible; None
        for a HEAD, which sends no body."""
        if cycle.scope.get("method") == "HEAD":
            return None
        return cls(transport, cycle)

    def usable(self, count: int) -> bool:
        """Whether ``count`` more body bytes may go to the client by splicing now: the head is
        out, the body has a Content-Length that holds them, and the client is still there."""
        cycle = self._cycle
        return bool(
            cycle.response_started
            and not cycle.response_complete
            and not cycle.chunked_encoding
            and not cycle.disconnected
            and not self._transport.is_closing()
            and count <= cycle.expected_content_length
        )

    def fileno(self) -> int:
        """A duplicate of the client socket's descriptor (close it; uvicorn keeps its own)."""
        return os.dup(self._transport.get_extra_info("socket").fileno())

    async def flushed(self, idle: float) -> None:
        """Wait until uvicorn has written everything it holds (the head, a chunk) to the
        socket: spliced bytes go straight to it and must come after. ClientStalled after
        ``idle`` seconds."""
        if self._transport.get_write_buffer_size() == 0:
            return
        # uvicorn says when its buffer is low, not when it is empty: look again every loop turn,
        # then every millisecond (a head flushes on the next turn; a chunk as the client reads).
        deadline = time.monotonic() + idle
        turns = 0
        while self._transport.get_write_buffer_size():
            if self._cycle.disconnected or self._transport.is_closing():
                raise ClientGone("the client left")
            if time.monotonic() > deadline:
                raise ClientStalled(0)
            turns += 1
            await asyncio.sleep(0 if turns < 16 else 0.001)

    def count(self, moved: int) -> None:
        """Tell uvicorn that ``moved`` body bytes went out."""
        self._cycle.expected_content_length -= moved
        self.spliced += moved

    async def gone(self) -> None:
        """Close a connection that broke under a splice, and let uvicorn see it closed, so it
        does not wait for the rest of the body."""
        self._transport.abort()
        for _ in range(16):  # connection_lost comes on one of the next loop turns
            if self._cycle.disconnected:
                return
            await asyncio.sleep(0)


class Pump:
    """Moves body bytes from source sockets (storage's answers) to one client through a pipe of
    its own; ``in_pipe`` bytes are taken from a source and not yet sent. Always close it."""

    def __init__(
        self, client: ClientSocket, pipe_bytes: int, *, on_sent: Callable[[], None] | None = None
    ) -> None:
        self._client = client
        self._on_sent = on_sent  # told of every send that moved bytes to the client
        self._loop = asyncio.get_running_loop()
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._client_fd = -1
        try:
            self._client_fd = client.fileno()
            self.capacity = self._size_pipe(pipe_bytes)
            # What the source is asked to have before it is read: half a pipe.
            self.batch = max(self.capacity // 2, 4096)
        except BaseException:
            self.close()
            raise
        self.in_pipe = 0

    def _size_pipe(self, wanted: int) -> int:
        try:
            return fcntl.fcntl(self._write, _F_SETPIPE_SZ, wanted)
        except OSError:
            # Past /proc/sys/fs/pipe-max-size, or the user's pipe pages: the default size
            # still works, with more system calls per byte.
            return fcntl.fcntl(self._write, _F_GETPIPE_SZ)

    def close(self) -> None:
        for fd in (self._read, self._write, self._client_fd):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = self._client_fd = -1

    def put(self, data: bytes) -> bool:
        """Put ``data`` (bytes already in user space) into an empty pipe, to go out before
        what is taken next; False, with nothing written, when the pipe is not empty or too
        small for it."""
        if self.in_pipe or len(data) > self.capacity:
            return False
        view = memoryview(data)
        while view:
            # An empty pipe has room for its capacity: the writes do not block.
            written = os.write(self._write, view)
            view = view[written:]
            self.in_pipe += written
        return True

    async def take(self, source: int, count: int, *, client_idle: float, source_idle: float) -> int:
        """Take ``count`` bytes from the ``source`` socket and send them on as the client takes
        them (the last pipe-full may stay in the pipe: ``flush`` sends it). Returns ``count``.

        Raises ClientStalled (with the bytes taken) when the client takes nothing for
        ``client_idle`` seconds, SourceStalled when the source sends nothing for
        ``source_idle``, SourceEnded when it closes first, ClientGone when the client does."""
        if count == 0:
            return 0
        # A duplicate for the loop to watch (the source's owner keeps its own descriptor).
        watched = socket.socket(fileno=os.dup(source))
        try:
            return await self._move(watched, count, client_idle, source_idle)
        finally:
            watched.close()

    async def flush(self, *, client_idle: float) -> None:
        """Send what the pipe holds; ClientStalled when the client takes nothing for
        ``client_idle`` seconds."""
        await self._move(None, 0, client_idle, 0.0)

    async def _move(
        self, source: socket.socket | None, count: int, client_idle: float, source_idle: float
    ) -> int:
        taken = 0
        fd = source.fileno() if source is not None else -1
        # Read the source only once it says it has a batch (SO_RCVLOWAT), and then all it has:
        # the service wakes once per batch, and the client gets sends of a batch or more, as
        # chunks are, rather than every segment as it arrives.
        readable = True
        low_water = 0
        # Since when each side has had something to do and has done nothing.
        client_waits: float | None = None
        source_waits: float | None = None
        while taken < count or self.in_pipe:
            source_due = taken < count and self.in_pipe < self.capacity
            moved = 0
            if source_due and readable:
                moved = self._from_source(fd, count - taken)
                readable = moved > 0
                taken += moved
            sent = self._to_client() if self.in_pipe else 0
            if moved or sent:
                source_waits = None if moved else source_waits
                client_waits = None if sent else client_waits
                continue
            # Neither side moved: wait for whichever may, no longer than either is allowed.
            now = time.monotonic()
            client_waits = (client_waits or now) if self.in_pipe else None
            source_waits = (source_waits or now) if source_due else None
            limits = []
            if client_waits is not None:
                if now - client_waits >= client_idle:
                    raise ClientStalled(taken)
                limits.append(client_waits + client_idle - now)
            if source_waits is not None:
                if now - source_waits >= source_idle:
                    raise SourceStalled(f"no bytes from storage for {source_idle:.0f} s")
                # A source slower than a batch is read anyway, this often.
                limits.append(min(source_waits + source_idle - now, _TRICKLE))
            if source is not None and source_due:
                wanted = min(self.batch, count - taken)  # the last batch is what is left
                if wanted != low_water:
                    source.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, wanted)
                    low_water = wanted
            readable = await self._ready(fd if source_due else -1, bool(self.in_pipe), min(limits))
        return taken

    def _from_source(self, source: int, most: int) -> int:
        try:
            room = min(most, self.capacity - self.in_pipe)
            moved = os.splice(source, self._write, room, flags=_FLAGS)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise SourceEnded(f"storage's connection broke: {exc}") from exc
        if moved == 0:
            raise SourceEnded("storage closed the connection")
        self.in_pipe += moved
        return moved

    def _to_client(self) -> int:
        try:
            sent = os.splice(self._read, self._client_fd, self.in_pipe, flags=_FLAGS)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in _GONE:
                raise ClientGone(str(exc)) from exc
            raise
        self.in_pipe -= sent
        self._client.count(sent)
        if self._on_sent is not None:
            self._on_sent()
        return sent

    async def _ready(self, source: int, client: bool, timeout: float) -> bool:
        """Wait until ``source`` is readable or the client writable (as asked), or timeout;
        whether the source is to be read (it said so, or the time is up)."""
        waiter = self._loop.create_future()
        readable = False

        def source_ready() -> None:
            nonlocal readable
            readable = True
            if not waiter.done():
                waiter.set_result(None)

        def client_ready() -> None:
            if not waiter.done():
                waiter.set_result(None)

        if source >= 0:
            self._loop.add_reader(source, source_ready)
        if client:
            self._loop.add_writer(self._client_fd, client_ready)
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await waiter
        except TimeoutError:
            readable = True
        finally:
            if source >= 0:
                self._loop.remove_reader(source)
            if client:
                self._loop.remove_writer(self._client_fd)
        return readable
