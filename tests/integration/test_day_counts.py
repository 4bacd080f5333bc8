"""A date-filtered list's total from the per-UTC-day counters (migration 0011): whatever rows
arrive, move, are soft deleted, revived or removed, every range's total is the count(*)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.listing import ListFilter, count_recordings
from devstack.servers import EmbeddedPostgres
from tests.support.clients import new_account
from tests.support.rows import recording_row

BASE = datetime(2026, 3, 28, tzinfo=UTC)  # a day before Europe's clocks change: UTC is not
MINUTES = 6 * 24 * 60

# Offsets in minutes from BASE, midnights and their neighbours drawn often.
offsets = st.one_of(
    st.integers(0, MINUTES),
    st.integers(0, 6).map(lambda d: d * 24 * 60),
    st.integers(0, 6).flatmap(lambda d: st.sampled_from([d * 1440 - 1, d * 1440 + 1])),
)
bounds = st.one_of(st.none(), offsets.map(lambda m: BASE + timedelta(minutes=m - 60)))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), offsets),
        st.tuples(st.just("soft_delete"), st.integers(0, 1000)),
        st.tuples(st.just("revive"), st.integers(0, 1000)),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
        st.tuples(st.just("move"), st.integers(0, 1000), offsets),
    ),
    max_size=40,
)


async def _apply(conn: asyncpg.Connection, account_sid: str, ops: list[tuple[object, ...]]) -> None:
    sids: list[str] = []
    for op in ops:
        kind = op[0]
        if kind == "insert":
            row = recording_row(account_sid)
            when = BASE + timedelta(minutes=int(op[1]))  # type: ignore[call-overload]
            await conn.execute(
                "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
                " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
                " VALUES ($1, $2, $3, 1, $4, $4, 8000, 1, $5, 44, $6)",
                row.sid,
                account_sid,
                row.call_sid,
                when,
                row.wav_key,
                row.wav_etag,
            )
            sids.append(row.sid)
            continue
        if not sids:
            continue
        sid = sids[int(op[1]) % len(sids)]  # type: ignore[call-overload]
        if kind == "soft_delete":
            await conn.execute(
                "UPDATE recordings SET deleted_at = coalesce(deleted_at, now()) WHERE sid = $1", sid
            )
        elif kind == "revive":
            await conn.execute("UPDATE recordings SET deleted_at = NULL WHERE sid = $1", sid)
        elif kind == "delete":
            await conn.execute("DELETE FROM recordings WHERE sid = $1", sid)
            sids.remove(sid)
        else:
            when = BASE + timedelta(minutes=int(op[2]))  # type: ignore[call-overload]
            await conn.execute("UPDATE recordings SET date_created = $2 WHERE sid = $1", sid, when)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations, ranges=st.lists(st.tuples(bounds, bounds), min_size=1, max_size=8))
def test_totals_of_any_range_equal_a_count(
    postgres: EmbeddedPostgres,
    ops: list[tuple[object, ...]],
    ranges: list[tuple[datetime | None, datetime | None]],
) -> None:
    account = new_account(postgres.dsn)

    async def go() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await _apply(conn, account.sid, ops)
                # The counters are exactly the live rows per UTC day.
                kept = await conn.fetch(
                    "SELECT day, live FROM recording_day_counts"
                    " WHERE account_sid = $1 AND live > 0 ORDER BY day",
                    account.sid,
                )
                recount = await conn.fetch(
                    "SELECT (date_created AT TIME ZONE 'UTC')::date AS day, count(*) AS live"
                    " FROM recordings WHERE account_sid = $1 AND deleted_at IS NULL"
                    " GROUP BY 1 ORDER BY 1",
                    account.sid,
                )
                assert [tuple(r) for r in kept] == [tuple(r) for r in recount]
            for start, end in [*ranges, (None, None)]:
                total = await count_recordings(
                    pool, account.sid, ListFilter(created_from=start, created_before=end)
                )
                expected = await pool.fetchval(
                    "SELECT count(*) FROM recordings WHERE account_sid = $1"
                    " AND deleted_at IS NULL AND ($2::timestamptz IS NULL OR date_created >= $2)"
                    " AND ($3::timestamptz IS NULL OR date_created < $3)",
                    account.sid,
                    start,
                    end,
                )
                assert total == expected, (start, end)
        finally:
            await pool.close()

    asyncio.run(go())


def test_whole_days_are_read_from_the_counters(postgres: EmbeddedPostgres) -> None:
    """The counters are what whole days are counted from (a changed counter changes the total),
    and partial days are counted from the rows."""
    account = new_account(postgres.dsn)

    async def go() -> None:
        pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await _apply(conn, account.sid, [("insert", 600), ("insert", 1440 + 600)])
                await conn.execute(
                    "UPDATE recording_day_counts SET live = live + 1000 WHERE account_sid = $1"
                    " AND day = $2",
                    account.sid,
                    BASE.date(),
                )

            async def total(start: datetime | None, end: datetime | None) -> int:
                filters = ListFilter(created_from=start, created_before=end)
                return await count_recordings(pool, account.sid, filters)

            assert await total(BASE, BASE + timedelta(days=2)) == 1002
            assert await total(BASE, None) == 1002
            assert await total(None, BASE + timedelta(days=1)) == 1001
            # Partial days: the rows themselves.
            assert await total(BASE + timedelta(hours=1), BASE + timedelta(days=2)) == 2
            assert await total(BASE, BASE + timedelta(hours=23)) == 1
        finally:
            await pool.close()

    asyncio.run(go())
