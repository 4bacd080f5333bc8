"""Idempotency keys of ingest requests: claimed, answered, replayed, forgotten after a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from db.pool import Pool

# How long a key's first answer is replayed (and the row kept).
KEEP_FOR = timedelta(hours=24)


@dataclass(frozen=True)
class IngestKey:
    body_sha256: bytes
    state: str  # "running" or "done"
    status: int | None
    content_type: str | None
    body: bytes | None
    created_at: datetime


async def claim_key(
    pool: Pool,
    account_sid: str,
    key: str,
    body_sha256: bytes,
    *,
    stale_before: datetime,
    expired_before: datetime,
) -> IngestKey | None:
    """Take the key for a new request: None when taken, else the row that holds it already.

    A running claim older than ``stale_before`` belonged to a request that died, and any claim
    older than ``expired_before`` is past its day: both are taken over.
    """
    row = await pool.fetchrow(
        "INSERT INTO ingest_keys AS k (account_sid, key, body_sha256, state)"
        " VALUES ($1, $2, $3, 'running')"
        " ON CONFLICT (account_sid, key) DO UPDATE SET body_sha256 = EXCLUDED.body_sha256,"
        " state = 'running', status = NULL, content_type = NULL, body = NULL, created_at = now()"
        " WHERE (k.state = 'running' AND k.created_at < $4) OR k.created_at < $5"
        " RETURNING 1",
        account_sid,
        key,
        body_sha256,
        stale_before,
        expired_before,
    )
    if row is not None:
        return None
    return await fetch_key(pool, account_sid, key)


async def fetch_key(pool: Pool, account_sid: str, key: str) -> IngestKey | None:
    row = await pool.fetchrow(
        "SELECT body_sha256, state, status, content_type, body, created_at FROM ingest_keys"
        " WHERE account_sid = $1 AND key = $2",
        account_sid,
        key,
    )
    if row is None:
        return None
    return IngestKey(
        body_sha256=bytes(row["body_sha256"]),
        state=row["state"],
        status=row["status"],
        content_type=row["content_type"],
        body=bytes(row["body"]) if row["body"] is not None else None,
        created_at=row["created_at"],
    )


async def answer_key(
    pool: Pool, account_sid: str, key: str, *, status: int, content_type: str, body: bytes
) -> None:
    """Keep the first request's answer for the retries to come."""
    await pool.execute(
        "UPDATE ingest_keys SET state = 'done', status = $3, content_type = $4, body = $5"
        " WHERE account_sid = $1 AND key = $2",
        account_sid,
        key,
        status,
        content_type,
        body,
    )


async def release_key(pool: Pool, account_sid: str, key: str) -> None:
    """Give the key back after a failure, so that a retry can run."""
    await pool.execute(
        "DELETE FROM ingest_keys WHERE account_sid = $1 AND key = $2 AND state = 'running'",
        account_sid,
        key,
    )


async def forget_keys(pool: Pool, *, older_than: datetime) -> int:
    """Drop keys past their day; how many went."""
    status = await pool.execute("DELETE FROM ingest_keys WHERE created_at < $1", older_than)
    return int(str(status).rsplit(" ", 1)[-1])
