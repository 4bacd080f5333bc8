"""Status callbacks under faults: the receiver down, failing, silent; the worker killed between
attempts; PostgreSQL restarted. Each callback is delivered, and after its success never again.

Backoff and timeouts are made small through the settings (tests.support.callbacks.FAST); no
test sleeps through a real schedule."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.operator_errors import NOT_FOUND
from service.settings import Settings
from tests.support.callbacks import FAST, dispatching, one_callback
from tests.support.clients import Account, new_account, upload
from tests.support.processes import running_process
from tests.support.receivers import Receiver, wait_until
from tests.support.stack import (
    RECORDINGS,
    ServerThread,
    make_settings,
    recordings_env,
    run_recordings,
    running_postgres,
    serving,
)

pytestmark = pytest.mark.usefixtures("cb_clean")


@pytest.fixture(scope="module")
def http(cb_settings: Settings) -> Iterator[httpx.Client]:
    with (
        ServerThread(cb_settings) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):
        yield client


def ingest_with(http: httpx.Client, account: Account, wav: bytes, url: str) -> str:
    response = upload(http, account, wav, query={"RecordingStatusCallback": url})
    return str(response.json()["sid"])


def row(settings: Settings, sid: str) -> dict[str, Any]:
    return one_callback(settings.database_url, sid)


def status_is(settings: Settings, sid: str, status: str) -> bool:
    return bool(row(settings, sid)["status"] == status)


def settle(receiver: Receiver, seconds: float = 1.5) -> None:
    """Give a wrongly repeated delivery the time to show up (several retry delays of FAST)."""
    time.sleep(seconds)


def test_receiver_down_then_up(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    receiver = Receiver()  # its port is chosen, nothing listens there yet
    sid = ingest_with(http, acct, demo_wav, receiver.url)
    with dispatching(cb_settings):
        wait_until(lambda: row(cb_settings, sid)["attempts"] >= 2, what="retries")
        refused = row(cb_settings, sid)
        assert refused["status"] == "pending" and "ConnectError" in refused["last_error"]
        with receiver:
            wait_until(lambda: status_is(cb_settings, sid, "delivered"), what="delivery")
            settle(receiver)
    assert len(receiver.received) == 1 and receiver.received[0].signed_by(acct.token)


def test_5xx_and_429_are_retried_other_answers_end_it(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    with Receiver(script=[500, 429, 503], default=204) as flaky, Receiver(default=404) as gone:
        retried = ingest_with(http, acct, demo_wav, flaky.url)
        ended = ingest_with(http, acct, demo_wav, gone.url)
        with dispatching(cb_settings):
            wait_until(lambda: status_is(cb_settings, retried, "delivered"), what="delivery")
            wait_until(lambda: status_is(cb_settings, ended, "failed"), what="the 404")
            settle(flaky)
        assert [r.answered for r in flaky.received] == [500, 429, 503, 204]
        # Every attempt is the same callback, signed, with the same idempotency token.
        assert all(r.signed_by(acct.token) for r in flaky.received)
        assert len({r.headers["I-Twilio-Idempotency-Token"] for r in flaky.received}) == 1
        assert len({r.body for r in flaky.received}) == 1
        assert row(cb_settings, retried)["attempts"] == 4
        assert [r.answered for r in gone.received] == [404]
        failed = row(cb_settings, ended)
        assert failed["attempts"] == 1 and failed["last_status"] == 404

        # The operator sees it and, the app fixed, delivers it again.
        listed = json.loads(
            run_recordings(cb_settings, "callbacks", "list", "--failed", "--json").stdout
        )
        mine = [c for c in listed if c["recording_sid"] == ended]
        assert mine and mine[0]["status"] == "failed" and mine[0]["last_status"] == 404
        assert retried not in {c["recording_sid"] for c in listed}
        text = run_recordings(cb_settings, "callbacks", "list").stdout
        assert f"{failed['id']:>8}  failed" in text
        gone.default = 204
        again = run_recordings(cb_settings, "callbacks", "retry", str(failed["id"]))
        assert f"{failed['id']}: queued" in again.stdout
        with dispatching(cb_settings):
            wait_until(lambda: status_is(cb_settings, ended, "delivered"), what="redelivery")
        assert [r.answered for r in gone.received] == [404, 204]
    # A delivered callback is not sent again, and an unknown one is an error.
    done = run_recordings(cb_settings, "callbacks", "retry", str(failed["id"]), check=False)
    assert done.returncode == 1 and "already delivered" in done.stderr
    unknown = run_recordings(cb_settings, "callbacks", "retry", "999999", check=False)
    assert unknown.returncode == NOT_FOUND and "no callback 999999" in unknown.stderr


def test_a_receiver_that_never_answers_times_out_then_gets_a_retry(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    quick = cb_settings.model_copy(update={"callback_timeout": 1.0})
    with Receiver(script=["hang"], default=204) as silent:
        sid = ingest_with(http, acct, demo_wav, silent.url)
        started = time.monotonic()
        with dispatching(quick):
            wait_until(lambda: status_is(quick, sid, "delivered"), what="delivery")
            settle(silent)
        assert time.monotonic() - started < 15
        assert [r.answered for r in silent.received] == [None, 204]
    done = row(quick, sid)
    assert done["attempts"] == 2


def test_retries_end_when_the_window_has_passed(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    # The window opens at the ingest, before the dispatcher starts (a pool, a storage client):
    # three seconds leave room for three attempts on a loaded machine, where one left two.
    short = cb_settings.model_copy(update={"callback_retry_window_seconds": 3.0})
    with ServerThread(short) as server, httpx.Client(base_url=server.base_url) as client:
        with Receiver(default=503) as failing:
            sid = ingest_with(client, acct, demo_wav, failing.url)
            with dispatching(short):
                wait_until(lambda: status_is(short, sid, "failed"), what="giving up")
    ended = row(short, sid)
    assert ended["last_error"].startswith(f"gave up after {ended['attempts']} attempts")
    assert ended["attempts"] >= 3
    # The last attempt was made at the window's end, not before it.
    assert failing.received[-1].answered == 503


def test_two_workers_deliver_each_callback_once(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    with Receiver(default=204) as receiver:
        sids = [ingest_with(http, acct, demo_wav, receiver.url) for _ in range(30)]
        with dispatching(cb_settings), dispatching(cb_settings):
            wait_until(
                lambda: all(status_is(cb_settings, sid, "delivered") for sid in sids),
                what="all deliveries",
            )
            settle(receiver)
    seen = [r.params["RecordingSid"] for r in receiver.received]
    assert sorted(seen) == sorted(sids)


def worker_argv(metrics_port: int | None = None) -> list[str]:
    argv = [RECORDINGS, "worker"]
    return [*argv, "--metrics-port", str(metrics_port)] if metrics_port else argv


def test_the_worker_killed_between_attempts(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes, tmp_path: Any
) -> None:
    # Long enough between attempts to kill the worker in the gap.
    slow = cb_settings.model_copy(update={"callback_retry_initial_seconds": 2.0})
    env = recordings_env(slow)
    with Receiver(script=[500], default=204) as receiver:
        sid = ingest_with(http, acct, demo_wav, receiver.url)
        with running_process(worker_argv(), log=tmp_path / "worker1.log", env=env) as first:
            wait_until(lambda: row(slow, sid)["last_status"] == 500, what="the first attempt")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        assert row(slow, sid)["status"] == "pending"
        port = free_port()
        with running_process(worker_argv(port), log=tmp_path / "worker2.log", env=env):
            wait_until(lambda: status_is(slow, sid, "delivered"), what="delivery")
            settle(receiver, 2.5)
            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        log = (tmp_path / "worker2.log").read_text()
    assert [r.answered for r in receiver.received] == [500, 204]
    assert receiver.received[1].signed_by(acct.token)
    assert 'recordings_callbacks_total{outcome="delivered"} 1.0' in metrics
    assert "recordings_callback_attempt_duration_seconds_count 1.0" in metrics
    # The worker's log line of the attempt names the recording and the ingest's request id.
    lines = [json.loads(line) for line in log.splitlines() if sid in line]
    assert any(line.get("outcome") == "delivered" and line.get("request_id") for line in lines)


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


def test_postgres_restarted_between_attempts(
    own_postgres: EmbeddedPostgres, s3: EmbeddedS3, demo_wav: bytes
) -> None:
    settings = make_settings(own_postgres, s3, **{**FAST, "callback_retry_initial_seconds": 1.0})
    account = new_account(own_postgres.dsn)
    with Receiver(script=[500], default=204) as receiver, serving(settings) as http:
        sid = ingest_with(http, account, demo_wav, receiver.url)
        with dispatching(settings):
            wait_until(lambda: row(settings, sid)["last_status"] == 500, what="first attempt")
            own_postgres.kill()
            time.sleep(2.0)  # the retry falls due while PostgreSQL is away
            assert [r.answered for r in receiver.received] == [500]
            own_postgres.start()
            wait_until(lambda: status_is(settings, sid, "delivered"), timeout=60)
            settle(receiver)
    assert [r.answered for r in receiver.received] == [500, 204]


def test_postgres_down_when_a_delivery_is_to_be_recorded(
    own_postgres: EmbeddedPostgres, s3: EmbeddedS3, demo_wav: bytes
) -> None:
    """The receiver has the callback, PostgreSQL is gone before the worker can say so: the
    worker waits for it and records the delivery, instead of delivering it again."""
    settings = make_settings(own_postgres, s3, **{**FAST, "callback_timeout": 20.0})
    account = new_account(own_postgres.dsn)
    with Receiver(script=["hold"], default=204) as receiver, serving(settings) as http:
        sid = ingest_with(http, account, demo_wav, receiver.url)
        with dispatching(settings):
            assert receiver.arrived.wait(30), "no delivery attempt"
            own_postgres.kill()
            receiver.release()  # the answer, 204, comes while PostgreSQL is down
            time.sleep(2.0)
            own_postgres.start()
            wait_until(lambda: status_is(settings, sid, "delivered"), timeout=60)
            settle(receiver)
    assert [r.answered for r in receiver.received] == [204]
    assert row(settings, sid)["attempts"] == 1
