"""What deleted recordings leave behind: tombstones whose objects are removed, then forgotten,
and the rows that still own objects in storage (gc)."""

from __future__ import annotations

from datetime import datetime

from db.pool import Pool
from db.recordings import _COLUMNS, Recording, _recording


async def mark_media_purged(pool: Pool, account_sid: str, sid: str) -> None:
    """Note that a tombstoned recording's objects are gone; its row waits to be forgotten."""
    await pool.execute(
        "UPDATE recordings SET media_purged_at = now() WHERE account_sid = $1 AND sid = $2"
        " AND deleted_at IS NOT NULL AND media_purged_at IS NULL",
        account_sid,
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
        "DELETE FROM recordings WHERE (account_sid, sid) IN"
        " (SELECT account_sid, sid FROM recordings"
        " WHERE deleted_at IS NOT NULL AND deleted_at <= $1 AND media_purged_at IS NOT NULL"
        " LIMIT $2)",
        deleted_before,
        limit,
    )
    # asyncpg returns the command tag, "DELETE <count>".
    return int(str(status).rsplit(" ", 1)[-1])


async def existing_recordings(
    pool: Pool, recordings: list[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these (AccountSid, SID) have a row that still owns its objects: a live one, or
    a tombstone whose objects are not removed yet."""
    rows = await pool.fetch(
        "SELECT r.account_sid, r.sid FROM recordings r"
        " JOIN unnest($1::text[], $2::text[]) AS k (account_sid, sid)"
        " ON r.account_sid = k.account_sid AND r.sid = k.sid WHERE r.media_purged_at IS NULL",
        [account for account, _ in recordings],
        [sid for _, sid in recordings],
    )
    return {(row["account_sid"], row["sid"]) for row in rows}
