"""Recording status callbacks: the outbox the worker delivers, and accounts' default targets."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.pool import Pool


@dataclass(frozen=True)
class Callback:
    id: int
    account_sid: str
    recording_sid: str
    url: str
    method: str
    params: dict[str, str]
    request_id: str | None
    status: str  # pending, delivered, failed
    attempts: int
    next_attempt_at: datetime
    give_up_at: datetime
    last_status: int | None
    last_error: str | None
    date_created: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class NewCallback:
    """The callback of a recording being inserted (see db.recordings.insert_recording)."""

    url: str | None  # None: the account's default target, if it has one
    method: str | None
    params: dict[str, str]
    request_id: str | None
    window_seconds: float


@dataclass(frozen=True)
class Claimed:
    """A callback a worker holds for one attempt, with what it needs to sign it."""

    callback: Callback
    lease: uuid.UUID
    token_sealed: bytes | None


_COLUMNS = (
    "c.id, c.account_sid, c.recording_sid, c.url, c.method, c.params, c.request_id, c.status,"
    " c.attempts, c.next_attempt_at, c.give_up_at, c.last_status, c.last_error,"
    " c.date_created, c.delivered_at"
)


def _callback(row: asyncpg.Record) -> Callback:
    return Callback(
        id=row["id"],
        account_sid=row["account_sid"],
        recording_sid=row["recording_sid"],
        url=row["url"],
        method=row["method"],
        params=json.loads(row["params"]),
        request_id=row["request_id"],
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        give_up_at=row["give_up_at"],
        last_status=row["last_status"],
        last_error=row["last_error"],
        date_created=row["date_created"],
        delivered_at=row["delivered_at"],
    )


async def claim_due(
    pool: Pool, *, limit: int, lease_seconds: float, exclude: list[int] | None = None
) -> list[Claimed]:
    """Take up to ``limit`` due callbacks for one attempt each.

    SKIP LOCKED lets workers claim side by side without waiting on or taking each other's rows;
    the claim pushes ``next_attempt_at`` past the attempt's longest run, so no other worker
    takes the row while this one tries it, and a worker that dies leaves it due again then.
    ``exclude``: callbacks this worker still holds (one whose result waits for PostgreSQL).
    """
    lease = uuid.uuid4()
    rows = await pool.fetch(
        "UPDATE callbacks c SET attempts = c.attempts + 1, lease = $3,"
        " next_attempt_at = now() + make_interval(secs => $2), date_updated = now()"
        " FROM (SELECT account_sid, id FROM callbacks"
        " WHERE status = 'pending' AND next_attempt_at <= now()"
        " AND id <> ALL($4::bigint[])"
        " ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED) due, accounts a"
        " WHERE c.account_sid = due.account_sid AND c.id = due.id AND a.sid = c.account_sid"
        f" RETURNING {_COLUMNS}, a.token_sealed",
        limit,
        lease_seconds,
        lease,
        exclude or [],
    )
    return [
        Claimed(
            _callback(row),
            lease,
            None if row["token_sealed"] is None else bytes(row["token_sealed"]),
        )
        for row in rows
    ]


async def defer(pool: Pool, lease: uuid.UUID, delays: dict[int, float]) -> None:
    """Give back claimed callbacks unattempted, due again after their delay in seconds: the
    claim's attempt is not counted."""
    await pool.execute(
        "UPDATE callbacks c SET attempts = c.attempts - 1, lease = NULL,"
        " next_attempt_at = now() + make_interval(secs => d.secs), date_updated = now()"
        " FROM unnest($2::bigint[], $3::float8[]) AS d(id, secs)"
        " WHERE c.id = d.id AND c.lease = $1 AND c.status = 'pending'",
        lease,
        list(delays),
        list(delays.values()),
    )


async def seconds_to_next_due(pool: Pool) -> float | None:
    """Seconds until the next pending callback is due (by the database's clock); None: none."""
    value = await pool.fetchval(
        "SELECT extract(epoch FROM min(next_attempt_at) - now()) FROM callbacks"
        " WHERE status = 'pending'"
    )
    return None if value is None else float(value)


async def mark_delivered(pool: Pool, account_sid: str, callback_id: int, status_code: int) -> bool:
    """Record a delivery; once delivered, a callback is never claimed again."""
    status = await pool.execute(
        "UPDATE callbacks SET status = 'delivered', delivered_at = now(), date_updated = now(),"
        " last_status = $2, last_error = NULL, lease = NULL"
        " WHERE account_sid = $3 AND id = $1 AND status = 'pending'",
        callback_id,
        status_code,
        account_sid,
    )
    return bool(status != "UPDATE 0")


async def reschedule(
    pool: Pool,
    account_sid: str,
    callback_id: int,
    lease: uuid.UUID,
    *,
    at: datetime,
    status_code: int | None,
    error: str,
) -> bool:
    """Set the next attempt of a callback this worker still holds; False if it holds it no more."""
    status = await pool.execute(
        "UPDATE callbacks SET next_attempt_at = $3, last_status = $4, last_error = $5,"
        " lease = NULL, date_updated = now()"
        " WHERE account_sid = $6 AND id = $1 AND lease = $2 AND status = 'pending'",
        callback_id,
        lease,
        at,
        status_code,
        error,
        account_sid,
    )
    return bool(status != "UPDATE 0")


async def mark_failed(
    pool: Pool,
    account_sid: str,
    callback_id: int,
    lease: uuid.UUID,
    *,
    status_code: int | None,
    error: str,
) -> bool:
    """End a callback this worker holds as failed (an answer that is not retried, or too late)."""
    status = await pool.execute(
        "UPDATE callbacks SET status = 'failed', last_status = $3, last_error = $4, lease = NULL,"
        " date_updated = now()"
        " WHERE account_sid = $5 AND id = $1 AND lease = $2 AND status = 'pending'",
        callback_id,
        lease,
        status_code,
        error,
        account_sid,
    )
    return bool(status != "UPDATE 0")


async def list_callbacks(pool: Pool, *, failed_only: bool, limit: int) -> list[Callback]:
    """The newest callbacks (only the failed ones), newest first."""
    where = "WHERE c.status = 'failed'" if failed_only else ""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM callbacks c {where} ORDER BY c.id DESC LIMIT $1", limit
    )
    return [_callback(row) for row in rows]


async def fetch_callbacks(pool: Pool, ids: list[int]) -> list[Callback]:
    """These callbacks, by id."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM callbacks c WHERE c.id = ANY($1::bigint[]) ORDER BY c.id", ids
    )
    return [_callback(row) for row in rows]


async def requeue(pool: Pool, ids: list[int], *, window_seconds: float) -> list[int]:
    """Make failed callbacks, and pending ones no worker is trying right now, due now with a
    new retry window; the ids requeued."""
    rows = await pool.fetch(
        "UPDATE callbacks SET status = 'pending', next_attempt_at = now(),"
        " give_up_at = now() + make_interval(secs => $2), date_updated = now()"
        " WHERE id = ANY($1::bigint[])"
        " AND (status = 'failed' OR (status = 'pending' AND lease IS NULL)) RETURNING id",
        ids,
        window_seconds,
    )
    return sorted(row["id"] for row in rows)


async def set_status_callback(pool: Pool, account_sid: str, url: str | None, method: str) -> bool:
    """Set (or with None, clear) an account's default callback; False for an unknown account."""
    status = await pool.execute(
        "UPDATE accounts SET status_callback = $2, status_callback_method = $3,"
        " date_updated = now() WHERE sid = $1",
        account_sid,
        url,
        method,
    )
    return bool(status != "UPDATE 0")


async def forget_settled(pool: Pool, *, older_than: datetime, limit: int) -> int:
    """Drop up to ``limit`` delivered or failed callbacks last updated before ``older_than``,
    oldest first; how many went. Pending ones are never dropped here."""
    status = await pool.execute(
        "DELETE FROM callbacks WHERE (account_sid, id) IN (SELECT account_sid, id FROM callbacks"
        " WHERE status <> 'pending' AND date_updated < $1 ORDER BY date_updated LIMIT $2)",
        older_than,
        limit,
    )
    return int(str(status).rsplit(" ", 1)[-1])
