"""/metrics after traffic, request ids on responses, JSON logs that follow a recording to the worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devstack.dev import settings_env
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.settings import Settings
from service.sids import new_sid
from tests.conftest import INGEST_TOKEN, Account, Ingest, ServerThread, make_settings, upload

RECORDINGS = str(Path(sys.executable).parent / "recordings")


def samples(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, account: Account, demo_wav: bytes
) -> None:
    with (
        ServerThread(make_settings(postgres, s3)) as server,
        httpx.Client(base_url=server.base_url, timeout=60) as http,
    ):
        before = samples(http)
        sid = upload(http, account, demo_wav)
        assert http.get(f"{account.base}/{sid}").content == demo_wav
        assert http.get(f"{account.base}/{sid}.mp3").status_code == 200
        assert http.get(f"{account.base}/{sid}.mp3").status_code == 200
        assert http.get(account.base, auth=account.auth).status_code == 200
        assert http.get(account.base).status_code == 401
        after = samples(http)

    route = "/2008-08-01/Accounts/{account_sid}/Recordings/{name}"
    listing = "/2008-08-01/Accounts/{account_sid}/Recordings"
    assert (
        value(after, "recordings_http_requests_total", method="GET", route=route, status="200")
        - value(before, "recordings_http_requests_total", method="GET", route=route, status="200")
        == 3
    )
    assert (
        value(after, "recordings_http_requests_total", method="GET", route=listing, status="401")
        >= 1
    )
    assert (
        value(after, "recordings_http_request_duration_seconds_count", method="GET", route=route)
        >= 3
    )
    assert value(after, "recordings_media_bytes_streamed_total", format="wav") - value(
        before, "recordings_media_bytes_streamed_total", format="wav"
    ) == len(demo_wav)
    assert value(after, "recordings_media_bytes_streamed_total", format="mp3") > 0
    assert value(after, "recordings_mp3_cache_requests_total", result="miss") == 1
    assert value(after, "recordings_mp3_cache_requests_total", result="hit") == 1
    assert value(after, "recordings_transcodes_total", outcome="ok") == 1
    assert value(after, "recordings_transcode_duration_seconds_count") == 1
    assert ("recordings_mp3_queue_depth", ()) in after


def test_request_ids(client: httpx.Client, account: Account, ingest: Ingest) -> None:
    fresh = client.get("/healthz").headers["x-request-id"]
    assert len(fresh) >= 16
    assert (
        client.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"}).headers["x-request-id"]
        == "trace-42.a_b"
    )
    unsafe = client.get("/healthz", headers={"X-Request-Id": 'a b"<c>'}).headers["x-request-id"]
    assert unsafe != 'a b"<c>' and all(ch.isalnum() for ch in unsafe)
    assert client.get(account.base).headers["x-request-id"]  # errors carry it too


def test_json_logs_follow_a_recording_from_ingest_to_the_worker(
    settings: Settings, account: Account, demo_wav: bytes, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDINGS_")}
    env.update(settings_env(settings))
    env.update(RECORDINGS_TRANSCODE_ON_INGEST="true", RECORDINGS_LOG_FORMAT="json")
    port = free_port()
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    with serve_log.open("w") as serve_err, worker_log.open("w") as worker_err:
        serve = subprocess.Popen(
            [RECORDINGS, "serve", "--port", str(port)], env=env, stderr=serve_err
        )
        worker = subprocess.Popen([RECORDINGS, "worker"], env=env, stderr=worker_err)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            made = httpx.post(
                f"{base}/internal/Accounts/{account.sid}/Recordings.json",
                params={"CallSid": new_sid("CA")},
                content=demo_wav,
                headers={
                    "Authorization": f"Bearer {INGEST_TOKEN}",
                    "X-Request-Id": "ingest-trace-1",
                },
                timeout=60,
            )
            assert made.status_code == 201
            assert made.headers["x-request-id"] == "ingest-trace-1"
            sid = made.json()["sid"]
            deadline = time.monotonic() + 30
            while sid not in worker_log.read_text():
                assert time.monotonic() < deadline, worker_log.read_text()
                time.sleep(0.2)
        finally:
            for proc in (serve, worker):
                proc.terminate()
            for proc in (serve, worker):
                proc.wait(timeout=30)

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
