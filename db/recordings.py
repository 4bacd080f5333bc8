"""Recordings: the rows behind the API, one small query per function."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from db.callbacks import NewCallback
from db.pool import Pool


@dataclass(frozen=True)
class Recording:
    sid: str
    account_sid: str
    call_sid: str
    duration: int
    date_created: datetime
    date_updated: datetime
    sample_rate: int
    channels: int
    wav_key: str
    wav_size: int
    wav_etag: str
    mp3_key: str | None
    mp3_size: int | None
    mp3_etag: str | None
    mp3_error: str | None
    mp3_created_at: datetime | None = None
    source: str = "RecordVerb"
    start_time: datetime | None = None
    conference_sid: str | None = None
    # Set on a soft-deleted recording: its metadata stays for a while, its media never does.
    deleted_at: datetime | None = None
    # What Twilio charged, on recordings imported from it (`recordings import-twilio`).
    price: str | None = None
    price_unit: str | None = None


@dataclass(frozen=True)
class MediaLookup:
    """A recording with the account facts its public GET needs, from one query."""

    recording: Recording
    enforce_media_auth: bool
    token_salt: bytes
    token_hash: bytes
    # Origins whose pages may read the media with credentials (CORS).
    cors_origins: tuple[str, ...] = ()


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


_COLUMNS = (
    "r.sid, r.account_sid, r.call_sid, r.duration, r.date_created, r.date_updated,"
    " r.sample_rate, r.channels, r.wav_key, r.wav_size, r.wav_etag,"
    " r.mp3_key, r.mp3_size, r.mp3_etag, r.mp3_error, r.mp3_created_at,"
    " r.source, r.start_time, r.conference_sid, r.deleted_at, r.price, r.price_unit"
)


# Appended to a statement whose CTE ``gone`` returns tombstoned rows: their pending callbacks
# go in the same statement. A callback a worker holds right now may still be delivered once.
DROP_CALLBACKS = (
    "dropped AS (DELETE FROM callbacks c USING gone"
    " WHERE c.recording_sid = gone.sid AND c.account_sid = gone.account_sid"
    " AND c.status = 'pending')"
)


def _recording(row: asyncpg.Record) -> Recording:
    return Recording(
        sid=row["sid"],
        account_sid=row["account_sid"],
        call_sid=row["call_sid"],
        duration=row["duration"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
        sample_rate=row["sample_rate"],
        channels=row["channels"],
        wav_key=row["wav_key"],
        wav_size=row["wav_size"],
        wav_etag=row["wav_etag"],
        mp3_key=row["mp3_key"],
        mp3_size=row["mp3_size"],
        mp3_etag=row["mp3_etag"],
        mp3_error=row["mp3_error"],
        mp3_created_at=row["mp3_created_at"],
        source=row["source"],
        start_time=row["start_time"],
        conference_sid=row["conference_sid"],
        deleted_at=row["deleted_at"],
        price=row.get("price"),
        price_unit=row.get("price_unit"),
    )


# A recording's status callback, queued by the statement that inserts the recording (so both
# commit or neither does, in one round trip): to the given URL, else to the account's default.
_WITH_CALLBACK = (
    ", queued AS (INSERT INTO callbacks (account_sid, recording_sid, url, method, params,"
    " request_id, give_up_at)"
    " SELECT a.sid, r.sid, coalesce($15, a.status_callback),"
    " CASE WHEN $15::text IS NULL THEN a.status_callback_method ELSE $16 END,"
    " $17::jsonb, $18, now() + make_interval(secs => $19)"
    " FROM inserted r JOIN accounts a ON a.sid = r.account_sid"
    " WHERE coalesce($15, a.status_callback) IS NOT NULL)"
)


async def insert_recording(
    pool: Pool, recording: Recording, callback: NewCallback | None = None
) -> Recording:
    """Store a recording whose WAV is already durable in storage, with its status callback
    (to ``callback.url``, or the account's default) when one is given."""
    insert = (
        "INSERT INTO recordings AS r (sid, account_sid, call_sid, duration, date_created,"
        " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag, source, start_time,"
        " conference_sid)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        f" RETURNING {_COLUMNS}"
    )
    extra: list[object] = []
    if callback is not None:
        insert = f"WITH inserted AS ({insert}){_WITH_CALLBACK} SELECT * FROM inserted r"
        extra = [
            callback.url,
            callback.method or "POST",
            json.dumps(callback.params),
            callback.request_id,
            callback.window_seconds,
        ]
    row = await pool.fetchrow(
        insert,
        recording.sid,
        recording.account_sid,
        recording.call_sid,
        recording.duration,
        recording.date_created,
        recording.date_updated,
        recording.sample_rate,
        recording.channels,
        recording.wav_key,
        recording.wav_size,
        recording.wav_etag,
        recording.source,
        recording.start_time,
        recording.conference_sid,
        *extra,
    )
    assert row is not None
    return _recording(row)


async def fetch_media(pool: Pool, account_sid: str, sid: str) -> MediaLookup | None:
    """A live recording of this account and its account's media-auth facts."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS}, a.enforce_media_auth, a.token_salt, a.token_hash, a.cors_origins"
        " FROM recordings r JOIN accounts a ON a.sid = r.account_sid"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL",
        account_sid,
        sid,
    )
    if row is None:
        return None
    return MediaLookup(
        recording=_recording(row),
        enforce_media_auth=row["enforce_media_auth"],
        token_salt=bytes(row["token_salt"]),
        token_hash=bytes(row["token_hash"]),
        cors_origins=tuple(row["cors_origins"]),
    )


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
        f"SELECT {_COLUMNS} FROM (SELECT r.sid FROM recordings r WHERE {where}"
        f" ORDER BY r.date_created DESC, r.sid DESC LIMIT ${len(args) - 1} OFFSET ${len(args)})"
        " page JOIN recordings r ON r.sid = page.sid ORDER BY r.date_created DESC, r.sid DESC",
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


async def fetch_recording(
    pool: Pool, account_sid: str, sid: str, *, deleted_since: datetime | None = None
) -> Recording | None:
    """A recording of this account: live, or deleted at or after ``deleted_since`` if given."""
    if deleted_since is None:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM recordings r"
            " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL",
            account_sid,
            sid,
        )
    else:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM recordings r WHERE r.account_sid = $1 AND r.sid = $2"
            " AND (r.deleted_at IS NULL OR r.deleted_at >= $3)",
            account_sid,
            sid,
            deleted_since,
        )
    return _recording(row) if row else None


async def fetch_recording_by_sid(pool: Pool, sid: str) -> Recording | None:
    """A live recording, whatever its account (for workers, which get only the SID)."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM recordings r WHERE r.sid = $1 AND r.deleted_at IS NULL", sid
    )
    return _recording(row) if row else None


async def set_mp3(
    pool: Pool, sid: str, *, key: str, size: int, etag: str, created_at: datetime | None = None
) -> Recording | None:
    """Record a cached MP3 that is durable in storage; None when the recording is gone.

    ``created_at`` (default: now) is its Last-Modified, which answers served before it was
    stored already gave.
    """
    row = await pool.fetchrow(
        "UPDATE recordings r SET mp3_key = $2, mp3_size = $3, mp3_etag = $4,"
        " mp3_error = NULL, mp3_created_at = coalesce($5, now())"
        f" WHERE r.sid = $1 AND r.deleted_at IS NULL RETURNING {_COLUMNS}",
        sid,
        key,
        size,
        etag,
        created_at,
    )
    return _recording(row) if row else None


async def set_mp3_error(pool: Pool, sid: str, message: str) -> None:
    """Remember that this recording's audio cannot be transcoded, so it is not retried."""
    await pool.execute(
        "UPDATE recordings SET mp3_error = $2 WHERE sid = $1 AND deleted_at IS NULL", sid, message
    )


async def tombstone_recording(pool: Pool, account_sid: str, sid: str) -> Recording | None:
    """Hide a live recording at once, and drop its status callbacks not yet delivered (no app
    hears "completed" of a recording it can no longer fetch); None when there was none to hide."""
    row = await pool.fetchrow(
        "WITH gone AS (UPDATE recordings r SET deleted_at = now(), date_updated = now()"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL"
        f" RETURNING {_COLUMNS}), {DROP_CALLBACKS} SELECT * FROM gone",
        account_sid,
        sid,
    )
    return _recording(row) if row else None


async def mark_media_purged(pool: Pool, sid: str) -> None:
    """Note that a tombstoned recording's objects are gone; its row waits to be forgotten."""
    await pool.execute(
        "UPDATE recordings SET media_purged_at = now()"
        " WHERE sid = $1 AND deleted_at IS NOT NULL AND media_purged_at IS NULL",
        sid,
    )


async def list_tombstones(pool: Pool, *, older_than: datetime, limit: int) -> list[Recording]:
    """Tombstoned recordings whose objects may still need removing."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM recordings r"
        " WHERE r.deleted_at IS NOT NULL AND r.deleted_at <= $1 AND r.media_purged_at IS NULL"
        " ORDER BY r.deleted_at LIMIT $2",
        older_than,
        limit,
    )
    return [_recording(row) for row in rows]


async def list_account_tombstones(pool: Pool, account_sid: str) -> list[Recording]:
    """Tombstoned recordings of one account whose objects may remain (its removal purges them)."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM recordings r"
        " WHERE r.account_sid = $1 AND r.deleted_at IS NOT NULL AND r.media_purged_at IS NULL",
        account_sid,
    )
    return [_recording(row) for row in rows]


async def forget_tombstones(pool: Pool, *, deleted_before: datetime, limit: int) -> int:
    """Delete up to ``limit`` rows of recordings deleted before then whose objects are gone."""
    status = await pool.execute(
        "DELETE FROM recordings WHERE sid IN (SELECT sid FROM recordings"
        " WHERE deleted_at IS NOT NULL AND deleted_at <= $1 AND media_purged_at IS NOT NULL"
        " LIMIT $2)",
        deleted_before,
        limit,
    )
    # asyncpg returns the command tag, "DELETE <count>".
    return int(str(status).rsplit(" ", 1)[-1])


async def existing_sids(pool: Pool, sids: list[str]) -> set[str]:
    """Which of these recording SIDs have a row that still owns its objects: a live one, or a
    tombstone whose objects are not removed yet."""
    rows = await pool.fetch(
        "SELECT sid FROM recordings WHERE sid = ANY($1::text[]) AND media_purged_at IS NULL", sids
    )
    return {row["sid"] for row in rows}
