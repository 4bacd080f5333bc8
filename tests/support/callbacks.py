"""Running the callback deliveries in a test: the worker's dispatcher on a thread of the test
process (through the loopback-only transport), and the outbox's rows as the tests read them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from db.callbacks import Callback
from service.callbacks.dispatcher import run_callbacks
from service.callbacks.guard import Resolver, system_resolver
from service.callbacks.outbox import status_params
from service.services import open_services
from service.settings import Settings
from tests.support.loopback import LoopbackOnlyTransport
from tests.support.rows import MOMENT, fetch_rows, recording_row

# Small delays so retries happen within a test's seconds; PostgreSQL timeouts short enough
# that an outage is noticed quickly.
FAST: dict[str, Any] = {
    "webhook_allow_private": True,
    "callback_retry_initial_seconds": 0.2,
    "callback_retry_max_seconds": 0.5,
    "callback_timeout": 5.0,
    "callback_connect_timeout": 1.0,
    "database_timeout": 2.0,
}


@contextmanager
def dispatching(
    settings: Settings,
    *,
    transport: LoopbackOnlyTransport | None = None,
    resolver: Resolver = system_resolver,
) -> Iterator[LoopbackOnlyTransport]:
    """The worker's callback loop on a thread of its own, stopped (and joined) after the block."""
    transport = transport or LoopbackOnlyTransport()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        async with open_services(settings) as services:
            await run_callbacks(
                services.pool,
                services.settings,
                services.metrics,
                stop,
                transport=transport,
                resolver=resolver,
            )

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield transport
    finally:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
    assert not thread.is_alive(), "the dispatcher did not stop"
    assert not failure, failure


def callback_rows(dsn: str, recording_sid: str | None = None) -> list[dict[str, Any]]:
    """The outbox's rows (of one recording), oldest first."""
    if recording_sid is None:
        rows = fetch_rows(dsn, "SELECT * FROM callbacks ORDER BY id")
    else:
        rows = fetch_rows(
            dsn, "SELECT * FROM callbacks WHERE recording_sid = $1 ORDER BY id", recording_sid
        )
    return [dict(row) for row in rows]


def one_callback(dsn: str, recording_sid: str) -> dict[str, Any]:
    rows = callback_rows(dsn, recording_sid)
    assert len(rows) == 1, rows
    return rows[0]


def end_pending_callbacks(dsn: str) -> None:
    """Let no test's leftover callback be delivered in the next test."""
    fetch_rows(dsn, "UPDATE callbacks SET status = 'failed' WHERE status = 'pending'")


def callback_to(url: str, method: str = "POST") -> Callback:
    """A pending callback of a plausible recording (no row anywhere), as a worker claims it."""
    recording = recording_row()
    return Callback(
        id=42,
        account_sid=recording.account_sid,
        recording_sid=recording.sid,
        url=url,
        method=method,
        params=status_params(recording, "https://rec.example.com"),
        request_id="req-1",
        status="pending",
        attempts=1,
        next_attempt_at=MOMENT,
        give_up_at=MOMENT + timedelta(days=1),
        last_status=None,
        last_error=None,
        date_created=datetime.now(UTC),
        delivered_at=None,
    )


async def queue_callback_row(
    conn: Any, account_sid: str, recording_sid: str, url: str, *, window_seconds: float
) -> None:
    """A pending callback to ``url`` for a recording already stored (the service queues one
    only with its recording's INSERT, db.recordings.insert_recording)."""
    await conn.execute(
        "INSERT INTO callbacks (account_sid, recording_sid, url, method, params, give_up_at)"
        " VALUES ($1, $2, $3, 'POST', $4::jsonb, now() + make_interval(secs => $5))",
        account_sid,
        recording_sid,
        url,
        json.dumps({"RecordingSid": recording_sid}),
        window_seconds,
    )
