"""Retention in a test: recordings of a given age (rows, objects and pending callbacks), the
accounts' policies, and a pass run in the test process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from db.recordings import insert_recording
from db.retention import set_retention_days
from service.recordings.retention import RetentionReport, retention_for
from service.services import open_services, storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.callbacks import queue_callback_row
from tests.support.rows import recording_row

HOOK = "http://127.0.0.1:9/hook"


def make_recordings(settings: Settings, account_sid: str, dates: Sequence[datetime]) -> list[str]:
    """One recording per date (DateCreated), with its WAV stored and a pending callback."""
    rows = [recording_row(account_sid, settings, date_created=d, date_updated=d) for d in dates]

    async def go() -> None:
        async with open_storage(storage_config(settings)) as storage:
            for row in rows:
                await storage.put_bytes(row.wav_key, b"RIFF", "audio/x-wav")
        # No named prepared statements: the DSN may be the tests' PgBouncer (transaction mode).
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=2, statement_cache_size=0
        )
        try:
            for row in rows:
                await insert_recording(pool, row)
                await add_pending_callback(pool, account_sid, row.sid)
        finally:
            await pool.close()

    asyncio.run(go())
    return [row.sid for row in rows]


async def add_pending_callback(pool: Any, account_sid: str, sid: str) -> None:
    # Far in the future: no dispatcher of another test gives up on it meanwhile.
    await queue_callback_row(pool, account_sid, sid, HOOK, window_seconds=86400.0)


def set_policy(settings: Settings, account_sid: str, days: int | None) -> None:
    async def go() -> None:
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=1, statement_cache_size=0
        )
        try:
            assert await set_retention_days(pool, account_sid, days)
        finally:
            await pool.close()

    asyncio.run(go())


async def a_pass(
    settings: Settings, accounts: list[str], now: datetime | None = None
) -> RetentionReport:
    """One pass over ``accounts`` only (the session's database holds every test's accounts)."""
    async with open_services(settings) as services:
        retention = retention_for(
            services.pool, services.storage, services.metrics, services.settings
        )
        return await retention.run_pass(accounts=accounts, now=now)


def run_pass(
    settings: Settings, accounts: list[str], now: datetime | None = None
) -> RetentionReport:
    return asyncio.run(a_pass(settings, accounts, now))
