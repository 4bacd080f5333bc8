"""Retention: accounts' policies, the batches a pass tombstones, and the pass's schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.listing import Key
from db.pool import Pool
from db.recordings import _COLUMNS, DROP_CALLBACKS, Recording, _recording

# Taken (pg_try_advisory_lock) by the replica running the scheduled pass; any constant will do,
# as long as it differs from the migrations' lock.
RETENTION_LOCK_ID = 0x52455445  # "RETE"


@dataclass(frozen=True)
class Policy:
    """How long one account's recordings are kept: its own days, else the default."""

    account_sid: str
    days: int
    own: bool


async def list_policies(
    pool: Pool, default_days: int | None, accounts: list[str] | None = None
) -> list[Policy]:
    """Every account with a policy (of these accounts, when given), by AccountSid."""
    rows = await pool.fetch(
        "SELECT sid, coalesce(retention_days, $1) AS days, retention_days IS NOT NULL AS own"
        " FROM accounts WHERE coalesce(retention_days, $1) IS NOT NULL"
        " AND ($2::text[] IS NULL OR sid = ANY($2::text[])) ORDER BY sid",
        default_days,
        accounts,
    )
    return [Policy(row["sid"], row["days"], row["own"]) for row in rows]


async def database_now(pool: Pool) -> datetime:
    """The database's clock: every replica's pass measures age against the same one."""
    value: datetime = await pool.fetchval("SELECT now()")
    return value


async def expire_batch(
    pool: Pool, account_sid: str, *, cutoff: datetime, after: Key | None, limit: int
) -> list[Recording]:
    """Tombstone up to ``limit`` of the account's live recordings created before ``cutoff``,
    oldest first (past ``after``), and drop their pending callbacks: one short transaction.

    SKIP LOCKED lets two passes run side by side, each taking rows the other has not; a row
    an ingest or a DELETE holds is left for the next batch or pass.
    """
    rows = await pool.fetch(
        "WITH doomed AS (SELECT sid FROM recordings"
        " WHERE account_sid = $1 AND deleted_at IS NULL AND date_created < $2"
        " AND ($3::timestamptz IS NULL OR (date_created, sid) > ($3::timestamptz, $4::text))"
        " ORDER BY date_created, sid LIMIT $5 FOR UPDATE SKIP LOCKED),"
        " gone AS (UPDATE recordings r SET deleted_at = now(), date_updated = now()"
        " FROM doomed WHERE r.account_sid = $1 AND r.sid = doomed.sid AND r.deleted_at IS NULL"
        f" RETURNING {_COLUMNS}), {DROP_CALLBACKS}"
        " SELECT * FROM gone ORDER BY date_created, sid",
        account_sid,
        cutoff,
        after.date_created if after else None,
        after.sid if after else "",
        limit,
    )
    return [_recording(row) for row in rows]


async def mark_all_media_purged(pool: Pool, recordings: list[tuple[str, str]]) -> None:
    """Note that these tombstoned recordings' (AccountSid, SID) objects are gone."""
    await pool.execute(
        "UPDATE recordings r SET media_purged_at = now()"
        " FROM unnest($1::text[], $2::text[]) AS k (account_sid, sid)"
        " WHERE r.account_sid = k.account_sid AND r.sid = k.sid"
        " AND r.deleted_at IS NOT NULL AND r.media_purged_at IS NULL",
        [account for account, _ in recordings],
        [sid for _, sid in recordings],
    )


async def set_retention_days(pool: Pool, account_sid: str, days: int | None) -> bool:
    """Set (None: clear, following the default) an account's policy; False: no such account."""
    status = await pool.execute(
        "UPDATE accounts SET retention_days = $2, date_updated = now() WHERE sid = $1",
        account_sid,
        days,
    )
    return bool(status != "UPDATE 0")


async def try_lock(pool: Pool) -> bool:
    """Take the scheduled pass's session lock on this connection, if no one holds it."""
    return bool(await pool.fetchval("SELECT pg_try_advisory_lock($1)", RETENTION_LOCK_ID))


async def unlock(pool: Pool) -> None:
    await pool.execute("SELECT pg_advisory_unlock($1)", RETENTION_LOCK_ID)


async def claim_scheduled_pass(pool: Pool, interval_seconds: float) -> bool:
    """Note a scheduled pass starting now, unless one started less than an interval ago."""
    status = await pool.execute(
        "UPDATE retention_schedule SET last_started_at = now()"
        " WHERE last_started_at IS NULL"
        " OR last_started_at <= now() - make_interval(secs => $1)",
        interval_seconds,
    )
    return bool(status != "UPDATE 0")


async def finish_scheduled_pass(pool: Pool) -> None:
    await pool.execute("UPDATE retention_schedule SET last_finished_at = now()")
