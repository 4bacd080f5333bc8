"""Operator commands as operators meet them: one-line failures with exit codes, account life."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import asyncpg
import httpx
import pytest

from devstack.servers import free_port
from service.operator_errors import (
    DATABASE_UNREACHABLE,
    NOT_FOUND,
    STORAGE_UNREACHABLE,
)
from service.recordings.objects import object_key
from service.settings import Settings
from tests.support.clients import Account, Ingest, uploaded_sid
from tests.support.stack import RECORDINGS, recordings_env, run_recordings


def run_cli(
    settings: Settings, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_recordings(settings, *args, check=False, **(extra or {}))


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unreachable_database_is_one_line_naming_the_setting(settings: Settings) -> None:
    dead = f"postgresql://someone:s3cret@127.0.0.1:{free_port()}/nothing"
    # No direct URL: the dead one is also where sessions (the migration lock) go.
    gone = {"RECORDINGS_DATABASE_URL": dead, "RECORDINGS_DATABASE_DIRECT_URL": ""}
    for args in (("accounts", "list"), ("accounts", "create"), ("migrate",), ("gc",)):
        result = run_cli(settings, *args, extra=gone)
        assert result.returncode == DATABASE_UNREACHABLE, (args, result.stderr)
        line = one_line(result)
        assert "RECORDINGS_DATABASE_URL" in line and "s3cret" not in line
    debug = run_cli(settings, "--debug", "accounts", "list", extra=gone)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    # Behind a pooler, the line names both URLs, without their passwords.
    pooled = run_cli(
        settings,
        "migrate",
        extra={
            "RECORDINGS_DATABASE_URL": dead,
            "RECORDINGS_DATABASE_DIRECT_URL": dead.replace("/nothing", "/direct"),
        },
    )
    line = one_line(pooled)
    assert "RECORDINGS_DATABASE_DIRECT_URL" in line and "s3cret" not in line


def test_unreachable_storage_is_one_line_naming_the_setting(settings: Settings) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        settings,
        "migrate",
        extra={"RECORDINGS_S3_ENDPOINT_URL": endpoint, "RECORDINGS_S3_TIMEOUT": "2"},
    )
    assert result.returncode == STORAGE_UNREACHABLE, result.stderr
    assert "RECORDINGS_S3_ENDPOINT_URL" in one_line(result)


def test_unknown_account_and_bad_arguments(settings: Settings) -> None:
    unknown = "AC" + "0" * 32
    for args in (
        ("accounts", "rotate-token", unknown),
        ("accounts", "delete", "--yes", unknown),
        ("accounts", "set", "--enforce-media-auth", unknown),
    ):
        result = run_cli(settings, *args)
        assert result.returncode == NOT_FOUND, (args, result.stderr)
        assert unknown in one_line(result)
    bad = run_cli(settings, "accounts", "rotate-token", "not-a-sid")
    assert bad.returncode == 2 and "AccountSid" in bad.stderr
    invalid_setting = run_cli(
        settings, "accounts", "list", extra={"RECORDINGS_FFMPEG_MAX_PROCESSES": "0"}
    )
    assert invalid_setting.returncode == 2
    assert "RECORDINGS_FFMPEG_MAX_PROCESSES" in invalid_setting.stderr


def test_help_and_version_answer_without_loading_the_service() -> None:
    started = time.monotonic()
    result = subprocess.run([RECORDINGS, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "accounts" in result.stdout
    assert "dev" in result.stdout  # the dev stack is importable from a checkout
    version = subprocess.run([RECORDINGS, "--version"], capture_output=True, text=True, timeout=60)
    assert re.fullmatch(r"recordings, version \S+\n", version.stdout)
    # What --help imports (not a timing: which modules): no web framework, no S3 client.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from click.testing import CliRunner; from service.cli import main;"
            " CliRunner().invoke(main, ['--help']);"
            " print(sorted(m for m in ('fastapi', 'aiobotocore', 'asyncpg', 'uvicorn', 'ffmpeg')"
            " if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "[]", probe.stderr
    assert time.monotonic() - started < 120  # only a guard against a hang


def test_accounts_list_rotate_and_delete(
    settings: Settings, client: httpx.Client, ingest: Ingest
) -> None:
    created = run_cli(settings, "accounts", "create", "--json", "--name", "rotating")
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    sid, old_token = account["account_sid"], account["auth_token"]
    listed = run_cli(settings, "accounts", "list", "--json")
    mine = [a for a in json.loads(listed.stdout) if a["account_sid"] == sid]
    assert mine and mine[0]["friendly_name"] == "rotating" and mine[0]["recordings"] == 0
    assert old_token not in listed.stdout

    base = f"/2008-08-01/Accounts/{sid}/Recordings"
    assert client.get(base, auth=(sid, old_token)).status_code == 200
    rotated = run_cli(settings, "accounts", "rotate-token", sid, "--json")
    assert rotated.returncode == 0, rotated.stderr
    new_token = json.loads(rotated.stdout)["auth_token"]
    assert new_token != old_token
    assert client.get(base, auth=(sid, old_token)).status_code == 401
    assert client.get(base, auth=(sid, new_token)).status_code == 200

    upload = ingest(Account(sid, new_token))
    rec = upload.json()["sid"]
    assert client.get(f"{base}/{rec}.wav").status_code == 200

    refused = run_cli(settings, "accounts", "delete", sid)  # no --yes, no terminal: aborts
    assert refused.returncode == 1
    assert client.get(f"{base}/{rec}.wav").status_code == 200

    deleted = run_cli(settings, "accounts", "delete", "--yes", sid)
    assert deleted.returncode == 0, deleted.stderr
    assert "1 recordings" in deleted.stdout
    assert client.get(f"{base}/{rec}.wav").status_code == 404
    assert client.get(base, auth=(sid, new_token)).status_code == 401

    async def leftovers() -> tuple[int, bool]:
        from service.services import storage_config
        from storage.client import open_storage

        conn = await asyncpg.connect(settings.database_url)
        try:
            rows = await conn.fetchval(
                "SELECT (SELECT count(*) FROM recordings WHERE account_sid = $1)"
                " + (SELECT count(*) FROM accounts WHERE sid = $1)",
                sid,
            )
        finally:
            await conn.close()
        async with open_storage(storage_config(settings)) as storage:
            exists = await storage.object_exists(object_key(storage, sid, rec, "wav"))
        return int(rows), exists

    assert asyncio.run(leftovers()) == (0, False)


@pytest.mark.parametrize("flag", ["--metrics-port", "env", "token"])
def test_worker_serves_its_transcodes_on_its_metrics_port(
    settings: Settings, ingest: Ingest, account: Account, flag: str
) -> None:
    sid = ingest(account).json()["sid"]
    port = free_port()
    args = ["worker"]
    extra = {"RECORDINGS_WORKER_METRICS_HOST": "127.0.0.1"}
    if flag == "env":
        extra["RECORDINGS_WORKER_METRICS_PORT"] = str(port)
    else:
        args += ["--metrics-port", str(port)]
    headers = {}
    if flag == "token":
        extra["RECORDINGS_METRICS_TOKEN"] = "scrape-secret"
        headers = {"Authorization": "Bearer scrape-secret"}
    env = recordings_env(settings, **extra)
    worker = subprocess.Popen(
        [RECORDINGS, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        async def enqueue() -> None:
            from db.pool import open_pool
            from service.mp3.queue import enqueue_mp3

            async with open_pool(settings.database_url, max_size=1) as pool:
                await enqueue_mp3(pool, account.sid, sid)

        asyncio.run(enqueue())
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=5)
                text = answer.text
            except httpx.HTTPError:
                text = ""
            if re.search(r'recordings_transcodes_total\{outcome="ok"\} [1-9]', text):
                break
            time.sleep(0.2)
        assert re.search(r'recordings_transcodes_total\{outcome="ok"\} [1-9]', text), text[-2000:]
        if flag == "token":
            refused = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert refused.status_code == 401 and "recordings_" not in refused.text
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def test_accounts_set_cors_origins(
    settings: Settings, client: httpx.Client, account: Account, demo_wav: bytes
) -> None:
    sid = uploaded_sid(client, account, demo_wav)
    media = f"{account.base}/{sid}.wav"
    allowed = "https://app.example.com"
    done = run_recordings(
        settings,
        "accounts", "set", "--cors-origin", allowed + "/", "--cors-origin", "http://127.0.0.1:3000",
        account.sid,
    )  # fmt: skip
    assert "https://app.example.com http://127.0.0.1:3000" in done.stdout
    listed = json.loads(run_recordings(settings, "accounts", "list", "--json").stdout)
    mine = next(a for a in listed if a["account_sid"] == account.sid)
    assert mine["cors_origins"] == [allowed, "http://127.0.0.1:3000"]
    answer = client.get(media, headers={"Origin": allowed})
    assert answer.headers["access-control-allow-origin"] == allowed
    assert answer.headers["access-control-allow-credentials"] == "true"
    other = client.get(media, headers={"Origin": "https://evil.example"})
    assert other.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in other.headers
    for bad in ("app.example.com", "ftp://x.example", "https://x.example/path"):
        refused = run_recordings(
            settings, "accounts", "set", "--cors-origin", bad, account.sid, check=False
        )
        assert refused.returncode == 2 and "--cors-origin" in refused.stderr
    run_recordings(settings, "accounts", "set", "--no-cors-origins", account.sid)
    cleared = client.get(media, headers={"Origin": allowed})
    assert cleared.headers["access-control-allow-origin"] == "*"
