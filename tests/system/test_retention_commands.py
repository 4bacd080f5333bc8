"""Retention as operators meet it: `recordings accounts set --retention-days`, `recordings
retention [--json]`, and the worker's scheduled passes (one per interval across replicas)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from devstack.servers import free_port
from service.operator_errors import NOT_FOUND
from service.recordings.retention import run_retention
from service.services import open_services
from service.settings import Settings
from tests.support.clients import new_account
from tests.support.processes import running_process
from tests.support.retention import make_recordings
from tests.support.rows import fetch_rows
from tests.support.stack import RECORDINGS, recordings_env, run_recordings


def own_days(settings: Settings, account_sid: str) -> int | None:
    rows = fetch_rows(
        settings.database_url, "SELECT retention_days FROM accounts WHERE sid = $1", account_sid
    )
    value: int | None = rows[0]["retention_days"]
    return value


def live(settings: Settings, sids: list[str]) -> int:
    rows = fetch_rows(
        settings.database_url,
        "SELECT count(*) AS n FROM recordings WHERE sid = ANY($1::text[]) AND deleted_at IS NULL",
        sids,
    )
    return int(rows[0]["n"])


def test_accounts_set_retention(settings: Settings) -> None:
    account = new_account(settings.database_url)
    done = run_recordings(settings, "accounts", "set", "--retention-days", "30", account.sid)
    assert done.stdout.strip() == f"{account.sid}: recordings kept 30 days"
    assert own_days(settings, account.sid) == 30
    listed = json.loads(run_recordings(settings, "accounts", "list", "--json").stdout)
    assert [a["retention_days"] for a in listed if a["account_sid"] == account.sid] == [30]

    cleared = run_recordings(
        settings, "accounts", "set", "--no-retention", account.sid, RECORDINGS_RETENTION_DAYS="90"
    )
    assert "RECORDINGS_RETENTION_DAYS: 90 days" in cleared.stdout
    assert own_days(settings, account.sid) is None
    run_recordings(settings, "accounts", "set", "--retention-days", "5", account.sid)
    zero = run_recordings(settings, "accounts", "set", "--retention-days", "0", account.sid)
    assert "kept forever" in zero.stdout and own_days(settings, account.sid) is None

    both = run_recordings(
        settings,
        "accounts",
        "set",
        "--retention-days",
        "3",
        "--no-retention",
        account.sid,
        check=False,
    )
    assert both.returncode == 2 and "contradict" in both.stderr
    negative = run_recordings(
        settings, "accounts", "set", "--retention-days", "-1", account.sid, check=False
    )
    assert negative.returncode == 2
    missing = run_recordings(
        settings, "accounts", "set", "--retention-days", "3", "AC" + "0" * 32, check=False
    )
    assert missing.returncode == NOT_FOUND and "no account" in missing.stderr
    assert own_days(settings, account.sid) is None


def test_retention_command_runs_a_pass(settings: Settings) -> None:
    account, other = new_account(settings.database_url), new_account(settings.database_url)
    old = datetime.now(UTC) - timedelta(days=40)
    sids = make_recordings(settings, account.sid, [old, old, datetime.now(UTC)])
    others = make_recordings(settings, other.sid, [old])
    run_recordings(settings, "accounts", "set", "--retention-days", "30", account.sid)
    run_recordings(settings, "accounts", "set", "--retention-days", "30", other.sid)

    result = run_recordings(settings, "retention", "--json", "--account", account.sid)
    report = json.loads(result.stdout)
    assert report["deleted"] == 2 and report["complete"] is True
    assert [(a["account_sid"], a["deleted"], a["policy"]) for a in report["accounts"]] == [
        (account.sid, 2, "account")
    ]
    assert live(settings, sids) == 1 and live(settings, others) == 1

    text = run_recordings(settings, "retention", "--account", other.sid).stdout
    assert f"{other.sid}          1 deleted" in text and "deleted 1 recordings" in text
    assert live(settings, others) == 0
    bad = run_recordings(settings, "retention", "--account", "nope", check=False)
    assert bad.returncode == 2


def test_the_worker_runs_passes_on_its_schedule(settings: Settings, tmp_path: Path) -> None:
    account = new_account(settings.database_url)
    run_recordings(settings, "accounts", "set", "--retention-days", "1", account.sid)
    old = datetime.now(UTC) - timedelta(days=2)
    first = make_recordings(settings, account.sid, [old, old])
    port = free_port()
    env = recordings_env(
        settings,
        RECORDINGS_RETENTION_INTERVAL_SECONDS="1",
        RECORDINGS_WORKER_METRICS_PORT=str(port),
        RECORDINGS_WORKER_METRICS_HOST="127.0.0.1",
    )
    log = tmp_path / "worker.log"
    with running_process([RECORDINGS, "worker"], log=log, env=env) as worker:
        deadline = time.monotonic() + 30
        while live(settings, first):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # Made after that pass: the next one, an interval later, deletes them.
        later = make_recordings(settings, account.sid, [old])
        while live(settings, later):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        counted = [
            float(line.split()[-1])
            for line in scraped.splitlines()
            if line.startswith("recordings_retention_deleted_total ")
        ]
        assert counted and counted[0] >= 3, scraped
        assert "recordings_retention_pass_duration_seconds_count" in scraped
    assert worker.returncode == 0, log.read_text()
    assert "retention pass: deleted" in log.read_text()


def test_replicas_share_one_pass_per_interval(settings: Settings) -> None:
    fast = settings.model_copy(update={"retention_interval_seconds": 1.0})

    async def replicas() -> list[int]:
        stop = asyncio.Event()
        async with open_services(fast) as one, open_services(fast) as two:
            tasks = [
                asyncio.create_task(
                    run_retention(s.pool, s.storage, s.metrics, fast, stop, locks=s.locks)
                )
                for s in (one, two)
            ]
            await asyncio.sleep(3.5)
            stop.set()
            await asyncio.gather(*tasks)
            return [_passes(s.metrics.registry) for s in (one, two)]

    passes = asyncio.run(replicas())
    # Two replicas polling every second for 3.5 s: one pass per second between them, not two.
    assert 2 <= sum(passes) <= 5, passes


def _passes(registry: CollectorRegistry) -> int:
    value = registry.get_sample_value("recordings_retention_pass_duration_seconds_count")
    return int(value or 0)
