"""Peaks made right after ingest: a job per recording on the MP3's queue (pgqueuer), taken by
`recordings worker` and run through the same single flight as a request."""

from __future__ import annotations

import contextlib
import logging

from pgqueuer.queries import Queries

from db.pool import Pool
from db.recordings import Recording, fetch_recording
from service.mp3.queue import job_payload
from service.mp3.transcoder import RecordingGone, TranscodeFailed, Transcoder, TranscoderBusy
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


async def ensure_mp3_and_peaks(
    transcoder: Transcoder, peaks: PeaksMaker, recording: Recording
) -> Recording:
    """The recording with its MP3 made; its peaks too when they were due, from the same decode
    (one ffmpeg run instead of two)."""
    tap = None if recording.mp3_key else await peaks.tap(recording)
    return await transcoder.ensure_mp3(recording, peaks=tap, store_peaks=peaks.store_tapped)


async def make_peaks(
    pool: Pool, peaks: PeaksMaker, transcoder: Transcoder, account_sid: str, sid: str
) -> None:
    """One job: the path a Peaks.json request takes when it finds none; when the MP3 is due as
    well (its job is queued beside this one), both come from one decode."""
    recording = await fetch_recording(pool, account_sid, sid)
    if recording is None:
        return
    if _mp3_due(recording):
        # Joins the MP3 job's run when that one came first, here or on another worker.
        with contextlib.suppress(RecordingGone, TranscodeFailed, TranscoderBusy):
            await ensure_mp3_and_peaks(transcoder, peaks, recording)
    try:
        await peaks.ensure_peaks(recording)
    except (PeaksGone, PeaksFailed) as exc:
        log.info("no peaks for %s: %s", sid, exc)


def _mp3_due(recording: Recording) -> bool:
    return (
        not recording.mp3_key and not recording.mp3_error and recording.encryption_details is None
    )
