"""Peaks made right after ingest: a job per recording on the MP3's queue (pgqueuer), taken by
`recordings worker` (service.worker) and run through the same single flight as a request."""

from __future__ import annotations

from pgqueuer.queries import Queries

from db.pool import Pool
from service.mp3.queue import job_payload

PEAKS_ENTRYPOINT = "recordings.peaks"


async def enqueue_peaks(
    pool: Pool, account_sid: str, sid: str, *, request_id: str | None = None
) -> None:
    """Ask the workers for this recording's peaks; the dedupe key keeps one job per recording."""
    await Queries.from_asyncpg_pool(pool).enqueue(
        PEAKS_ENTRYPOINT,
        job_payload(account_sid, sid),
        dedupe_key=f"peaks:{sid}",
        headers={"request_id": request_id} if request_id else None,
        on_conflict="skip",
    )
