"""MP3s across processes: two `recordings serve` replicas run ffmpeg once for 64 cold requests,
and a `recordings worker` makes the MP3 an ingest queued."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import time
from pathlib import Path

import asyncpg
import httpx

from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, uploaded_sid
from tests.support.ffmpeg import CountingFfmpeg
from tests.support.processes import running_process
from tests.support.rows import object_exists, stored_key
from tests.support.stack import (
    RECORDINGS,
    make_settings,
    recordings_env,
    recordings_replicas,
    serving,
)
from tests.support.wavs import noise_wav


def test_64_concurrent_cold_requests_on_two_processes_run_ffmpeg_once(
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    tmp_path: Path,
) -> None:
    env = recordings_env(
        settings,
        RECORDINGS_FFMPEG=str(counting_ffmpeg.path),
        RECORDINGS_TRANSCODE_ON_INGEST="false",
        RECORDINGS_FFMPEG_MAX_WAITING="64",
        # All 64 come from 127.0.0.1: this tests single flight, not the per-client share.
        RECORDINGS_MAX_STREAMS_PER_CLIENT="64",
    )
    with recordings_replicas(env, tmp_path) as bases:
        long_wav = write_demo_wav(tmp_path / "cold.wav", 60.0).read_bytes()
        with httpx.Client(base_url=bases[0], timeout=60) as first:
            sid = uploaded_sid(first, account, long_wav)
        urls = [f"{bases[i % 2]}{account.base}/{sid}.mp3" for i in range(64)]
        with concurrent.futures.ThreadPoolExecutor(64) as pool:
            bodies = list(pool.map(lambda u: httpx.get(u, timeout=120), urls))
        assert {r.status_code for r in bodies} == {200}
        assert len({hashlib.sha256(r.content).hexdigest() for r in bodies}) == 1
        assert counting_ffmpeg.mp3_runs() == 1


def test_worker_makes_the_mp3_after_ingest(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    demo_wav: bytes,
    tmp_path: Path,
) -> None:
    # The API's ffmpeg is counted; the worker runs the real one.
    eager = make_settings(postgres, s3, ffmpeg=str(counting_ffmpeg.path), transcode_on_ingest=True)
    env = recordings_env(eager, RECORDINGS_FFMPEG=settings.ffmpeg_path)
    worker_log = tmp_path / "worker.log"
    with (
        running_process([RECORDINGS, "worker"], log=worker_log, env=env) as worker,
        serving(eager, timeout=60) as http,
    ):
        sid = uploaded_sid(http, account, demo_wav)

        async def mp3_key() -> object:
            conn = await asyncpg.connect(settings.database_url)
            try:
                return await conn.fetchval("SELECT mp3_key FROM recordings WHERE sid = $1", sid)
            finally:
                await conn.close()

        deadline = time.monotonic() + 30
        while asyncio.run(mp3_key()) is None:
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.1)
        response = http.get(f"{account.base}/{sid}.mp3")
        assert response.status_code == 200
        assert (
            response.content[:3] in (b"ID3", b"\xff\xf3", b"\xff\xfb")
            or response.content[0] == 0xFF
        )
        assert counting_ffmpeg.mp3_runs() == 0, "the API served the worker's MP3"
    # Stopped with SIGTERM, the worker finishes cleanly.
    assert worker.returncode == 0, worker_log.read_text()


def test_worker_makes_a_conference_recordings_mono_mp3_too(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    tmp_path: Path,
) -> None:
    eager = make_settings(postgres, s3, ffmpeg=str(counting_ffmpeg.path), transcode_on_ingest=True)
    env = recordings_env(eager, RECORDINGS_FFMPEG=settings.ffmpeg_path)
    worker_log = tmp_path / "worker.log"
    with (
        running_process([RECORDINGS, "worker"], log=worker_log, env=env),
        serving(eager, timeout=60) as http,
    ):
        sid = uploaded_sid(
            http,
            account,
            noise_wav(8000 * 5, channels=2),
            query={"Source": "Conference", "ConferenceSid": new_sid("CF")},
        )
        mono = stored_key(eager, account.sid, sid, "mono.mp3")
        deadline = time.monotonic() + 30
        while not object_exists(eager, mono):
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.2)
        response = http.get(f"{account.base}/{sid}.mp3")
        assert response.status_code == 200
        assert response.content[0] == 0xFF and (response.content[3] >> 6) == 0b11  # mono
        assert counting_ffmpeg.mp3_runs() == 0, "the API served the worker's mono MP3"
