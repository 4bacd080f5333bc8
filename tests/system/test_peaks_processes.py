"""Peaks across processes: two `recordings serve` replicas decode once for concurrent first
requests, and a `recordings worker` makes the peaks an ingest queued."""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path

import httpx

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import Account, uploaded_sid
from tests.support.ffmpeg import CountingFfmpeg
from tests.support.peaks import stretches_wav
from tests.support.processes import running_process
from tests.support.rows import fetch_rows
from tests.support.stack import (
    RECORDINGS,
    make_settings,
    recordings_env,
    recordings_replicas,
    serving,
)


def test_concurrent_first_requests_on_two_processes_decode_once(
    settings: Settings, account: Account, counting_ffmpeg: CountingFfmpeg, tmp_path: Path
) -> None:
    env = recordings_env(
        settings,
        RECORDINGS_FFMPEG=str(counting_ffmpeg.path),
        RECORDINGS_TRANSCODE_ON_INGEST="false",
        RECORDINGS_FFMPEG_MAX_WAITING="64",
    )
    with recordings_replicas(env, tmp_path) as bases:
        # Ten minutes: long enough that every request arrives while the first decode runs.
        wav, _ = stretches_wav([(300, [4000]), (300, [0])])
        with httpx.Client(base_url=bases[0], timeout=60) as first:
            sid = uploaded_sid(first, account, wav)
        faces = ("2008-08-01", "2010-04-01")
        urls = [
            f"{bases[i % 2]}/{faces[i // 2 % 2]}/Accounts/{account.sid}/Recordings/{sid}/Peaks.json"
            for i in range(32)
        ]
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(lambda u: httpx.get(u, timeout=120), urls))
        assert {a.status_code for a in answers} == {200}, [a.text for a in answers][:3]
        assert len({a.content for a in answers}) == 1
        assert counting_ffmpeg.peaks_runs() == 1


def test_the_worker_makes_the_peaks_after_ingest(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    tmp_path: Path,
) -> None:
    # The API's ffmpeg is counted; the worker runs the real one.
    eager = make_settings(postgres, s3, ffmpeg=str(counting_ffmpeg.path), transcode_on_ingest=True)
    env = recordings_env(eager, RECORDINGS_FFMPEG=settings.ffmpeg_path)
    worker_log = tmp_path / "worker.log"
    wav, _ = stretches_wav([(2, [0]), (2, [9000])])
    with (
        running_process([RECORDINGS, "worker"], log=worker_log, env=env) as worker,
        serving(eager, timeout=60) as http,
    ):
        sid = uploaded_sid(http, account, wav)
        deadline = time.monotonic() + 30
        while not fetch_rows(
            settings.database_url,
            "SELECT 1 FROM recording_peaks WHERE sid = $1 AND peaks_key IS NOT NULL",
            sid,
        ):
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.1)
        response = http.get(f"{account.base}/{sid}/Peaks.json")
        assert response.status_code == 200
        assert response.json()["length"] > 0
        assert counting_ffmpeg.peaks_runs() == 0, "the API served the worker's peaks"
    assert worker.returncode == 0, worker_log.read_text()
