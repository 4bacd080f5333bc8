"""Recordings brought over from Twilio: their rows, inserted with the source's own SIDs."""

from __future__ import annotations

import json
from dataclasses import dataclass

from db.pool import Pool
from db.recordings import Recording


@dataclass(frozen=True)
class Present:
    """What this account already holds under a recording SID."""

    wav_size: int
    deleted: bool


async def fetch_present(pool: Pool, account_sid: str, sids: list[str]) -> dict[str, Present]:
    """The account's rows of these SIDs, live or deleted."""
    rows = await pool.fetch(
        "SELECT sid, wav_size, deleted_at IS NOT NULL AS deleted FROM recordings"
        " WHERE account_sid = $1 AND sid = ANY($2::text[])",
        account_sid,
        sids,
    )
    return {row["sid"]: Present(int(row["wav_size"]), bool(row["deleted"])) for row in rows}


async def insert_imported(pool: Pool, recording: Recording) -> bool:
    """Store an imported recording whose WAV is durable in storage; False when a row of this
    SID exists already (an earlier run wrote it, or another account holds the SID), which is
    left as it is."""
    status = await pool.execute(
        "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
        " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag, source, start_time,"
        " conference_sid, price, price_unit, encryption_details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
        " $17::jsonb)"
        " ON CONFLICT DO NOTHING",
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
        recording.price,
        recording.price_unit,
        None if recording.encryption_details is None else json.dumps(recording.encryption_details),
    )
    return bool(status == "INSERT 0 1")
