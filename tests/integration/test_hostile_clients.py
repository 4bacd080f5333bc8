"""The attacks of the outside audit, reproduced (loopback only, bounded in count and time):
each one now ends with the service still answering everyone else."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from service.app import create_app
from service.mp3.queue import job_payload
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import open_storage
from storage.errors import StorageUnavailable
from tests.support.clients import INGEST_TOKEN, Account, new_account, upload, uploaded_sid
from tests.support.ffmpeg import ffmpeg_children, generate, sine
from tests.support.rows import fetch_rows, recording_sids
from tests.support.stack import ServerThread, serving
from tests.support.wavs import noise_wav

# Small limits, so that each attack reaches them in a second or two.
STRICT = {
    "head_timeout_seconds": 1.0,
    "body_idle_timeout_seconds": 1.0,
    "max_streams_per_client": 2,
    "stream_release_after_seconds": 0.3,
    "stream_send_timeout_seconds": 3.0,
    "s3_max_connections": 4,
    "s3_pool_timeout": 0.5,
}


@pytest.fixture(scope="module")
def strict(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(settings.model_copy(update=STRICT)) as server:
        yield server


@pytest.fixture(scope="module")
def strict_spliced(settings: Settings) -> Iterator[ServerThread]:
    """The same limits, the bodies spliced rather than sent in chunks."""
    with ServerThread(settings.model_copy(update={**STRICT, "stream_splice": True})) as server:
        yield server


@pytest.fixture(scope="module")
def victim(settings: Settings, strict: ServerThread) -> tuple[Account, str, bytes]:
    """An account with one recording of about 5 MB, the bait of the slow readers."""
    account = new_account(settings.database_url)
    body = noise_wav(44_100 * 60, rate=44_100)
    with httpx.Client(base_url=strict.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, body)
    return account, sid, body


def connect(server: ServerThread, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        # Set before connecting, so the window the client advertises stays small.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(15)
    sock.connect(("127.0.0.1", server.port))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = bytearray()
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return bytes(received)


def still_serving(server: ServerThread) -> bool:
    return httpx.get(server.base_url + "/healthz", timeout=5).status_code == 200


def test_chunked_trailers_are_bounded_like_a_head(strict: ServerThread, account: Account) -> None:
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n4\r\nRIFF\r\n0\r\n"
    ).encode()
    # The service runs in this process: its memory is ours.
    before = psutil.Process().memory_info().rss
    with connect(strict) as sock:
        sock.sendall(head)
        sent = 0
        # 20 MB of "a:b" trailer lines: before, every one was kept in the request's headers
        # (60 MB of them took 1.4 GB), and the connection stayed open to the end.
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            while sent < 20 * 2**20:
                sock.sendall(b"a:b\r\n" * 10_000)
                sent += 50_000
        answer = read_until_closed(sock)
    grown = psutil.Process().memory_info().rss - before
    assert grown < 64 * 2**20, f"{grown / 2**20:.0f} MiB"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431")
    assert still_serving(strict)


def test_a_trickled_head_gets_408_and_a_silent_connection_is_closed(strict: ServerThread) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for i in range(40):  # one header line every 0.1 s, never the end of the head
            try:
                sock.sendall(f"X-Slow-{i}: y\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    with connect(strict) as idle:
        assert read_until_closed(idle) == b""  # closed by the service, not by our timeout
    assert still_serving(strict)


def test_a_stalled_upload_is_dropped_and_stores_nothing(
    strict: ServerThread, settings: Settings, account: Account
) -> None:
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        "Content-Length: 100000\r\n\r\nRIFF"
    ).encode()
    with connect(strict) as sock:
        sock.sendall(head)
        assert b" 201 " not in read_until_closed(sock)
    assert recording_sids(settings.database_url, account.sid) == []
    assert still_serving(strict)


@pytest.mark.parametrize("served", ["strict", "strict_spliced"])
def test_slow_readers_neither_hold_storage_nor_exceed_their_share(
    served: str, victim: tuple[Account, str, bytes], request: pytest.FixtureRequest
) -> None:
    strict: ServerThread = request.getfixturevalue(served)
    account, sid, body = victim
    target = f"{account.base}/{sid}.wav"
    stalled: list[socket.socket] = []
    try:
        # More stalled readers (each from an address of its own) than storage connections.
        for n in range(6):
            sock = connect(strict, rcvbuf=4096)
            sock.sendall(
                f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.9.0.{n}\r\n\r\n".encode()
            )
            stalled.append(sock)
        time.sleep(1.0)  # their streams are stuck: each gave its storage connection back
        with httpx.Client(base_url=strict.base_url, timeout=30) as http:
            whole = http.get(target, headers={"X-Forwarded-For": "10.9.1.1"})
            assert whole.status_code == 200 and whole.content == body
            assert uploaded_sid(http, account, body[:400_000])
            # One address may hold RECORDINGS_MAX_STREAMS_PER_CLIENT streams; past them, 503.
            crowd = "10.9.2.2"
            mine = [connect(strict, rcvbuf=4096) for _ in range(2)]
            stalled += mine
            for sock in mine:
                sock.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: {crowd}\r\n\r\n".encode()
                )
            time.sleep(0.5)
            third = http.get(target, headers={"X-Forwarded-For": crowd})
            assert third.status_code == 503 and third.headers["retry-after"]
        # A reader that takes nothing for the send timeout is dropped.
        for sock in stalled:
            sock.settimeout(20)
            read_until_closed(sock)  # returns once the service closed the connection
    finally:
        for sock in stalled:
            sock.close()
    assert still_serving(strict)


def test_waiting_for_a_storage_connection_is_bounded(settings: Settings) -> None:
    config = storage_config(settings.model_copy(update={"s3_max_connections": 1}))

    async def go() -> None:
        async with open_storage(config) as storage:
            assert await storage.ensure_bucket() in (True, False)
            key = storage.key("pool-probe")
            await storage.put_bytes(key, b"x" * 10, "text/plain")
            held = await storage.open_object(key)
            try:
                with pytest.raises(StorageUnavailable, match="busy"):
                    await storage.open_object(key)
            finally:
                await held.aclose()
            again = await storage.open_object(key)  # given back: available again
            await again.aclose()

    asyncio.run(go())


def test_cross_site_deletes_are_refused_and_the_override_never_touches_ingest(
    client: httpx.Client, account: Account, demo_wav: bytes
) -> None:
    sid = uploaded_sid(client, account, demo_wav)
    url = f"{account.base}/{sid}?_method=DELETE"
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
    ):
        refused = client.post(url, auth=account.auth, headers=headers)
        assert refused.status_code == 403, (headers, refused.text)
        assert b"RestException" in refused.content
    assert client.get(f"{account.base}/{sid}.json").status_code == 200
    own = client.post(url, auth=account.auth, headers={"Sec-Fetch-Site": "same-origin"})
    assert own.status_code == 204
    assert client.get(f"{account.base}/{sid}.json").status_code == 404
    # A POST with _method=DELETE on the ingest route stays an upload.
    response = client.post(
        f"/internal/Accounts/{account.sid}/Recordings.json",
        params={"CallSid": new_sid("CA"), "_method": "DELETE"},
        content=demo_wav,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )
    assert response.status_code == 201, response.text


def test_absurd_dates_are_ignored_or_refused_never_a_500(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    sid = uploaded_sid(client, account, demo_wav)
    absurd = "01 Jan 99999999999999999999 00:00:00"
    for name in ("If-Modified-Since", "If-Unmodified-Since", "If-Range"):
        headers = {name: absurd, "Range": "bytes=0-9"} if name == "If-Range" else {name: absurd}
        answer = client.get(f"{account.base}/{sid}.wav", headers=headers)
        assert answer.status_code == 200, (name, answer.status_code)
    before = recording_sids(settings.database_url, account.sid)
    for value in ("0001-01-01T00:00:00Z", "99999-01-01T00:00:00Z", absurd):
        refused = upload(client, account, demo_wav, date_created=value, expect=400)
        assert "DateCreated" in refused.json()["message"]
    assert recording_sids(settings.database_url, account.sid) == before
    listed = client.get(account.base + ".json", auth=account.auth)
    assert listed.status_code == 200


def test_an_unexpected_exception_is_a_rest_exception_with_the_request_id(
    settings: Settings,
) -> None:
    app = create_app(settings)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/2008-08-01/broken.json", broken)
    app.add_api_route("/2010-04-01/broken.json", broken)
    with ServerThread(settings, app) as server, httpx.Client(base_url=server.base_url) as http:
        old = http.get("/2008-08-01/broken.json")
        assert old.status_code == 500
        assert old.json()["status"] == 500
        assert old.headers["x-request-id"] in old.json()["message"]
        assert "a bug" not in old.text and "Traceback" not in old.text
        new = http.get("/2010-04-01/broken.json")
        assert new.status_code == 500 and new.json()["code"] == 20500


def test_no_server_header_and_trailing_slashes_are_served(
    client: httpx.Client, account: Account
) -> None:
    answer = client.get(account.base + "/", auth=account.auth)
    assert answer.status_code == 200
    assert "location" not in answer.headers
    assert "server" not in answer.headers


def test_a_decompression_bomb_is_decoded_capped_and_bounded(
    settings: Settings, tmp_path: Path
) -> None:
    # The audit's kind of file: 8 channels at 384 kHz for a minute, under 1 MB of FLAC.
    bomb = generate(
        settings.ffmpeg_path,
        tmp_path / "bomb.flac",
        "-f", "lavfi", "-i", "anullsrc=r=384000:cl=octagonal", "-t", "60", "-c:a", "flac",
    )  # fmt: skip
    assert bomb.stat().st_size < 2**20  # decoded whole: 368 MB
    capped = settings.model_copy(update={"max_duration_seconds": 120})
    with serving(capped) as http:
        account = new_account(settings.database_url)
        stored = upload(http, account, bomb.read_bytes()).json()
        wav = http.get(f"{account.base}/{stored['sid']}.wav").content
        assert stored["duration"] == "60"
        # Two channels at 48 kHz (11.5 MB), not eight at 384 kHz (368 MB).
        assert wav[22:24] == (2).to_bytes(2, "little")
        assert int.from_bytes(wav[24:28], "little") == 48_000
        assert len(wav) < 12 * 2**20
    # Longer than RECORDINGS_MAX_DURATION_SECONDS: refused, and decoding stopped at the limit.
    short = settings.model_copy(update={"max_duration_seconds": 20})
    with serving(short) as http:
        account = new_account(settings.database_url)
        refused = upload(http, account, bomb.read_bytes(), expect=422)
        assert "longer than the limit of 20 seconds" in refused.json()["message"]
        assert recording_sids(settings.database_url, account.sid) == []


def test_uploads_share_the_ffmpeg_slots_and_are_refused_past_the_queue(
    settings: Settings, tmp_path: Path
) -> None:
    flac = generate(
        settings.ffmpeg_path, tmp_path / "call.flac", *sine(44_100, 30, channels=2), "-c:a", "flac"
    ).read_bytes()
    one = settings.model_copy(update={"ffmpeg_max_processes": 1, "ffmpeg_max_waiting": 1})
    most = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal most
        while not done.is_set():
            most = max(most, len(ffmpeg_children()))
            time.sleep(0.005)

    with serving(one) as http:
        account = new_account(settings.database_url)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(
                    pool.map(lambda _: upload(http, account, flac, expect=None), range(6))
                )
        finally:
            done.set()
            watcher.join()
    statuses = sorted(a.status_code for a in answers)
    assert most == 1  # never more than RECORDINGS_FFMPEG_MAX_PROCESSES at once
    assert 201 in statuses and 503 in statuses, statuses
    assert set(statuses) <= {201, 503}
    assert all(a.headers.get("retry-after") for a in answers if a.status_code == 503)
    stored = recording_sids(settings.database_url, account.sid)
    assert len(stored) == statuses.count(201)


def test_the_internal_route_is_described_only_to_the_platform(client: httpx.Client) -> None:
    public = client.get("/openapi.json").json()
    assert not [path for path in public["paths"] if path.startswith("/internal/")]
    assert client.get("/internal/openapi.json").status_code == 401
    internal = client.get(
        "/internal/openapi.json", headers={"Authorization": f"Bearer {INGEST_TOKEN}"}
    )
    assert "/internal/Accounts/{account_sid}/Recordings{suffix}" in internal.json()["paths"]


def test_a_full_transcoder_queues_the_mp3_and_says_when_to_come_back(
    settings: Settings, tmp_path: Path, demo_wav: bytes
) -> None:
    slow = tmp_path / "slow-ffmpeg"
    slow.write_text(f'#!/bin/sh\nsleep 2\nexec {settings.ffmpeg_path} "$@"\n')
    slow.chmod(0o755)
    tight = settings.model_copy(
        update={"ffmpeg": str(slow), "ffmpeg_max_processes": 1, "ffmpeg_max_waiting": 0}
    )
    with serving(tight) as http:
        account = new_account(settings.database_url)
        first, second = (uploaded_sid(http, account, demo_wav) for _ in range(2))
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            making = pool.submit(http.get, f"{account.base}/{first}.mp3")
            time.sleep(0.5)  # the first holds the only slot for two seconds at least
            refused = http.get(f"{account.base}/{second}.mp3")
            assert making.result().status_code == 200
    assert refused.status_code == 503
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "queued" in refused.text
    queued = fetch_rows(
        settings.database_url,
        "SELECT count(*) AS n FROM pgqueuer WHERE entrypoint = 'recordings.mp3' AND payload = $1",
        job_payload(account.sid, second),
    )
    assert queued[0]["n"] == 1
