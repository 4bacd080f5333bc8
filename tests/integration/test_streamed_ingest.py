"""A long PCM WAV goes to storage while it arrives (service.ingest.receiver): a multipart upload
that exists before the body's last byte, completed into the same bytes with the exact duration
and ETag, and aborted by the ingest itself (not left for `recordings gc`) when the client leaves
midway or storage fails midway."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.ingest.receiver import PART_SIZE
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import open_storage
from tests.support.clients import INGEST_TOKEN, Account, new_account, upload
from tests.support.faults import FaultProxy
from tests.support.rows import fetch_rows, recording_sids
from tests.support.stack import ServerThread, make_settings, serving
from tests.support.wavs import chunk, noise_wav

# The session's `settings` fixture creates the bucket every test here uses.
pytestmark = pytest.mark.usefixtures("settings")
RATE = 8000
SLICE = 64 * 1024


@pytest.fixture(scope="module")
def long_wav() -> bytes:
    """Three and a half parts of 8 kHz 16-bit noise, 1,835.57 s, and a LIST chunk after the
    audio (which the measuring walks past, as it does in a file)."""
    frames = (7 * PART_SIZE // 2) // 2 + 4_501
    wav = noise_wav(frames, rate=RATE, seed=27)
    wav += chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00test\x00")
    return wav[:4] + struct.pack("<I", len(wav) - 8) + wav[8:]


def _in_storage(settings: Settings, account: Account) -> tuple[list[str], list[str]]:
    """What storage holds under the account, through the S3 API: (object keys, keys of
    unfinished multipart uploads); nothing is collected first."""

    async def go() -> tuple[list[str], list[str]]:
        async with open_storage(storage_config(settings)) as storage:
            keys = [obj.key async for obj in storage.list_objects(f"{account.sid}/")]
            uploads = [k async for k, _, _ in storage.list_unfinished_uploads(f"{account.sid}/")]
            return sorted(keys), sorted(uploads)

    return asyncio.run(go())


def _wait_for(settings: Settings, account: Account, *, uploads: bool, timeout: float = 60) -> None:
    """Until the account has an unfinished upload (``uploads``), or has none and no object."""
    deadline = time.monotonic() + timeout
    while True:
        keys, unfinished = _in_storage(settings, account)
        if (bool(unfinished) if uploads else not unfinished and not keys) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    if uploads:
        assert unfinished, "no multipart upload was under way while the body was arriving"
    else:
        assert (keys, unfinished) == ([], []), "an abandoned ingest left storage behind"


def _exact_seconds(frames: int) -> int:
    return (2 * frames + RATE) // (2 * RATE)


def test_a_long_wav_is_in_storage_before_its_end_and_stored_byte_identical(
    client: httpx.Client, settings: Settings, account: Account, long_wav: bytes
) -> None:
    half = len(long_wav) // 2 // SLICE * SLICE

    def body() -> Iterator[bytes]:
        for start in range(0, half, SLICE):
            yield long_wav[start : start + SLICE]
        # Held back until storage has parts: the upload runs while the body still arrives.
        _wait_for(settings, account, uploads=True)
        for start in range(half, len(long_wav), SLICE):
            yield long_wav[start : start + SLICE]

    made = upload(client, account, body(), headers={"Content-Length": str(len(long_wav))})
    sid = made.json()["sid"]
    frames = (len(long_wav) - 44 - 28) // 2
    assert made.json()["duration"] == str(_exact_seconds(frames)) == "1836"

    media = client.get(f"{account.base}/{sid}")
    digest = hashlib.sha256(long_wav).hexdigest()
    assert hashlib.sha256(media.content).hexdigest() == digest
    assert media.headers["etag"] == f'"{digest[:40]}"'
    (row,) = fetch_rows(
        settings.database_url, "SELECT wav_etag, wav_size FROM recordings WHERE sid = $1", sid
    )
    assert (row["wav_etag"], row["wav_size"]) == (f'"{digest[:40]}"', len(long_wav))
    assert _in_storage(settings, account)[1] == [], "the completed upload is still listed"


def test_a_client_that_leaves_midway_leaves_no_object_and_no_upload(
    server: ServerThread, settings: Settings, account: Account, long_wav: bytes
) -> None:
    url = urlsplit(server.base_url)
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')} HTTP/1.1"
        f"\r\nHost: {url.netloc}\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        f"Content-Type: audio/x-wav\r\nContent-Length: {len(long_wav)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname or "", url.port or 80)) as sock:
        sock.sendall(head + long_wav[: 5 * PART_SIZE // 2])
        _wait_for(settings, account, uploads=True)
    # The service sees the connection close mid-body and aborts the upload itself.
    _wait_for(settings, account, uploads=False)
    assert recording_sids(settings.database_url, account.sid) == []


def test_storage_failing_midway_is_a_503_and_the_upload_is_aborted(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, long_wav: bytes
) -> None:
    account = new_account(postgres.dsn)
    direct = make_settings(postgres, s3)
    half = len(long_wav) // 2 // SLICE * SLICE
    with FaultProxy.for_url(s3.endpoint_url) as proxy:

        def body() -> Iterator[bytes]:
            for start in range(0, half, SLICE):
                yield long_wav[start : start + SLICE]
            _wait_for(direct, account, uploads=True)
            # The next part is cut on its way; the connections after it (the abort's) flow.
            proxy.cut_after(64 * 1024, "to_upstream", once=True)
            for start in range(half, len(long_wav), SLICE):
                yield long_wav[start : start + SLICE]

        served = direct.model_copy(update={"s3_endpoint_url": proxy.rewrite(s3.endpoint_url)})
        with serving(served) as http:
            length = {"Content-Length": str(len(long_wav))}
            failed = upload(http, account, body(), headers=length, expect=None)
    assert failed.status_code == 503, failed.text
    assert failed.json()["status"] == 503
    assert proxy.cuts >= 1
    assert recording_sids(postgres.dsn, account.sid) == []
    keys, unfinished = _in_storage(direct, account)
    assert (keys, unfinished) == ([], []), "the failed ingest did not abort its upload"


def test_a_wav_whose_end_is_inconsistent_is_read_back_and_decoded(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    long_wav: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "service.ingest.receiver")
    # A PCM head whose sizes agree with the Content-Length, so it streams; a last chunk that
    # claims more than the file has, which the at-rest check refuses and ffmpeg decodes.
    wav = long_wav + b"LIST" + struct.pack("<I", 1000) + b"short!"
    wav = wav[:4] + struct.pack("<I", len(wav) - 8) + wav[8:]
    made = upload(client, account, wav, headers={"Content-Length": str(len(wav))})
    sid = made.json()["sid"]
    assert made.json()["duration"] == "1836"
    assert "not a consistent PCM WAV: reading it back" in caplog.text
    stored = client.get(f"{account.base}/{sid}").content
    # Normalised by ffmpeg (its own header), the samples unchanged.
    assert stored != wav and stored[-(len(long_wav) - 100) :] in long_wav
    keys, unfinished = _in_storage(settings, account)
    assert [key.rsplit("/", 1)[1] for key in keys] == [f"{sid}.wav"], "the streamed copy stayed"
    assert unfinished == []


def test_a_replayed_long_wav_aborts_its_second_upload(
    client: httpx.Client, settings: Settings, account: Account, long_wav: bytes
) -> None:
    key = {"Idempotency-Key": f"replay-{new_sid('CA')}", "Content-Length": str(len(long_wav))}
    call = new_sid("CA")
    first = upload(client, account, long_wav, call_sid=call, headers=key)
    again = upload(client, account, long_wav, call_sid=call, headers=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["sid"] == first.json()["sid"]
    keys, unfinished = _in_storage(settings, account)
    assert [k.rsplit("/", 1)[1] for k in keys] == [f"{first.json()['sid']}.wav"]
    assert unfinished == [], "the replay's streamed upload was left behind"


def test_past_its_streaming_slots_a_long_wav_is_spooled_and_stored_alike(
    settings: Settings, account: Account, long_wav: bytes
) -> None:
    # Two long uploads at once in a process allowed one streamed ingest: the second is spooled
    # to disk (its memory is not the process's to give), and both are stored alike.
    half = len(long_wav) // 2 // SLICE * SLICE
    go_on = threading.Event()
    held = [threading.Event(), threading.Event()]

    def body(n: int) -> Iterator[bytes]:
        for start in range(0, half, SLICE):
            yield long_wav[start : start + SLICE]
        held[n].set()
        go_on.wait(60)
        for start in range(half, len(long_wav), SLICE):
            yield long_wav[start : start + SLICE]

    one_slot = settings.model_copy(update={"ingest_max_streamed": 1})
    with serving(one_slot) as http, ThreadPoolExecutor(2) as threads:
        sent = [
            threads.submit(
                upload, http, account, body(n), headers={"Content-Length": str(len(long_wav))}
            )
            for n in range(2)
        ]
        try:
            assert all(h.wait(60) for h in held)
            # Both have sent more than a part; only the one holding the slot streams. Had the
            # other one streamed, its upload would show within a few seconds.
            deadline = time.monotonic() + 3
            while len(_in_storage(settings, account)[1]) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            under_way = _in_storage(settings, account)[1]
        finally:
            go_on.set()
        made = [future.result().json() for future in sent]
        stored = [http.get(f"{account.base}/{r['sid']}").content for r in made]
    assert len(under_way) == 1
    digest = hashlib.sha256(long_wav).hexdigest()
    assert [r["duration"] for r in made] == ["1836", "1836"]
    assert [hashlib.sha256(content).hexdigest() for content in stored] == [digest, digest]
    assert _in_storage(settings, account)[1] == []
