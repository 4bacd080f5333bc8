"""Proxy-mode streaming, both ways a body goes: in chunks of 1 MiB (the default), one ASGI send
each, read off storage's socket by storage.direct, and spliced from storage's socket to the
client's (service.http.splice, RECORDINGS_STREAM_SPLICE). Bodies and ranges come out byte for byte at every chunk
boundary and at any chunk size, a connection serves the next request after a spliced body, and
a client that leaves mid-stream, a missing object or a stream closed half read give back the
download slot and the storage connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from storage.errors import ObjectNotFound, StorageUnavailable
from tests.support.clients import Account, new_account, uploaded_sid
from tests.support.stack import ServerThread
from tests.support.wavs import noise_wav

MiB = 1024 * 1024
# Noise, so that a byte dropped, repeated or taken from the wrong offset changes the body.
BODY = noise_wav(8000 * 220)  # 3.52 MB: three whole chunks and part of a fourth


@pytest.fixture(scope="module", params=[True, False], ids=["spliced", "chunks"])
def proxy(settings: Settings, request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    # The default chunk size, as served; one stream per address and two storage connections,
    # so that a slot or a connection not given back shows at once.
    tight = settings.model_copy(
        update={
            "media_delivery": "proxy",
            "stream_splice": request.param,
            "max_streams_per_client": 1,
            "s3_max_connections": 2,
            "s3_pool_timeout": 0.5,
        }
    )
    assert tight.stream_chunk_bytes == MiB
    with ServerThread(tight) as server:
        yield server


@pytest.fixture(scope="module")
def stored(settings: Settings, proxy: ServerThread) -> tuple[Account, str]:
    account = new_account(settings.database_url)
    with httpx.Client(base_url=proxy.base_url, timeout=60) as http:
        return account, uploaded_sid(http, account, BODY)


SIZE = len(BODY)


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (MiB - 10, MiB + 10),  # across the first chunk boundary
        (MiB, 2 * MiB - 1),  # exactly one chunk, aligned
        (MiB - 1, MiB),  # the last byte of one chunk and the first of the next
        (123_457, 3 * MiB + 17),  # from an odd offset across three boundaries
        (3 * MiB, SIZE - 1),  # the short last chunk
        (SIZE - 1, SIZE - 1),
        (0, SIZE - 1),
    ],
)
def test_ranges_across_chunk_boundaries_are_byte_identical(
    proxy: ServerThread, stored: tuple[Account, str], first: int, last: int
) -> None:
    account, sid = stored
    with httpx.Client(base_url=proxy.base_url, timeout=60) as http:
        answer = http.get(f"{account.base}/{sid}.wav", headers={"Range": f"bytes={first}-{last}"})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert answer.headers["content-length"] == str(last - first + 1)
    assert answer.content == BODY[first : last + 1]


def test_whole_body_and_suffix_range_are_byte_identical(
    proxy: ServerThread, stored: tuple[Account, str]
) -> None:
    account, sid = stored
    url = f"{account.base}/{sid}.wav"
    with httpx.Client(base_url=proxy.base_url, timeout=60) as http:
        whole = http.get(url)
        suffix = http.get(url, headers={"Range": f"bytes=-{MiB + 5}"})
    assert whole.status_code == 200 and whole.content == BODY
    assert whole.headers["content-length"] == str(SIZE)
    assert suffix.status_code == 206 and suffix.content == BODY[-(MiB + 5) :]


def _metric(server: ServerThread, name: str) -> float:
    text = httpx.get(server.base_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == {"format": "wav"}:
                return float(sample.value)
    return 0.0


def _read_answer(sock: socket.socket, buffered: bytes) -> tuple[bytes, bytes, bytes]:
    """One answer with a Content-Length off ``sock``: its head, its body, and what came after."""
    while b"\r\n\r\n" not in buffered:
        more = sock.recv(65536)
        assert more, buffered[:200]
        buffered += more
    head, _, rest = buffered.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = bytearray(rest)
    while len(body) < length:
        more = sock.recv(1 << 20)
        assert more, f"closed after {len(body)} of {length} bytes"
        body += more
    return head, bytes(body[:length]), bytes(body[length:])


def test_one_connection_serves_answer_after_answer_and_counts_what_was_spliced(
    proxy: ServerThread, stored: tuple[Account, str], request: pytest.FixtureRequest
) -> None:
    account, sid = stored
    target = f"{account.base}/{sid}.wav"
    streamed = _metric(proxy, "recordings_media_bytes_streamed_total")
    spliced = _metric(proxy, "recordings_media_bytes_spliced_total")
    first, last = 123_457, 3 * MiB + 17
    asks = [
        f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET {target} HTTP/1.1\r\nHost: x\r\nRange: bytes={first}-{last}\r\n\r\n",
        f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n",
    ]
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        buffered = b""
        bodies = []
        for ask in asks:  # one after the other on the same connection
            sock.sendall(ask.encode())
            head, body, buffered = _read_answer(sock, buffered)
            assert head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 206")), head
            assert buffered == b""  # not a byte more than the Content-Length
            bodies.append(body)
    assert bodies == [BODY, BODY[first : last + 1], BODY]
    sent = sum(len(body) for body in bodies)
    assert _metric(proxy, "recordings_media_bytes_streamed_total") - streamed == sent
    through_pipe = _metric(proxy, "recordings_media_bytes_spliced_total") - spliced
    if "spliced" in request.node.callspec.id:
        # All of it: what came in with storage's heads goes into the pipe ahead of the rest.
        assert through_pipe == sent
    else:
        assert through_pipe == 0


def test_a_body_that_comes_whole_with_storages_head_is_sent_whole(
    proxy: ServerThread, stored: tuple[Account, str]
) -> None:
    # A short recording arrives with storage's head: nothing is left on the socket to splice.
    account, _ = stored
    short = noise_wav(800)  # a tenth of a second
    with httpx.Client(base_url=proxy.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, short)
        for _ in range(2):
            answer = http.get(f"{account.base}/{sid}.wav")
            assert answer.status_code == 200 and answer.content == short


def _drop_mid_stream(server: ServerThread, target: str) -> int:
    """GET ``target``, take some of the body, then reset the connection; bytes taken."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        taken = 0
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
        taken += len(head)
        while taken < 300_000:
            chunk = sock.recv(65536)
            assert chunk
            taken += len(chunk)
        # SO_LINGER 0: close with a reset, as a client that is killed or loses its network.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return taken


def test_a_client_leaving_mid_stream_gives_back_its_slot_and_storage_connection(
    proxy: ServerThread, stored: tuple[Account, str]
) -> None:
    account, sid = stored
    target = f"{account.base}/{sid}.wav"
    # One stream per address and two storage connections: a slot not given back makes the next
    # GET a 429, and a storage connection not given back a 503 by the third drop.
    for _ in range(5):
        assert _drop_mid_stream(proxy, target) < SIZE
    with httpx.Client(base_url=proxy.base_url, timeout=60) as http:
        for _ in range(2):
            answer = http.get(target)
            assert answer.status_code == 200, answer.text
            assert answer.content == BODY


@pytest.mark.parametrize("chunk", [4096, 65_537, MiB])
def test_direct_reads_are_whole_chunks_of_the_stored_bytes(settings: Settings, chunk: int) -> None:
    spans: list[tuple[int | None, int | None]] = [
        (None, None),
        (MiB - 3, 2 * MiB + 5),
        (SIZE - 1, SIZE - 1),
    ]

    async def go() -> list[tuple[str, int, list[bytes]]]:
        async with open_storage(storage_config(settings)) as storage:
            key = storage.key(f"direct-probe-{chunk}")
            await storage.put_bytes(key, BODY, "audio/x-wav")
            read = []
            try:
                for first, last in spans:
                    stream = await storage.open_stream(key, first, last, chunk_size=chunk)
                    try:
                        chunks = [c async for c in stream.iter_chunks(chunk)]
                        read.append((type(stream).__name__, stream.content_length, chunks))
                    finally:
                        await stream.aclose()
            finally:
                await storage.delete_objects([key])
            return read

    for (first, last), (kind, length, chunks) in zip(spans, asyncio.run(go()), strict=True):
        expected = BODY if first is None or last is None else BODY[first : last + 1]
        # Read off the socket, but for a range of one chunk or less: a pooled connection.
        assert kind == ("ObjectStream" if len(expected) <= chunk else "DirectStream")
        assert length == len(expected)
        assert b"".join(chunks) == expected
        # Whole chunks but the last: one send each, never a slice of one.
        assert all(len(piece) == chunk for piece in chunks[:-1]), [len(c) for c in chunks]
        assert 0 < len(chunks[-1]) <= chunk


def test_direct_reads_give_their_storage_connection_back(settings: Settings) -> None:
    """With one storage connection: a missing object, a stream closed half read and one read
    to the end each give it back."""
    config = storage_config(settings.model_copy(update={"s3_max_connections": 1}))

    async def go() -> bytes:
        async with open_storage(config) as storage:
            key = storage.key("direct-slot-probe")
            await storage.put_bytes(key, BODY, "audio/x-wav")
            try:
                with pytest.raises(ObjectNotFound):
                    await storage.open_stream(storage.key("no-such-object"), chunk_size=MiB)
                half = await storage.open_stream(key, chunk_size=MiB)
                with pytest.raises(StorageUnavailable, match="busy"):
                    await storage.open_stream(key, chunk_size=MiB)
                async for _ in half.iter_chunks(MiB):
                    break
                await half.aclose()
                whole = await storage.open_stream(key, chunk_size=MiB)
                try:
                    body = b"".join([c async for c in whole.iter_chunks(MiB)])
                finally:
                    await whole.aclose()
                again = await storage.open_stream(key, 0, 9, chunk_size=MiB)
                await again.aclose()
            finally:
                await storage.delete_objects([key])
            return body

    assert asyncio.run(go()) == BODY


def test_a_direct_read_left_open_after_its_body_reads_nothing_more(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Storage closes the connection after the body (Connection: close). A stream still open
    # then (its last chunk being sent on to a slow client) must not have the loop read into a
    # buffer with no room left: asyncio calls that a fatal error of the connection.
    async def go() -> bytes:
        async with open_storage(storage_config(settings)) as storage:
            key = storage.key("direct-eof-probe")
            await storage.put_bytes(key, BODY, "audio/x-wav")
            try:
                stream = await storage.open_stream(key, chunk_size=MiB)
                try:
                    body = b"".join([c async for c in stream.iter_chunks(MiB)])
                    await asyncio.sleep(0.5)  # storage's FIN arrives meanwhile
                finally:
                    await stream.aclose()
            finally:
                await storage.delete_objects([key])
            return body

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        assert asyncio.run(go()) == BODY
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
