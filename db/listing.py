"""The recordings list: an account's recordings, filtered, counted and paged in date order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.pool import Pool
from db.recordings import _COLUMNS, Recording, _recording


@dataclass(frozen=True)
class ListFilter:
    """The list's filters; ``created_before`` is exclusive."""

    call_sid: str | None = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    conference_sid: str | None = None
    # Also the recordings deleted at or after this instant; None lists live recordings only.
    deleted_since: datetime | None = None


@dataclass(frozen=True)
class Key:
    """A place in the listing order (newest first, SID breaking ties)."""

    date_created: datetime
    sid: str


def _filter_clauses(account_sid: str, filters: ListFilter) -> tuple[list[str], list[object]]:
    # Only constant fragments are joined here; every value travels as a $n parameter.
    clauses = ["r.account_sid = $1"]
    args: list[object] = [account_sid]
    if filters.call_sid is not None:
        args.append(filters.call_sid)
        clauses.append(f"r.call_sid = ${len(args)}")
    if filters.conference_sid is not None:
        args.append(filters.conference_sid)
        clauses.append(f"r.conference_sid = ${len(args)}")
    if filters.created_from is not None:
        args.append(filters.created_from)
        clauses.append(f"r.date_created >= ${len(args)}")
    if filters.created_before is not None:
        args.append(filters.created_before)
        clauses.append(f"r.date_created < ${len(args)}")
    return clauses, args


def _where(account_sid: str, filters: ListFilter) -> tuple[str, list[object]]:
    clauses, args = _filter_clauses(account_sid, filters)
    if filters.deleted_since is None:
        clauses.insert(1, "r.deleted_at IS NULL")
    else:
        args.append(filters.deleted_since)
        clauses.insert(1, f"(r.deleted_at IS NULL OR r.deleted_at >= ${len(args)})")
    return " AND ".join(clauses), args


async def count_recordings(pool: Pool, account_sid: str, filters: ListFilter) -> int:
    """How many live recordings match."""
    if filters == ListFilter():
        # Kept by a trigger (migration 0004): constant time however large the account.
        live = await pool.fetchval(
            "SELECT live FROM recording_counts WHERE account_sid = $1", account_sid
        )
        return int(live or 0)
    if (
        filters.call_sid is None
        and filters.conference_sid is None
        and filters.deleted_since is None
    ):
        return await _count_by_days(pool, account_sid, filters.created_from, filters.created_before)
    where, args = _where(account_sid, filters)
    total = await pool.fetchval(f"SELECT count(*) FROM recordings r WHERE {where}", *args)
    return int(total)


def _midnight(instant: datetime) -> datetime:
    """The start of the instant's UTC day."""
    utc = instant.astimezone(UTC) if instant.tzinfo else instant.replace(tzinfo=UTC)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


async def _count_by_days(
    pool: Pool, account_sid: str, start: datetime | None, end: datetime | None
) -> int:
    """Live recordings created in [start, end): the per-day counters (migration 0011) of the
    whole UTC days inside, plus a count(*) of the partial days at either edge (an index range
    of at most a day each)."""
    # Whole days are [first_day, end_day): start rounded up, end rounded down to midnight.
    first_day = None
    if start is not None:
        first_day = _midnight(start)
        if first_day < start:
            first_day += timedelta(days=1)
    end_day = _midnight(end) if end is not None else None
    if first_day is not None and end_day is not None and first_day >= end_day:
        # Within one day, or two partial days with none whole between: count it all.
        total = await pool.fetchval(
            "SELECT count(*) FROM recordings r WHERE r.account_sid = $1"
            " AND r.deleted_at IS NULL AND r.date_created >= $2 AND r.date_created < $3",
            account_sid,
            start,
            end,
        )
        return int(total)
    # Empty edges ([x, x)) count nothing; None bounds make the day sum open-ended.
    total = await pool.fetchval(
        "SELECT coalesce((SELECT sum(live) FROM recording_day_counts WHERE account_sid = $1"
        " AND ($2::date IS NULL OR day >= $2::date) AND ($3::date IS NULL OR day < $3::date)), 0)"
        " + (SELECT count(*) FROM recordings r WHERE r.account_sid = $1 AND r.deleted_at IS NULL"
        " AND r.date_created >= $4 AND r.date_created < $5)"
        " + (SELECT count(*) FROM recordings r WHERE r.account_sid = $1 AND r.deleted_at IS NULL"
        " AND r.date_created >= $6 AND r.date_created < $7)",
        account_sid,
        first_day.date() if first_day is not None else None,
        end_day.date() if end_day is not None else None,
        start if start is not None else first_day,
        first_day,
        end_day,
        end if end is not None else end_day,
    )
    return int(total)


async def list_recordings(
    pool: Pool, account_sid: str, filters: ListFilter, *, limit: int, offset: int
) -> list[Recording]:
    """One page of live recordings, newest first, SID breaking ties."""
    where, args = _where(account_sid, filters)
    args += [limit, offset]
    # A deferred join: the OFFSET walks the listing index alone (index-only), and only the
    # page's rows are read from the table, not every row skipped (page 1000 of 50 at 1,000,000
    # recordings: 33 -> 5 ms; bench/, benchmark 5).
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM (SELECT r.account_sid, r.sid FROM recordings r WHERE {where}"
        f" ORDER BY r.date_created DESC, r.sid DESC LIMIT ${len(args) - 1} OFFSET ${len(args)})"
        " page JOIN recordings r ON r.account_sid = page.account_sid AND r.sid = page.sid"
        " ORDER BY r.date_created DESC, r.sid DESC",
        *args,
    )
    return [_recording(row) for row in rows]


async def list_recordings_from(
    pool: Pool,
    account_sid: str,
    filters: ListFilter,
    *,
    limit: int,
    after: Key | None = None,
    before: Key | None = None,
    offset: int = 0,
) -> list[Recording]:
    """Up to ``limit`` recordings in listing order that come right ``after`` a key (older
    ones) or right ``before`` it (newer ones), or from the top, skipping ``offset``.

    A keyset query: the listing index is entered at the key, so a deep page costs what the first
    one costs (bench/, benchmark 6). With ``deleted_since``, live rows and recent tombstones are
    read from their own partial indexes and merged.
    """
    clauses, args = _filter_clauses(account_sid, filters)
    key = before if before is not None else after
    if key is not None:
        args += [key.date_created, key.sid]
        # A row comparison is one index condition on (date_created, sid): the scan starts at
        # the key instead of filtering its way there.
        op = ">" if before is not None else "<"
        clauses.append(f"(r.date_created, r.sid) {op} (${len(args) - 1}, ${len(args)})")
    # Going back towards the newest, read upwards from the key, then turn the page around.
    way = "ASC" if before is not None else "DESC"
    order = f"ORDER BY date_created {way}, sid {way}"
    args.append(limit + offset)
    head = f"SELECT {_COLUMNS} FROM recordings r WHERE {' AND '.join(clauses)}"
    parts = [f"{head} AND r.deleted_at IS NULL {order} LIMIT ${len(args)}"]
    if filters.deleted_since is not None:
        args.append(filters.deleted_since)
        parts.append(f"{head} AND r.deleted_at >= ${len(args)} {order} LIMIT ${len(args) - 1}")
    if len(parts) == 1 and offset == 0:
        sql = parts[0]
    else:
        args += [limit, offset]
        merged = " UNION ALL ".join(f"({part})" for part in parts)
        sql = f"SELECT * FROM ({merged}) r {order} LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    rows = await pool.fetch(sql, *args)
    recordings = [_recording(row) for row in rows]
    return recordings[::-1] if before is not None else recordings
