"""Settled status callbacks are history: `recordings gc` forgets those past
RECORDINGS_CALLBACK_HISTORY_DAYS, never a pending one, and says how many went."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from service.recordings.gc import forget_callbacks
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import new_account
from tests.support.retention import add_pending_callback
from tests.support.rows import fetch_rows
from tests.support.stack import run_recordings

# (status, days since it last changed): what each of an account's callbacks is made to be.
AGES = [
    ("delivered", 31),
    ("failed", 45),
    ("delivered", 29),
    ("pending", 60),  # still being retried, however old: never forgotten
    ("failed", 0),
]


def make_history(settings: Settings) -> tuple[str, list[int]]:
    account = new_account(settings.database_url, "callback history")

    async def go() -> list[int]:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            for _ in AGES:
                await add_pending_callback(pool, account.sid, new_sid("RE"))
            rows = await pool.fetch(
                "SELECT id FROM callbacks WHERE account_sid = $1 ORDER BY id", account.sid
            )
            ids = [row["id"] for row in rows]
            for callback_id, (status, days) in zip(ids, AGES, strict=True):
                await pool.execute(
                    "UPDATE callbacks SET status = $2,"
                    " date_updated = now() - make_interval(days => $3) WHERE id = $1",
                    callback_id,
                    status,
                    days,
                )
            return ids
        finally:
            await pool.close()

    return account.sid, asyncio.run(go())


def remaining(settings: Settings, account_sid: str) -> list[int]:
    rows = fetch_rows(
        settings.database_url,
        "SELECT id FROM callbacks WHERE account_sid = $1 ORDER BY id",
        account_sid,
    )
    return [row["id"] for row in rows]


def test_settled_callbacks_past_their_history_are_forgotten_in_batches(
    settings: Settings,
) -> None:
    account_sid, ids = make_history(settings)

    async def go() -> int:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await forget_callbacks(pool, history=timedelta(days=30), batch=1)
        finally:
            await pool.close()

    assert asyncio.run(go()) >= 2  # other tests' callbacks are all younger
    assert remaining(settings, account_sid) == [ids[2], ids[3], ids[4]]


def test_recordings_gc_forgets_them_by_the_setting(settings: Settings) -> None:
    account_sid, ids = make_history(settings)
    result = run_recordings(
        settings, "gc", "--grace", "3600", RECORDINGS_CALLBACK_HISTORY_DAYS="28"
    )
    assert "settled status callbacks past 28 days" in result.stdout
    assert remaining(settings, account_sid) == [ids[3], ids[4]]
