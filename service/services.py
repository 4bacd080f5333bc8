"""The long-lived clients every operation uses, opened once per process and closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from db.pool import Pool
from service.audio.ffmpeg import FfmpegSlots
from service.database import open_database, open_sessions
from service.ingest.receiver import StreamSlots
from service.limits import ClientSlots
from service.metrics import Metrics
from service.mp3.mixes import Mixes
from service.mp3.transcoder import Transcoder
from service.peaks.maker import PeaksMaker
from service.recordings.catalog import Catalog
from service.settings import Settings
from storage.client import Storage, StorageConfig, open_storage


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: Pool
    # Connections that keep a session: the advisory locks of the single flights and the
    # retention pass. PostgreSQL itself when ``pool`` goes through a pooler, else ``pool``.
    locks: Pool
    storage: Storage
    catalog: Catalog
    transcoder: Transcoder
    peaks: PeaksMaker
    # The mono mixes of two-channel recordings (RequestedChannels, conferences).
    mixes: Mixes
    ffmpeg_slots: FfmpegSlots
    metrics: Metrics
    # Open media streams per client address, in this process.
    client_streams: ClientSlots
    # Ingests sending their body on to storage as it arrives, in this process.
    ingest_streams: StreamSlots


def storage_config(settings: Settings) -> StorageConfig:
    """The storage client's configuration from the settings."""
    return StorageConfig(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        region=settings.s3_region,
        key_prefix=settings.s3_key_prefix,
        max_connections=settings.s3_max_connections,
        timeout=settings.s3_timeout,
        pool_timeout=settings.s3_pool_timeout,
        presign_endpoint_url=settings.presign_endpoint_url,
    )


@asynccontextmanager
async def open_services(
    settings: Settings, metrics: Metrics | None = None
) -> AsyncIterator[Services]:
    """Open the database pool and the storage client; close both on the way out."""
    metrics = metrics or Metrics()
    async with AsyncExitStack() as stack:
        pool = await stack.enter_async_context(open_database(settings))
        locks = pool
        if settings.database_pooled:
            # One per ffmpeg run holding its flight's lock, one for the retention pass.
            locks = await stack.enter_async_context(
                open_sessions(settings, max_size=settings.ffmpeg_max_processes + 1)
            )
        storage = await stack.enter_async_context(open_storage(storage_config(settings)))
        # Every ffmpeg this process runs (uploads to normalise, MP3s, peaks) takes one of these.
        ffmpeg_slots = FfmpegSlots(settings.ffmpeg_max_processes, settings.ffmpeg_max_waiting)
        transcoder = Transcoder(
            pool,
            storage,
            slots=ffmpeg_slots,
            ffmpeg=lambda: settings.ffmpeg_path,
            timeout=settings.ffmpeg_timeout,
            max_processes=settings.ffmpeg_max_processes,
            max_waiting=settings.ffmpeg_max_waiting,
            tmp_dir=settings.tmp_dir,
            on_run=metrics.record_transcode,
            locks=locks,
        )
        peaks = PeaksMaker(
            pool,
            storage,
            ffmpeg=lambda: settings.ffmpeg_path,
            timeout=settings.ffmpeg_timeout,
            slots=ffmpeg_slots,
            capacity=settings.ffmpeg_max_processes + settings.ffmpeg_max_waiting,
            on_run=metrics.record_peaks,
            locks=locks,
        )
        mixes = Mixes(
            pool,
            storage,
            ffmpeg=lambda: settings.ffmpeg_path,
            timeout=settings.ffmpeg_timeout,
            slots=ffmpeg_slots,
            capacity=settings.ffmpeg_max_processes + settings.ffmpeg_max_waiting,
            tmp_dir=settings.tmp_dir,
            locks=locks,
        )
        catalog = Catalog(
            pool,
            storage,
            keep_deleted_objects=settings.deleted_retention_seconds > 0,
            soft_delete_retention=timedelta(days=settings.soft_delete_retention_days),
        )
        yield Services(
            settings=settings,
            pool=pool,
            locks=locks,
            storage=storage,
            catalog=catalog,
            transcoder=transcoder,
            peaks=peaks,
            mixes=mixes,
            ffmpeg_slots=ffmpeg_slots,
            metrics=metrics,
            client_streams=ClientSlots(
                settings.max_streams_per_client, settings.max_stalled_streams_per_client
            ),
            ingest_streams=StreamSlots(settings.ingest_max_streamed),
        )
