"""JSON logs that follow a recording from `recordings serve`'s ingest to `recordings worker`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from service.settings import Settings
from tests.support.clients import Account, upload
from tests.support.processes import running_process
from tests.support.stack import RECORDINGS, recordings_env, recordings_serve


def test_json_logs_follow_a_recording_from_ingest_to_the_worker(
    settings: Settings, account: Account, demo_wav: bytes, tmp_path: Path
) -> None:
    env = recordings_env(
        settings, RECORDINGS_TRANSCODE_ON_INGEST="true", RECORDINGS_LOG_FORMAT="json"
    )
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    with (
        running_process([RECORDINGS, "worker"], log=worker_log, env=env),
        recordings_serve(env, serve_log) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as http,
    ):
        made = upload(http, account, demo_wav, headers={"X-Request-Id": "ingest-trace-1"})
        assert made.headers["x-request-id"] == "ingest-trace-1"
        sid = made.json()["sid"]
        deadline = time.monotonic() + 30
        while sid not in worker_log.read_text():
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.2)

    access = [
        json.loads(line) for line in serve_log.read_text().splitlines() if line.startswith("{")
    ]
    ingest_line = next(
        e for e in access if e.get("logger") == "recordings.access" and e.get("status") == 201
    )
    assert ingest_line["request_id"] == "ingest-trace-1"
    assert ingest_line["route"].startswith("/internal/")
    worker_lines = [
        json.loads(line) for line in worker_log.read_text().splitlines() if line.startswith("{")
    ]
    made_line = next(e for e in worker_lines if e.get("recording_sid") == sid)
    assert made_line["request_id"] == "ingest-trace-1"
    assert made_line["level"] == "info"
