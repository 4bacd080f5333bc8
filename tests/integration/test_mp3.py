"""MP3: made by real ffmpeg, cached in storage, one run per recording across processes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.audio.probe import parse_pcm_wav
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.clients import Account, uploaded_sid
from tests.support.ffmpeg import CountingFfmpeg, ffmpeg_children
from tests.support.rows import (
    insert_raw_recording,
    object_exists,
    stored_key,
    wait_for_stored_mp3,
)
from tests.support.stack import ServerThread, make_settings
from tests.support.wavs import pcm_header


@pytest.fixture
def lazy_server(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, counting_ffmpeg: CountingFfmpeg
) -> Iterator[ServerThread]:
    """A service that makes MP3s only on request, with a counted ffmpeg."""
    lazy = make_settings(postgres, s3, ffmpeg=str(counting_ffmpeg.path), transcode_on_ingest=False)
    with ServerThread(lazy) as running:
        yield running


@pytest.fixture
def http(lazy_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=lazy_server.base_url, timeout=60) as client:
        yield client


def decoded_seconds(ffmpeg: str, mp3: bytes, tmp_path: Path) -> float:
    src, dst = tmp_path / "check.mp3", tmp_path / "check.wav"
    src.write_bytes(mp3)
    subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(src),
            "-c:a",
            "pcm_s16le",
            str(dst),
        ],
        check=True,
    )
    info = parse_pcm_wav(dst)
    assert info is not None
    return info.duration_seconds


def test_mp3_decodes_with_the_right_duration_and_is_served_like_the_wav(
    http: httpx.Client,
    account: Account,
    settings: Settings,
    counting_ffmpeg: CountingFfmpeg,
    demo_wav: bytes,
    tmp_path: Path,
) -> None:
    sid = uploaded_sid(http, account, demo_wav)
    url = f"{account.base}/{sid}.mp3"
    response = http.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == f'inline; filename="{sid}.mp3"'
    mp3 = response.content
    # MPEG-2 Layer III at 16 kHz: Safari plays it, unlike 8 kHz MPEG-2.5.
    header = struct.unpack(">I", mp3[:4])[0]
    assert header >> 21 == 0x7FF, "starts with a frame, no ID3 tag"
    assert (header >> 19) & 0b11 == 0b10, "MPEG-2"
    assert abs(decoded_seconds(settings.ffmpeg_path, mp3, tmp_path) - 3.0) < 0.1
    assert counting_ffmpeg.mp3_runs() == 1

    again = http.get(url)
    assert again.content == mp3
    assert again.headers["etag"] == response.headers["etag"]
    part = http.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == mp3[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(mp3)}"
    assert http.get(url, headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    assert http.head(url).headers["content-length"] == str(len(mp3))
    assert http.get(url, headers={"Range": f"bytes={len(mp3)}-"}).status_code == 416
    assert counting_ffmpeg.mp3_runs() == 1, "the cached MP3 must not run ffmpeg again"


def test_mp3_of_a_deleted_recording_is_404_and_its_object_goes(
    http: httpx.Client, account: Account, settings: Settings, demo_wav: bytes
) -> None:
    sid = uploaded_sid(http, account, demo_wav)
    assert http.get(f"{account.base}/{sid}.mp3").status_code == 200
    wait_for_stored_mp3(settings, sid)
    assert http.delete(f"{account.base}/{sid}", auth=account.auth).status_code == 204
    assert http.get(f"{account.base}/{sid}.mp3").status_code == 404

    assert not object_exists(settings, stored_key(settings, account.sid, sid, "mp3"))


def hostile_wavs() -> dict[str, tuple[bytes, int]]:
    """Stored objects that ingest would never have let in: (bytes, duration the row claims)."""

    second = b"\x00\x10" * 8000
    return {
        "not-a-wav": (os.urandom(50_000), 3),
        "text": (b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\nfile:///etc/passwd\n" * 10, 3),
        "zero-length": (b"", 3),
        "truncated": (pcm_header(8000, 60 * 16000) + second, 60),
        "lying-header": (pcm_header(8000, 0xFFFFFFF0) + second, 60),
        "absurd-rate": (pcm_header(4_000_000_000 // 2, len(second)) + second, 1),
    }


@pytest.mark.parametrize("name", sorted(hostile_wavs()))
def test_hostile_stored_audio_gives_a_clear_error_once(
    http: httpx.Client,
    account: Account,
    settings: Settings,
    counting_ffmpeg: CountingFfmpeg,
    name: str,
) -> None:
    body, duration = hostile_wavs()[name]
    sid = insert_raw_recording(settings, account.sid, body, duration)
    url = f"{account.base}/{sid}.mp3"
    first = http.get(url)
    assert first.status_code == 422, (first.status_code, first.text)
    assert b"<RestException>" in first.content and b"transcoded" in first.content
    runs = counting_ffmpeg.mp3_runs()
    assert runs == 1
    second = http.get(url)
    assert second.status_code == 422
    assert counting_ffmpeg.mp3_runs() == runs, "a failure is remembered, not retried"
    assert ffmpeg_children() == []

    assert not object_exists(settings, stored_key(settings, account.sid, sid, "mp3")), (
        "nothing half-written in the cache"
    )


def test_client_leaving_mid_transcode_kills_ffmpeg(
    http: httpx.Client,
    lazy_server: ServerThread,
    account: Account,
    settings: Settings,
    tmp_path: Path,
) -> None:
    long_wav = write_demo_wav(tmp_path / "long.wav", 900.0).read_bytes()
    sid = uploaded_sid(http, account, long_wav)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{lazy_server.base_url}{account.base}/{sid}.mp3", timeout=0.5)
    deadline = time.monotonic() + 10
    while ffmpeg_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ffmpeg_children() == []

    async def state() -> tuple[object, bool]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            key = await conn.fetchval("SELECT mp3_key FROM recordings WHERE sid = $1", sid)
        finally:
            await conn.close()
        async with open_storage(storage_config(settings)) as storage:
            return key, await storage.object_exists(stored_key(settings, account.sid, sid, "mp3"))

    assert asyncio.run(state()) == (None, False)
    # Nothing was remembered as a failure: the next request makes it.
    assert http.get(f"{account.base}/{sid}.mp3", timeout=120).status_code == 200


def test_client_leaving_mid_stream_leaks_nothing(
    http: httpx.Client, lazy_server: ServerThread, s3: EmbeddedS3, account: Account, tmp_path: Path
) -> None:
    big = write_demo_wav(tmp_path / "big.wav", 300.0).read_bytes()
    sid = uploaded_sid(http, account, big)
    url = f"{lazy_server.base_url}{account.base}/{sid}"

    def s3_connections() -> int:
        return sum(
            1
            for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == s3.port and c.status == psutil.CONN_ESTABLISHED
        )

    for _ in range(20):
        with httpx.stream("GET", url, timeout=10) as response:
            assert response.status_code == 200
            next(response.iter_raw(65536))
    deadline = time.monotonic() + 10
    while s3_connections() > 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert s3_connections() <= 4
    assert hashlib.sha256(http.get(url).content).digest() == hashlib.sha256(big).digest()


def test_delete_during_a_transcode_leaves_no_mp3(
    http: httpx.Client,
    lazy_server: ServerThread,
    account: Account,
    settings: Settings,
    counting_ffmpeg: CountingFfmpeg,
    tmp_path: Path,
) -> None:
    sid = uploaded_sid(http, account, write_demo_wav(tmp_path / "long.wav", 600.0).read_bytes())
    url = f"{lazy_server.base_url}{account.base}/{sid}.mp3"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.get, url, timeout=120)
        deadline = time.monotonic() + 30
        while counting_ffmpeg.mp3_runs() == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert http.delete(f"{account.base}/{sid}", auth=account.auth).status_code == 204
        answer = pending.result()
    assert answer.status_code == 404

    async def leftovers() -> list[str]:
        async with open_storage(storage_config(settings)) as storage:
            return [o.key async for o in storage.list_objects(f"{account.sid}/{sid}")]

    assert asyncio.run(leftovers()) == []
    assert ffmpeg_children() == []


class UploadGate:
    """Holds every storage upload of the process at the gate until it is opened; then the real
    upload runs. What a slow storage PUT looks like to the service, without the proxy's timing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import threading

        from storage.client import Storage

        self.opened = threading.Event()
        self.waiting = threading.Event()
        real = Storage.upload_file

        async def gated(storage: Storage, *args: object, **kwargs: object) -> object:
            import anyio

            self.waiting.set()
            await anyio.to_thread.run_sync(self.opened.wait)
            return await real(storage, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Storage, "upload_file", gated)


def mp3_dirs(settings: Settings) -> list[Path]:
    root = Path(settings.tmp_dir) if settings.tmp_dir else None
    assert root is not None
    return sorted(root.glob("mp3-*"))


def test_the_first_answer_of_a_cold_mp3_does_not_wait_for_storage(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        postgres, s3, ffmpeg=str(counting_ffmpeg.path), tmp_dir=str(tmp_path / "work")
    )
    (tmp_path / "work").mkdir()
    gate = UploadGate(monkeypatch)
    with (
        ServerThread(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        gate.opened.set()  # the WAV's own upload
        wav = write_demo_wav(tmp_path / "cold.wav", 20.0).read_bytes()
        sid = uploaded_sid(http, account, wav)
        gate.opened.clear()
        gate.waiting.clear()
        url = f"{account.base}/{sid}.mp3"
        key = stored_key(settings, account.sid, sid, "mp3")
        try:
            first = http.get(url)
            assert first.status_code == 200
            # Answered whole while the MP3's upload is still held at the gate.
            assert gate.waiting.is_set()
            assert not object_exists(settings, key)
            assert len(first.content) == int(first.headers["content-length"]) > 10_000
            assert decoded_seconds(str(counting_ffmpeg.path), first.content, tmp_path) == (
                pytest.approx(20.0, abs=0.1)
            )
            # A range of the same file, from the same run, still before it is stored.
            part = http.get(url, headers={"Range": "bytes=100-1099"})
            assert part.status_code == 206
            assert part.content == first.content[100:1100]
            assert part.headers["etag"] == first.headers["etag"]
            assert counting_ffmpeg.mp3_runs() == 1
            assert len(mp3_dirs(settings)) == 1
        finally:
            gate.opened.set()
        deadline = time.monotonic() + 30
        while not object_exists(settings, key):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # Stored as it was served: the same bytes and validators, from storage now.
        deadline = time.monotonic() + 30
        while mp3_dirs(settings):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        again = http.get(url)
        assert again.content == first.content
        for header in ("etag", "last-modified", "content-type", "content-disposition"):
            assert again.headers[header] == first.headers[header]
        assert http.get(url, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
        assert counting_ffmpeg.mp3_runs() == 1
