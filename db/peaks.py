"""Recordings' waveform peaks: made (where they are stored) or failed for good."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from db.pool import Db, Pool


@dataclass(frozen=True)
class StoredPeaks:
    """A recording's peaks, durable in storage."""

    sid: str
    key: str
    size: int
    etag: str
    created_at: datetime


@dataclass(frozen=True)
class PeaksState:
    """What is known of a live recording's peaks: stored, failed, or neither yet."""

    stored: StoredPeaks | None = None
    error: str | None = None


async def fetch_peaks_state(db: Db, account_sid: str, sid: str) -> PeaksState | None:
    """The peaks of a live recording; None when there is no live recording of that SID."""
    row = await db.fetchrow(
        "SELECT p.peaks_key, p.size, p.etag, p.error, p.created_at FROM recordings r"
        " LEFT JOIN recording_peaks p ON p.account_sid = r.account_sid AND p.sid = r.sid"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL",
        account_sid,
        sid,
    )
    if row is None:
        return None
    if row["peaks_key"] is not None:
        stored = StoredPeaks(sid, row["peaks_key"], row["size"], row["etag"], row["created_at"])
        return PeaksState(stored=stored)
    return PeaksState(error=row["error"])


async def set_peaks(
    pool: Pool, account_sid: str, sid: str, *, key: str, size: int, etag: str
) -> StoredPeaks | None:
    """Record peaks that are durable in storage; None when the recording is gone."""
    row = await pool.fetchrow(
        "INSERT INTO recording_peaks AS p (account_sid, sid, peaks_key, size, etag)"
        " SELECT r.account_sid, r.sid, $2, $3, $4 FROM recordings r"
        " WHERE r.account_sid = $5 AND r.sid = $1 AND r.deleted_at IS NULL"
        " ON CONFLICT (account_sid, sid) DO UPDATE SET peaks_key = EXCLUDED.peaks_key,"
        " size = EXCLUDED.size,"
        " etag = EXCLUDED.etag, error = NULL, created_at = now()"
        " RETURNING p.created_at",
        sid,
        key,
        size,
        etag,
        account_sid,
    )
    if row is None:
        return None
    return StoredPeaks(sid, key, size, etag, row["created_at"])


async def set_peaks_error(pool: Pool, account_sid: str, sid: str, message: str) -> None:
    """Remember that this recording's audio cannot be decoded, so it is not tried again."""
    await pool.execute(
        "INSERT INTO recording_peaks (account_sid, sid, error)"
        " SELECT r.account_sid, r.sid, $3 FROM recordings r"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL"
        " ON CONFLICT (account_sid, sid) DO NOTHING",
        account_sid,
        sid,
        message,
    )
