"""Shard-ready keys (migration 0013): every unique key of a per-account table leads with
account_sid, so `recordings` can be partitioned (or distributed by Citus) by account."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from db.migrations import apply_migrations, load_migrations, split_statements
from devstack.servers import EmbeddedPostgres
from tests.support.partitioning import is_partitioned, partition_recordings
from tests.support.stack import new_database

# Tables of one account's rows; `accounts` is keyed by the account's own SID.
PER_ACCOUNT = {
    "recordings",
    "recording_peaks",
    "callbacks",
    "ingest_keys",
    "recording_counts",
    "recording_day_counts",
}


@pytest.fixture
def fresh_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    with new_database(postgres, "shard") as dsn:
        yield dsn


async def _migrate_before_0013(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations():
            if migration.version < 13:
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
    finally:
        await conn.close()


async def _unique_keys(dsn: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT t.relname::text AS tab, ic.relname::text AS idx,"
            " (SELECT a.attname::text FROM pg_attribute a"
            "  WHERE a.attrelid = t.oid AND a.attnum = i.indkey[0]) AS first"
            " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
            " JOIN pg_class ic ON ic.oid = i.indexrelid"
            " WHERE i.indisunique AND t.relname = ANY($1::text[])",
            sorted(PER_ACCOUNT),
        )
    finally:
        await conn.close()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row["tab"], []).append(f"{row['idx']}:{row['first']}")
    return found


def test_0013_makes_every_unique_key_lead_with_the_account(fresh_database: str) -> None:
    asyncio.run(_migrate_before_0013(fresh_database))
    before = asyncio.run(_unique_keys(fresh_database))
    assert "recordings_pkey:sid" in before["recordings"]
    with pytest.raises(asyncpg.FeatureNotSupportedError):
        # What a partitioned (or distributed) table refuses: a key without the account.
        asyncio.run(partition_recordings(fresh_database))
    asyncio.run(apply_migrations(fresh_database))
    after = asyncio.run(_unique_keys(fresh_database))
    assert set(after) == PER_ACCOUNT
    for table, keys in after.items():
        assert all(key.endswith(":account_sid") for key in keys), (table, keys)
    asyncio.run(partition_recordings(fresh_database))
    assert asyncio.run(is_partitioned(fresh_database))


def test_0013_runs_again_after_it_ran(fresh_database: str) -> None:
    # Every statement may run again: a migration cut short is run again from its start.
    asyncio.run(_migrate_before_0013(fresh_database))
    asyncio.run(apply_migrations(fresh_database))
    migration = next(m for m in load_migrations() if m.version == 13)

    async def again() -> None:
        conn = await asyncpg.connect(fresh_database)
        try:
            for statement in split_statements(migration.sql):
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(again())
    keys = asyncio.run(_unique_keys(fresh_database))
    assert "recordings_pkey:account_sid" in keys["recordings"]


PEAKS_ROWS = 12_001  # more than two of the fill's batches of 5,000


async def _recordings_with_peaks(dsn: str, account_sid: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO accounts (sid, token_salt, token_hash) VALUES ($1, '\\x00', '\\x00')",
            account_sid,
        )
        await conn.execute(
            "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
            " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
            " SELECT 'RE' || lpad(to_hex(g), 32, '0'), $1, 'CA' || lpad(to_hex(g), 32, '0'),"
            " 1, now(), now(), 8000, 1, 'k' || g, 1, 'e' FROM generate_series(1, $2) g",
            account_sid,
            PEAKS_ROWS,
        )
        await conn.execute(
            "INSERT INTO recording_peaks (sid, error) SELECT sid, 'x' FROM recordings"
        )
    finally:
        await conn.close()


def test_0013_fills_the_peaks_account_in_batches_each_committed(fresh_database: str) -> None:
    # A delete of a recording deletes its peaks row: while the fill runs, it must not wait for
    # the whole table's rows. Here a transaction holds the last row: the batches before it are
    # committed (and seen by others) while the fill waits for that one row.
    account_sid = "AC" + "5" * 32
    asyncio.run(_migrate_before_0013(fresh_database))
    asyncio.run(_recordings_with_peaks(fresh_database, account_sid))
    statements = split_statements(next(m for m in load_migrations() if m.version == 13).sql)
    fill = next(i for i, s in enumerate(statements) if "SET account_sid = r.account_sid" in s)

    async def go() -> tuple[int, bool, int]:
        migrator, holder, watcher = [await asyncpg.connect(fresh_database) for _ in range(3)]
        try:
            for statement in statements[:fill]:
                await migrator.execute(statement)
            held = holder.transaction()
            await held.start()
            await holder.execute(
                "SELECT 1 FROM recording_peaks WHERE sid = (SELECT max(sid) FROM recording_peaks)"
                " FOR UPDATE"
            )
            filling = asyncio.create_task(migrator.execute(statements[fill]))
            seen = 0
            for _ in range(600):
                seen = await watcher.fetchval(
                    "SELECT count(*) FROM recording_peaks WHERE account_sid IS NOT NULL"
                )
                if seen >= 10_000 or filling.done():
                    break
                await asyncio.sleep(0.05)
            waited = not filling.done()
            await held.rollback()
            await filling
            for statement in statements[fill + 1 :]:
                await migrator.execute(statement)
            filled = await watcher.fetchval(
                "SELECT count(*) FROM recording_peaks WHERE account_sid = $1", account_sid
            )
            return seen, waited, filled
        finally:
            for conn in (migrator, holder, watcher):
                await conn.close()

    seen, waited, filled = asyncio.run(go())
    assert waited and seen >= 10_000  # two batches committed while the third waited
    assert filled == PEAKS_ROWS
