"""The listing benchmarks' rows, made in SQL (never through the API).

``total`` recordings in all, ``in_account`` of them in the listing account, the rest spread
over ``other_accounts`` accounts; interleaved in time order as ingest would write them (every
``total // in_account``-th row is the listing account's), over one year, three recordings per
call. The table is truncated, its indexes (primary key included) dropped, the rows inserted by
one INSERT ... SELECT generate_series per core (foreign key trigger skipped: the accounts are
inserted first; the CHECK constraints still run), the indexes rebuilt from their own
definitions, then VACUUM ANALYZE (visibility map and statistics, as autovacuum would leave
them). The schema afterwards is exactly the migrated one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

START = datetime(2025, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365)


@dataclass(frozen=True)
class Dataset:
    total: int
    in_account: int
    other_accounts: int
    load_seconds: dict[str, float]
    table_bytes: int
    index_bytes: dict[str, int]

    @property
    def stride(self) -> int:
        return max(self.total // self.in_account, 1)


def _other_sid_sql(expr: str) -> str:
    return f"'AC' || md5('bench-account-' || ({expr}))"


async def _insert_range(
    dsn: str,
    account_sid: str,
    first: int,
    last: int,
    stride: int,
    in_account: int,
    others: int,
    step: float,
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        # The account rows exist already: skip the per-row foreign key trigger (superuser only).
        await conn.execute("SET session_replication_role = replica")
        await conn.execute(
            "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
            " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
            " SELECT 'RE' || md5('rec-' || g), acct, 'CA' || md5('call-' || (g / ($4 * 3))),"
            " 1 + g % 600, ts, ts, 8000, 1, acct || '/RE' || md5('rec-' || g) || '.wav',"
            " 44 + 16000 * (1 + g % 600), '\"' || left(md5('etag-' || g), 40) || '\"'"
            " FROM (SELECT g,"
            "   CASE WHEN g % $4 = 0 AND g / $4 <= $5 THEN $1::text"
            f"   ELSE {_other_sid_sql('g % $6')} END AS acct,"
            "   $7::timestamptz + make_interval(secs => g * $8::float8) AS ts"
            "   FROM generate_series($2::bigint, $3::bigint) g) s",
            account_sid,
            first,
            last,
            stride,
            in_account,
            others,
            START,
            step,
            timeout=None,
        )
    finally:
        await conn.close()


async def load(
    dsn: str,
    account_sid: str,
    *,
    total: int,
    in_account: int,
    other_accounts: int,
    parallel: int = 2,
) -> Dataset:
    """Replace every recording row with the generated ones; returns what was made and timings."""
    if not 0 < in_account <= total:
        raise ValueError("need 0 < in_account <= total")
    stride = max(total // in_account, 1)
    others = max(other_accounts, 1) if in_account < total else 0
    step = SPAN.total_seconds() / total
    timings: dict[str, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        indexes = await conn.fetch(
            "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def, i.indisprimary AS pk"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'recordings'::regclass ORDER BY i.indisprimary DESC"
        )
        # Foreign keys onto recordings (recording_peaks, since 0009) depend on its primary key:
        # dropped with it, made again once it is back.
        references = await conn.fetch(
            "SELECT conname AS name, conrelid::regclass::text AS tab,"
            " pg_get_constraintdef(oid) AS def FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid = 'recordings'::regclass"
        )
        started = time.perf_counter()
        for ref in references:
            await conn.execute(f'ALTER TABLE {ref["tab"]} DROP CONSTRAINT "{ref["name"]}"')
        # With the tables that reference recordings (peaks, since migration 0009), empty on a
        # fresh stack: a plain TRUNCATE is refused.
        await conn.execute("TRUNCATE recordings CASCADE")
        for index in indexes:
            if index["pk"]:
                await conn.execute(f'ALTER TABLE recordings DROP CONSTRAINT "{index["name"]}"')
            else:
                await conn.execute(f'DROP INDEX "{index["name"]}"')
        await conn.execute(
            "INSERT INTO accounts (sid, friendly_name, token_salt, token_hash)"
            f" SELECT {_other_sid_sql('a')}, 'bench other', '\\x00'::bytea, '\\x00'::bytea"
            " FROM generate_series(0, $1 - 1) a ON CONFLICT DO NOTHING",
            others,
        )
        t = time.perf_counter()
        # One INSERT ... SELECT generate_series per core, on ranges of g.
        bounds = [total * i // parallel for i in range(parallel + 1)]
        await asyncio.gather(
            *(
                _insert_range(
                    dsn, account_sid, first + 1, last, stride, in_account, max(others, 1), step
                )
                for first, last in itertools.pairwise(bounds)
                if last > first
            )
        )
        # The bulk load bypassed the triggers (replica role, TRUNCATE): recount as migration
        # 0004 does for existing rows.
        await conn.execute("TRUNCATE recording_counts")
        await conn.execute(
            "INSERT INTO recording_counts (account_sid, live) SELECT account_sid, count(*)"
            " FROM recordings WHERE deleted_at IS NULL GROUP BY account_sid",
            timeout=None,
        )
        await conn.execute("TRUNCATE recording_day_counts")
        await conn.execute(
            "INSERT INTO recording_day_counts (account_sid, day, live)"
            " SELECT account_sid, (date_created AT TIME ZONE 'UTC')::date, count(*)"
            " FROM recordings WHERE deleted_at IS NULL GROUP BY 1, 2",
            timeout=None,
        )
        timings["insert"] = time.perf_counter() - t
        t = time.perf_counter()
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await conn.execute("SET max_parallel_maintenance_workers = 2")
        for index in indexes:
            if index["pk"]:
                # The key's own columns: (sid) before migration 0013, (account_sid, sid) since.
                columns = index["def"][index["def"].rindex("(") :]
                await conn.execute(
                    f'ALTER TABLE recordings ADD CONSTRAINT "{index["name"]}" PRIMARY KEY {columns}',
                    timeout=None,
                )
            else:
                await conn.execute(index["def"], timeout=None)
        for ref in references:
            await conn.execute(
                f'ALTER TABLE {ref["tab"]} ADD CONSTRAINT "{ref["name"]}" {ref["def"]}'
            )
        timings["indexes"] = time.perf_counter() - t
        t = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) recordings", timeout=None)
        await conn.execute("ANALYZE accounts")
        timings["vacuum_analyze"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - started
        table_bytes = await conn.fetchval("SELECT pg_table_size('recordings')")
        sizes = await conn.fetch(
            "SELECT c.relname AS name, pg_relation_size(c.oid) AS bytes FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'recordings'::regclass"
        )
        made = await conn.fetchval(
            "SELECT count(*) FROM recordings WHERE account_sid = $1", account_sid
        )
    finally:
        await conn.close()
    return Dataset(
        total=total,
        in_account=int(made),
        other_accounts=others,
        load_seconds=timings,
        table_bytes=int(table_bytes),
        index_bytes={r["name"]: int(r["bytes"]) for r in sizes},
    )
