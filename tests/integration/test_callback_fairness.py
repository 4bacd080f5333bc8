"""Delivery is fair across accounts and receivers: receivers that never answer take at most
their host's and their account's share of the worker's delivery slots, and a host that timed
out is left alone (its callbacks deferred, not attempted) until its cooldown ends, so another
account's callback goes out at once instead of after the silent ones' timeouts.

No wall-clock assertions: "at once" is checked as an order of events (the other account's
callback is delivered before any attempt at a silent receiver has ended)."""

from __future__ import annotations

import httpx
import pytest

from devstack.servers import EmbeddedPostgres
from service.settings import Settings
from tests.support.callbacks import callback_rows, dispatching, one_callback
from tests.support.clients import Account, new_account, upload
from tests.support.receivers import Receiver, wait_until

pytestmark = pytest.mark.usefixtures("cb_clean")


@pytest.fixture
def http(cb_http: httpx.Client) -> httpx.Client:
    return cb_http


def _queue(http: httpx.Client, account: Account, wav: bytes, url: str) -> str:
    answer = upload(http, account, wav, query={"RecordingStatusCallback": url})
    return str(answer.json()["sid"])


def _attempts_ended(dsn: str, sids: list[str]) -> int:
    rows = [r for r in callback_rows(dsn) if r["recording_sid"] in sids]
    return sum(1 for r in rows if r["last_error"] is not None or r["status"] != "pending")


@pytest.mark.parametrize("receivers", [1, 8], ids=["one-silent-host", "eight-silent-hosts"])
def test_silent_receivers_do_not_delay_another_accounts_callback(
    http: httpx.Client,
    cb_settings: Settings,
    cb_postgres: EmbeddedPostgres,
    demo_wav: bytes,
    receivers: int,
) -> None:
    noisy, quiet = new_account(cb_postgres.dsn), new_account(cb_postgres.dsn)
    settings = cb_settings.model_copy(update={"callback_concurrency": 8, "callback_timeout": 8.0})
    silent = [Receiver(default="hang").start() for _ in range(receivers)]
    try:
        with Receiver() as good:
            hanging = [_queue(http, noisy, demo_wav, silent[i % receivers].url) for i in range(8)]
            with dispatching(settings):
                # The silent ones are claimed first (they were due first) ...
                wait_until(lambda: sum(len(s.received) for s in silent) >= 1, what="a hang")
                other = _queue(http, quiet, demo_wav, good.url)
                wait_until(
                    lambda: one_callback(settings.database_url, other)["status"] == "delivered",
                    what="the other account's delivery",
                )
                # ... yet the other account's went out before any of their attempts ended.
                assert _attempts_ended(settings.database_url, hanging) == 0
                # The silent ones left a quarter of the worker's slots to the others.
                per_host = [len(s.received) for s in silent]
                assert 0 < sum(per_host) <= settings.callback_concurrency * 3 // 4, per_host
                for receiver in silent:
                    receiver.release()
    finally:
        for receiver in silent:
            receiver.stop()
