"""service.http.splice on real loopback TCP connections: the bytes a pump moves arrive whole and
in order whatever the pipe's size, each way a stream can fail is told apart (source closed,
source silent, client not reading, client gone), and the client socket is lent only where
splicing can work. uvicorn's side is a stand-in here; tests/integration/test_proxy_streaming.py
runs the same code under uvicorn."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from service.http.splice import (
    ClientGone,
    ClientSocket,
    ClientStalled,
    Pump,
    SourceEnded,
    SourceStalled,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "splice"), reason="splice(2) is Linux's")

PAYLOAD = os.urandom(300_000)


@contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two ends of one loopback TCP connection, non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        near = socket.create_connection(server.getsockname())
        far, _ = server.accept()
    for end in (near, far):
        end.setblocking(False)
    try:
        yield near, far
    finally:
        near.close()
        far.close()


class _Transport:
    """What ClientSocket asks of uvicorn's transport."""

    def __init__(self, sock: socket.socket | None, *, tls: bool = False) -> None:
        self.sock = sock
        self.tls = tls
        self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return {"socket": self.sock, "sslcontext": object() if self.tls else None}.get(name)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True


def _cycle(length: int, method: str = "GET") -> SimpleNamespace:
    """uvicorn's RequestResponseCycle as ClientSocket reads it: the head sent, ``length``
    body bytes due."""
    return SimpleNamespace(
        scope={"method": method},
        response_started=True,
        response_complete=False,
        chunked_encoding=None,
        disconnected=False,
        expected_content_length=length,
    )


async def _read(sock: socket.socket, count: int) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while len(got) < count:
        more = await loop.sock_recv(sock, 65536)
        assert more, f"closed after {len(got)} bytes"
        got += more
    return bytes(got)


@pytest.mark.parametrize("pipe_bytes", [4096, 65536, 1 << 20])
def test_the_bytes_arrive_whole_and_in_order_and_are_counted(pipe_bytes: int) -> None:
    async def go() -> tuple[bytes, SimpleNamespace, ClientSocket]:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            cycle = _cycle(len(PAYLOAD))
            lender = ClientSocket.offer(_Transport(to_client), cycle)
            assert lender is not None
            pump = Pump(lender, pipe_bytes)
            try:
                sending = asyncio.create_task(
                    asyncio.get_running_loop().sock_sendall(storage, PAYLOAD)
                )
                reading = asyncio.create_task(_read(client, len(PAYLOAD)))
                taken = await pump.take(source.fileno(), len(PAYLOAD), client_idle=5, source_idle=5)
                assert taken == len(PAYLOAD)
                await pump.flush(client_idle=5)
                await sending
                return await reading, cycle, lender
            finally:
                pump.close()

    received, cycle, lender = asyncio.run(go())
    assert received == PAYLOAD
    # uvicorn is told of every byte: its response is then complete.
    assert cycle.expected_content_length == 0
    assert lender.spliced == len(PAYLOAD)


def test_bytes_put_into_the_pipe_go_out_ahead_of_those_taken_after() -> None:
    head, rest = PAYLOAD[:70_000], PAYLOAD[70_000:]

    async def go() -> bytes:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            lender = ClientSocket.offer(_Transport(to_client), _cycle(len(PAYLOAD)))
            assert lender is not None
            pump = Pump(lender, 1 << 20)
            try:
                assert pump.put(head) and pump.in_pipe == len(head)
                assert not pump.put(b"x")  # only into an empty pipe
                reading = asyncio.create_task(_read(client, len(PAYLOAD)))
                await asyncio.get_running_loop().sock_sendall(storage, rest)
                await pump.take(source.fileno(), len(rest), client_idle=5, source_idle=5)
                await pump.flush(client_idle=5)
                return await reading
            finally:
                pump.close()

    assert asyncio.run(go()) == PAYLOAD


def test_a_source_slower_than_a_batch_is_read_as_it_comes() -> None:
    pieces = [PAYLOAD[n : n + 10_000] for n in range(0, 100_000, 10_000)]

    async def go() -> bytes:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            lender = ClientSocket.offer(_Transport(to_client), _cycle(100_000))
            assert lender is not None
            pump = Pump(lender, 1 << 20)  # a batch of 512 KiB, more than all of it
            loop = asyncio.get_running_loop()

            done = 0

            async def trickle() -> None:
                nonlocal done
                for piece in pieces:
                    await loop.sock_sendall(storage, piece)
                    done += 1
                    await asyncio.sleep(0.03)

            try:
                sending = asyncio.create_task(trickle())
                reading = asyncio.create_task(_read(client, 20_000))
                # Each piece comes well within source_idle: none of them is a stall.
                taking = asyncio.create_task(
                    pump.take(source.fileno(), 100_000, client_idle=5, source_idle=0.5)
                )
                first = await reading
                assert done < len(pieces)  # the second piece went on before the last came
                await taking
                await pump.flush(client_idle=5)
                await sending
                return first + await _read(client, 100_000 - len(first))
            finally:
                pump.close()

    assert asyncio.run(go()) == PAYLOAD[:100_000]


def test_a_source_that_closes_early_is_told_from_one_that_falls_silent() -> None:
    async def go(close: bool) -> Exception:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            lender = ClientSocket.offer(_Transport(to_client), _cycle(len(PAYLOAD)))
            assert lender is not None
            pump = Pump(lender, 65536)
            try:
                storage.send(PAYLOAD[:1000])
                if close:
                    storage.shutdown(socket.SHUT_WR)
                with pytest.raises((SourceEnded, SourceStalled)) as raised:
                    await pump.take(source.fileno(), len(PAYLOAD), client_idle=5, source_idle=0.2)
                # What did come was sent on.
                assert await _read(client, 1000) == PAYLOAD[:1000]
                return raised.value
            finally:
                pump.close()

    assert isinstance(asyncio.run(go(close=True)), SourceEnded)
    assert isinstance(asyncio.run(go(close=False)), SourceStalled)


def test_a_client_that_reads_nothing_stalls_the_pump_and_is_flushed_once_it_reads() -> None:
    payload = os.urandom(3_000_000)  # more than the socket buffers and the pipe hold

    async def go() -> None:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            # A small send buffer toward the client, which does not grow by itself.
            to_client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            lender = ClientSocket.offer(_Transport(to_client), _cycle(len(payload)))
            assert lender is not None
            pump = Pump(lender, 65536)
            try:
                sending = asyncio.create_task(
                    asyncio.get_running_loop().sock_sendall(storage, payload)
                )
                with pytest.raises(ClientStalled) as stalled:
                    await pump.take(source.fileno(), len(payload), client_idle=0.3, source_idle=5)
                taken = stalled.value.taken
                # Some bytes are taken from storage and wait in the pipe for the client.
                assert 0 < taken < len(payload) and pump.in_pipe > 0
                to_client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                reading = asyncio.create_task(_read(client, len(payload)))
                await pump.flush(client_idle=5)
                assert pump.in_pipe == 0
                # The rest, as a reopened storage stream would give it.
                await pump.take(source.fileno(), len(payload) - taken, client_idle=5, source_idle=5)
                await pump.flush(client_idle=5)
                assert await reading == payload
                await sending
            finally:
                pump.close()

    asyncio.run(go())


def test_a_client_that_resets_is_gone() -> None:
    async def go() -> None:
        with tcp_pair() as (storage, source), tcp_pair() as (to_client, client):
            lender = ClientSocket.offer(_Transport(to_client), _cycle(len(PAYLOAD)))
            assert lender is not None
            pump = Pump(lender, 65536)
            try:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # a reset, as a client that is killed
                await asyncio.sleep(0.05)
                sending = asyncio.create_task(
                    asyncio.get_running_loop().sock_sendall(storage, PAYLOAD)
                )
                with pytest.raises(ClientGone):
                    await pump.take(source.fileno(), len(PAYLOAD), client_idle=5, source_idle=5)
                sending.cancel()
            finally:
                pump.close()

    asyncio.run(go())


def test_the_client_socket_is_lent_only_where_splicing_works() -> None:
    with tcp_pair() as (to_client, _):
        assert ClientSocket.possible(_Transport(to_client))
        assert ClientSocket.offer(_Transport(to_client), _cycle(10)) is not None
        # TLS bytes are made in user space; no body goes out for a HEAD.
        assert not ClientSocket.possible(_Transport(to_client, tls=True))
        assert ClientSocket.offer(_Transport(to_client), _cycle(10, "HEAD")) is None
    near, far = socket.socketpair()  # a Unix socket, as behind a local proxy
    with near, far:
        assert not ClientSocket.possible(_Transport(near))
    with tcp_pair() as (to_client, _):
        cycle = _cycle(10)
        lender = ClientSocket.offer(_Transport(to_client), cycle)
        assert lender is not None
        assert lender.usable(10) and not lender.usable(11)  # never past the Content-Length
        cycle.chunked_encoding = True
        assert not lender.usable(1)
