"""Recordings made and inspected directly, without the API: rows in memory or in PostgreSQL,
and their objects' keys and presence in storage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from db.recordings import Recording, insert_recording, set_mp3_error
from service.recordings.objects import Kind, object_key
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import Storage, StorageConfig, open_storage

MOMENT = datetime(2012, 5, 6, 7, 8, 9, tzinfo=UTC)


def key_storage(settings: Settings | None = None) -> Storage:
    """A Storage with no client: only its key arithmetic (the settings' prefix) is used."""
    config = storage_config(settings) if settings else StorageConfig(bucket="recordings")
    return Storage(None, config)


def stored_key(settings: Settings | None, account_sid: str, sid: str, kind: Kind = "wav") -> str:
    """The object key the service uses for a recording's WAV or MP3 under these settings."""
    return object_key(key_storage(settings), account_sid, sid, kind)


def object_exists(settings: Settings, key: str) -> bool:
    """Whether the settings' storage holds an object under ``key``."""

    async def go() -> bool:
        async with open_storage(storage_config(settings)) as storage:
            return await storage.object_exists(key)

    return asyncio.run(go())


def recording_row(
    account_sid: str | None = None, settings: Settings | None = None, **changes: Any
) -> Recording:
    """A plausible row (its object need not exist); ``changes`` replace any field."""
    sid = changes.pop("sid", None) or new_sid("RE")
    account_sid = account_sid or new_sid("AC")
    values: dict[str, Any] = {
        "sid": sid,
        "account_sid": account_sid,
        "call_sid": new_sid("CA"),
        "duration": 3,
        "date_created": MOMENT,
        "date_updated": MOMENT,
        "sample_rate": 8000,
        "channels": 1,
        "wav_key": stored_key(settings, account_sid, sid),
        "wav_size": 44,
        "wav_etag": '"' + "0" * 40 + '"',
        "mp3_key": None,
        "mp3_size": None,
        "mp3_etag": None,
        "mp3_error": None,
    }
    values.update(changes)
    return Recording(**values)


def insert_recordings(dsn: str, rows: Sequence[Recording]) -> list[Recording]:
    """Insert ``rows`` (with their ``mp3_error``, if any) as the database returns them."""

    async def go() -> list[Recording]:
        # No named prepared statements: the DSN may be the tests' PgBouncer (transaction mode).
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2, statement_cache_size=0)
        try:
            made = []
            for row in rows:
                made.append(await insert_recording(pool, row))
                if row.mp3_error is not None:
                    await set_mp3_error(pool, row.account_sid, row.sid, row.mp3_error)
            return made
        finally:
            await pool.close()

    return asyncio.run(go())


def recording_sids(dsn: str, account_sid: str) -> list[str]:
    """The SIDs of every row of the account, deleted ones included."""

    async def go() -> list[str]:
        conn = await asyncpg.connect(dsn, timeout=10, statement_cache_size=0)
        try:
            rows = await conn.fetch(
                "SELECT sid FROM recordings WHERE account_sid = $1", account_sid
            )
            return [row["sid"] for row in rows]
        finally:
            await conn.close()

    return asyncio.run(go())


def fetch_rows(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    """Run one statement on the test database; fetch()'s rows."""

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def insert_raw_recording(settings: Settings, account_sid: str, body: bytes, duration: int) -> str:
    """A recording whose stored WAV is ``body`` as it is (which ingest would have refused)."""
    row = recording_row(account_sid, settings, duration=duration, wav_size=len(body))

    async def store() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.put_bytes(row.wav_key, body, "audio/x-wav")

    asyncio.run(store())
    insert_recordings(settings.database_url, [row])
    return row.sid


def wait_for_stored_mp3(settings: Settings, sid: str, *, timeout: float = 30.0) -> str:
    """The recording's MP3 key once it is stored: a cold ``.mp3`` answer is served from the
    made file while the upload runs, so it can come back before the row names the object."""
    deadline = time.monotonic() + timeout
    while True:
        rows = fetch_rows(
            settings.database_url, "SELECT mp3_key FROM recordings WHERE sid = $1", sid
        )
        if rows and rows[0]["mp3_key"]:
            return str(rows[0]["mp3_key"])
        if time.monotonic() > deadline:
            raise AssertionError(f"the MP3 of {sid} was not stored within {timeout:.0f} s")
        time.sleep(0.02)
