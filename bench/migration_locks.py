"""How long migration 0013 (shard-ready keys) holds up a live database.

A PostgreSQL of its own, migrated up to 0012, loaded with bench's listing data set (``--rows``
recordings, peaks for a tenth of them, a callback for a tenth), then migration 0013 run statement
by statement as ``recordings migrate`` runs it, while a probe writes and reads a recording every
20 ms on a connection of its own. Printed: each statement's seconds, and the probe's worst
wait (what an ingest or a GET would have waited on the migration's locks).

    python -m bench.migration_locks --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.dataset import load
from db.migrations import load_migrations, split_statements
from devstack.servers import EmbeddedPostgres

ACCOUNT = "AC" + "b" * 32
VERSION = 13


async def _migrate_before(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations():
            if migration.version < VERSION:
                async with conn.transaction():
                    await conn.execute(migration.sql)
        await conn.execute(
            "INSERT INTO accounts (sid, friendly_name, token_salt, token_hash)"
            " VALUES ($1, 'bench', '\\x00'::bytea, '\\x00'::bytea)",
            ACCOUNT,
        )
    finally:
        await conn.close()


async def _side_rows(dsn: str) -> None:
    """Peaks and callbacks for a tenth of the recordings each, as a year of use leaves them."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO recording_peaks (sid, peaks_key, size, etag)"
            " SELECT sid, wav_key || '.peaks', 1000, wav_etag FROM recordings"
            " WHERE hashtext(sid) % 10 = 0",
            timeout=None,
        )
        await conn.execute(
            "INSERT INTO callbacks (account_sid, recording_sid, url, method, params, status,"
            " give_up_at) SELECT account_sid, sid, 'https://example.com/cb', 'POST', '{}',"
            " 'delivered', now() FROM recordings WHERE hashtext(sid) % 10 = 1",
            timeout=None,
        )
        await conn.execute("VACUUM ANALYZE", timeout=None)
    finally:
        await conn.close()


async def _probe(dsn: str, stop: asyncio.Event, waits: list[tuple[float, float]]) -> None:
    conn = await asyncpg.connect(dsn)
    n = 0
    try:
        while not stop.is_set():
            n += 1
            sid = f"RE{n:032x}"
            started = time.perf_counter()
            await conn.execute(
                "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
                " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
                " VALUES ($1, $2, 'CA' || md5($1), 1, now(), now(), 8000, 1, $1, 44, 'e')",
                sid,
                ACCOUNT,
            )
            await conn.fetchrow(
                "SELECT * FROM recordings WHERE account_sid = $1 AND sid = $2", ACCOUNT, sid
            )
            waits.append((started, time.perf_counter() - started))
            await asyncio.sleep(0.02)
    finally:
        await conn.close()


async def measure(dsn: str, rows: int) -> dict[str, object]:
    await _migrate_before(dsn)
    t = time.perf_counter()
    await load(dsn, ACCOUNT, total=rows, in_account=max(rows // 10, 1), other_accounts=100)
    await _side_rows(dsn)
    loaded = time.perf_counter() - t
    migration = next(m for m in load_migrations() if m.version == VERSION)
    stop = asyncio.Event()
    waits: list[tuple[float, float]] = []
    probe = asyncio.create_task(_probe(dsn, stop, waits))
    await asyncio.sleep(1)
    spans = []
    conn = await asyncpg.connect(dsn)
    try:
        for statement in split_statements(migration.sql):
            started = time.perf_counter()
            await conn.execute(statement, timeout=None)
            spans.append((" ".join(statement.split())[:60], started, time.perf_counter()))
    finally:
        await conn.close()
    await asyncio.sleep(1)
    stop.set()
    await probe
    latencies = [w for _, w in waits]
    before = [w for at, w in waits if at < spans[0][1]]
    # Each statement's seconds, and the probe's worst wait among the operations it overlapped.
    statements = [
        (
            text,
            round(end - start, 3),
            round(max((w for at, w in waits if at < end and at + w > start), default=0) * 1000),
        )
        for text, start, end in spans
    ]
    return {
        "rows": rows,
        "load_seconds": round(loaded, 1),
        "migration_seconds": round(sum(s for _, s, _ in statements), 2),
        "statements [text, seconds, probe's worst ms]": statements,
        "probe_max_ms_before": round(max(before) * 1000, 1),
        "probe_ops": len(latencies),
        "probe_median_ms": round(statistics.median(latencies) * 1000, 1),
        "probe_max_ms": round(max(latencies) * 1000, 1),
        "probe_over_100ms": sum(1 for w in latencies if w > 0.1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.migration_locks", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="recordings in the data set")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-migration-"))
    server = EmbeddedPostgres(root / "data")
    try:
        server.start()
        result = asyncio.run(measure(server.dsn, args.rows))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
