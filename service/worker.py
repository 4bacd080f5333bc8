"""`recordings worker`: the job queue's consumer (MP3s and peaks, from one decode where both are
due) beside the status callbacks' dispatcher and the retention schedule. It opens the process's
clients itself, above the composition root, and hands each job what it uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
from pgqueuer import QueueManager
from pgqueuer.models import Job
from pgqueuer.queries import Queries

from db.pool import Pool
from db.recordings import Recording, fetch_recording
from service.callbacks.dispatcher import run_callbacks
from service.logs import new_request_id, request_id
from service.metrics import Metrics, serve_metrics
from service.mp3.queue import MP3_ENTRYPOINT, parse_payload
from service.mp3.transcoder import RecordingGone, TranscodeFailed, Transcoder, TranscoderBusy
from service.peaks.jobs import PEAKS_ENTRYPOINT
from service.peaks.maker import PeaksBusy, PeaksFailed, PeaksGone, PeaksMaker
from service.recordings.channels import mixed_to_mono
from service.recordings.retention import run_retention
from service.services import Services, open_services
from service.settings import Settings

log = logging.getLogger(__name__)


async def make_mp3(services: Services, account_sid: str, sid: str) -> None:
    """One job: the same single-flight paths a `.mp3` request takes (its mono mix too, for a
    recording that downloads as one); peaks not made yet are made from the same decode."""
    recording = await fetch_recording(services.pool, account_sid, sid)
    if recording is None:
        return
    try:
        await ensure_mp3_and_peaks(services.transcoder, services.peaks, recording)
        if mixed_to_mono(recording, None):
            # What a conference recording's .mp3 serves unless both channels are asked for.
            await services.mixes.mono(recording, "mp3")
    except (RecordingGone, TranscodeFailed) as exc:
        log.info("no MP3 for %s: %s", sid, exc)


async def consume(services: Services, stop: asyncio.Event, *, concurrency: int) -> None:
    """Take MP3 jobs until ``stop`` is set; reconnects when PostgreSQL goes away."""
    delay = 0.5
    while not stop.is_set():
        conn = None
        try:
            # LISTEN needs a connection of its own, not one from the pool, and a session: past
            # any transaction pooler.
            conn = await asyncpg.connect(services.settings.session_database_url)
            manager = QueueManager(Queries.from_asyncpg_connection(conn))

            @manager.entrypoint(MP3_ENTRYPOINT, accepts_context=False)
            async def mp3_job(job: Job) -> None:
                try:
                    await _run_job(job, lambda account, sid: make_mp3(services, account, sid))
                except TranscoderBusy:
                    log.warning("transcoder busy; the MP3 is made on its first request instead")

            @manager.entrypoint(PEAKS_ENTRYPOINT, accepts_context=False)
            async def peaks_job(job: Job) -> None:
                try:
                    await _run_job(
                        job,
                        lambda account, sid: make_peaks(
                            services.pool, services.peaks, services.transcoder, account, sid
                        ),
                    )
                except PeaksBusy:
                    log.warning("ffmpeg busy; the peaks are made on their first request instead")

            watcher = asyncio.create_task(_shutdown_on(stop, manager))
            try:
                delay = 0.5
                await manager.run(
                    batch_size=max(1, concurrency),
                    max_concurrent_tasks=2 * max(1, concurrency),
                    dequeue_timeout=timedelta(seconds=5),
                )
            finally:
                watcher.cancel()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("worker lost PostgreSQL (%s); reconnecting in %.1f s", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 10.0)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


async def _run_job(job: Job, work: Callable[[str, str], Awaitable[None]]) -> None:
    # The id of the ingest request that queued the job ties the logs together.
    offered = (job.headers or {}).get("request_id")
    token = request_id.set(new_request_id(offered if isinstance(offered, str) else None))
    try:
        recording = parse_payload(job.payload) if job.payload else None
        if recording is None:
            log.info("job %s names no account; its work waits for a request", job.id)
            return
        await work(*recording)
    finally:
        request_id.reset(token)


async def _shutdown_on(stop: asyncio.Event, manager: QueueManager) -> None:
    await stop.wait()
    manager.shutdown.set()


async def run_worker(settings: Settings) -> None:
    """`recordings worker`: consume MP3 jobs, deliver status callbacks and run the scheduled
    retention passes until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    metrics = Metrics()
    if settings.worker_metrics_port is not None:
        # A thread of its own: a scrape is answered even while ffmpeg work fills the loop.
        serve_metrics(
            metrics.registry,
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            settings.metrics_token,
        )
        log.info("worker metrics on port %d", settings.worker_metrics_port)
    async with open_services(settings, metrics) as services:
        log.info(
            "worker started: up to %d ffmpeg processes, %d callback deliveries at a time",
            settings.ffmpeg_max_processes,
            settings.callback_concurrency,
        )
        # One failing loop ends the other and the process: a supervisor restarts it whole.
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(consume(services, stop, concurrency=settings.ffmpeg_max_processes))
            tasks.create_task(run_callbacks(services.pool, settings, services.metrics, stop))
            tasks.create_task(
                run_retention(
                    services.pool,
                    services.storage,
                    services.metrics,
                    settings,
                    stop,
                    locks=services.locks,
                )
            )


async def ensure_mp3_and_peaks(
    transcoder: Transcoder, peaks: PeaksMaker, recording: Recording
) -> Recording:
    """The recording with its MP3 made; its peaks too when they were due, from the same read of
    its WAV (one ffmpeg run instead of two: a bare encode for a 16-bit PCM WAV)."""
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
