"""Recordings brought over from Twilio: their rows, inserted with the source's own SIDs."""

from __future__ import annotations

from dataclasses import dataclass

from db.pool import Pool
from db.recordings import INSERT_RECORDING, Recording, stored_values


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
        f"{INSERT_RECORDING} ON CONFLICT DO NOTHING", *stored_values(recording)
    )
    return bool(status == "INSERT 0 1")
