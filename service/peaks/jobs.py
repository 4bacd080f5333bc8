"""Peaks made right after ingest: a job per recording on the MP3's queue (pgqueuer), taken by
`recordings worker` and run through the same single flight as a request."""

from __future__ import annotations

import logging

from pgqueuer.queries import Queries

from db.pool import Pool
from db.recordings import fetch_recording
from service.mp3.queue import job_payload
from service.peaks.maker import PeaksFailed, PeaksGone, PeaksMaker

log = logging.getLogger(__name__)
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


async def make_peaks(pool: Pool, peaks: PeaksMaker, account_sid: str, sid: str) -> None:
    """One job: the path a Peaks.json request takes when it finds none."""
    recording = await fetch_recording(pool, account_sid, sid)
    if recording is None:
        return
    try:
        await peaks.ensure_peaks(recording)
    except (PeaksGone, PeaksFailed) as exc:
        log.info("no peaks for %s: %s", sid, exc)
