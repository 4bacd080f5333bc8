"""A fault-injecting TCP proxy for tests: stalls, resets, refusals, cut transfers and latency.

The proxy runs its own asyncio loop in a thread, so synchronous tests drive it directly::

    with FaultProxy.for_url(s3.endpoint_url) as proxy:
        settings = make_settings(..., s3_endpoint_url=proxy.rewrite(s3.endpoint_url))
        proxy.stall()          # every byte in either direction is held back
        proxy.pass_through()   # ...and flows again

Every mode switch runs on the proxy's loop and has taken effect when the call returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

Direction = Literal["to_client", "to_upstream"]
_CHUNK = 64 * 1024
_LINGER_ZERO = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class _Mode:
    kind: Literal["pass", "refuse", "stall", "cut"] = "pass"
    limit: int = 0
    direction: Direction | None = None  # None: both
    delay: float = 0.0
    # A cut that happens once: the first connection cut puts the proxy back to pass-through.
    once: bool = False


def _reset_socket(sock: socket.socket) -> None:
    """Close a socket with an RST (SO_LINGER 0) instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort a stream's transport with an RST."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    writer.transport.abort()


class _Connection:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.closed = False

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            _reset(self.client)
            _reset(self.upstream)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client.close()
            self.upstream.close()


class FaultProxy:
    """Forwards 127.0.0.1:``port`` to ``upstream_host``:``upstream_port``, faults on demand."""

    def __init__(self, upstream_host: str, upstream_port: int, *, record: bool = False) -> None:
        self.upstream = (upstream_host, upstream_port)
        # With ``record``, every byte sent upstream is kept, so a test can read what was asked.
        self._record = record
        self._sent = bytearray()
        self.host = "127.0.0.1"
        self.port = 0
        # Counters: written on the proxy's loop only, read from anywhere.
        self.connections = 0
        self.refused = 0
        self.resets = 0
        self.cuts = 0
        self.bytes_to_client = 0
        self.bytes_to_upstream = 0
        self._mode = _Mode()
        self._generation = 0
        self._conns: set[_Connection] = set()
        self._tasks: set[asyncio.Future[None]] = set()
        self._accepted: set[socket.socket] = set()
        self._loop = asyncio.new_event_loop()
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)

    @classmethod
    def for_url(cls, url: str, *, record: bool = False) -> FaultProxy:
        """A proxy to the host and port of ``url`` (an http:// URL or a postgresql:// DSN)."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"no host and port in {url!r}")
        return cls(parts.hostname, parts.port, record=record)

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's (credentials kept)."""
        parts = urlsplit(url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        netloc = f"{userinfo}@" if userinfo else ""
        return urlunsplit(parts._replace(netloc=f"{netloc}{self.host}:{self.port}"))

    def sent_since(self, mark: int) -> bytes:
        """What was sent upstream after the first ``mark`` bytes (needs ``record``)."""
        return bytes(self._sent[mark:])

    def http_requests_since(self, mark: int) -> list[str]:
        """The HTTP request lines (method and target) sent upstream after ``mark``."""
        found = re.findall(
            rb"(?:^|\r\n)((?:GET|HEAD|PUT|POST|DELETE) \S+) HTTP/1\.[01]\r\n",
            self.sent_since(mark),
        )
        return [line.decode("latin-1") for line in found]

    @property
    def active(self) -> int:
        """Connections open right now."""
        return len(self._conns)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the fault proxy did not start: {self._error!r}")
        return self

    def close(self) -> None:
        """Stop listening and reset every connection; safe to call twice."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- modes (thread-safe; each has taken effect on return) -------------------------------

    def pass_through(self) -> None:
        """Forward everything; connections held by ``stall`` resume."""
        self._switch(_Mode())

    def refuse(self) -> None:
        """Reset every open connection and every new one as soon as it is accepted."""
        self._switch(_Mode("refuse"), reset=True)

    def reset(self, *, then: Literal["pass", "refuse"] = "pass") -> None:
        """RST every open connection now, then forward (or refuse) new ones."""
        self._switch(_Mode(then), reset=True)

    def stall(self) -> None:
        """Accept and hold connections open, forwarding nothing in either direction."""
        self._switch(_Mode("stall"))

    def cut_after(
        self, n_bytes: int, direction: Direction = "to_client", *, once: bool = False
    ) -> None:
        """On each connection, forward ``n_bytes`` more in ``direction``, then RST it; with
        ``once``, only the first connection to get that far is cut, then everything flows."""
        self._switch(_Mode("cut", limit=n_bytes, direction=direction, once=once))

    def latency(self, seconds: float, direction: Direction | None = None) -> None:
        """Forward everything, each chunk (in ``direction``, or both) ``seconds`` late."""
        self._switch(_Mode(delay=seconds, direction=direction))

    def _switch(self, mode: _Mode, *, reset: bool = False) -> None:
        async def apply() -> None:
            if reset:
                self.resets += len(self._conns)
                for conn in list(self._conns):
                    conn.abort()
            self._mode = mode
            self._generation += 1
            self._changed.set()
            self._changed = asyncio.Event()

        if not self._thread.is_alive():
            raise RuntimeError("the fault proxy is not running")
        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(timeout=10)

    # -- the proxy's loop -------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        listener = socket.create_server((self.host, 0))
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        loop.add_reader(listener.fileno(), self._accept, listener)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            loop.remove_reader(listener.fileno())
            listener.close()  # connections still in the backlog are reset by the kernel
            for conn in list(self._conns):
                conn.abort()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.sleep(0.01)  # aborted transports close their sockets in a callback
            for sock in self._accepted:  # those of handlers cancelled before they started
                if sock.fileno() != -1:
                    _reset_socket(sock)

    def _accept(self, listener: socket.socket) -> None:
        # Accepting in a reader callback, synchronously, so no accepted socket is ever lost in
        # a cancelled await (nor in asyncio.Server, which leaks one accepted while it closes).
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:  # BlockingIOError: the backlog is empty
                return
            sock.setblocking(False)
            self._accepted.add(sock)
            task = asyncio.ensure_future(self._handle(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _handle(self, sock: socket.socket) -> None:
        try:
            await self._proxy(sock)
        finally:
            self._accepted.discard(sock)

    async def _proxy(self, sock: socket.socket) -> None:
        self.connections += 1
        if self._mode.kind == "refuse":
            self.refused += 1
            _reset_socket(sock)
            return
        try:
            reader, writer = await asyncio.open_connection(sock=sock)
        except BaseException:
            _reset_socket(sock)
            raise
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), 10
            )
        except BaseException:  # unreachable upstream, or shutting down
            _reset(writer)
            raise
        conn = _Connection(writer, up_writer)
        self._conns.add(conn)
        try:
            await asyncio.gather(
                self._pump(conn, reader, up_writer, "to_upstream"),
                self._pump(conn, up_reader, writer, "to_client"),
            )
        finally:
            self._conns.discard(conn)
            conn.close()

    async def _pump(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: Direction,
    ) -> None:
        generation, sent = -1, 0
        try:
            while not conn.closed and (data := await reader.read(_CHUNK)):
                while (mode := self._mode).kind == "stall" and not conn.closed:
                    await self._changed.wait()
                if mode.delay and mode.direction in (None, direction):
                    await asyncio.sleep(mode.delay)
                if conn.closed:
                    return
                cut = False
                if mode.kind == "cut" and mode.direction == direction:
                    if generation != self._generation:
                        generation, sent = self._generation, 0
                    cut = sent + len(data) >= mode.limit
                    data = data[: mode.limit - sent]
                    sent += len(data)
                if direction == "to_client":
                    self.bytes_to_client += len(data)
                else:
                    self.bytes_to_upstream += len(data)
                    if self._record:
                        self._sent += data
                writer.write(data)
                await writer.drain()
                if cut:
                    self.cuts += 1
                    if mode.once:
                        self._mode = _Mode()
                        self._generation += 1
                    conn.abort()
                    return
            if not conn.closed and writer.can_write_eof():
                writer.write_eof()
        except OSError:
            conn.abort()
