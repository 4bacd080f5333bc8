"""Turning an audio file into a durable recording: validate, measure, store, then insert."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import asyncpg

from db.recordings import Recording, insert_recording
from service.audio.probe import prepare_wav
from service.callbacks.outbox import IMPORT_FALLBACK_BASE_URL, CallbackTarget, new_callback
from service.logs import request_id
from service.mp3 import queue
from service.peaks.jobs import enqueue_peaks
from service.recordings.objects import CONTENT_TYPES, file_etag, object_key
from service.services import Services
from service.sids import new_sid

log = logging.getLogger(__name__)


# How a recording was made, as the 2010 API names it (twilio-oai `recording_enum_source`); the
# database's CHECK holds the same list.
SOURCES = (
    "DialVerb",
    "Conference",
    "OutboundAPI",
    "Trunking",
    "RecordVerb",
    "StartCallRecordingAPI",
    "StartConferenceRecordingAPI",
)
DEFAULT_SOURCE = "RecordVerb"


@dataclass(frozen=True)
class Upload:
    """What the voice platform says of one recording, besides its audio."""

    account_sid: str
    call_sid: str
    date_created: datetime | None = None
    source: str = DEFAULT_SOURCE
    start_time: datetime | None = None
    conference_sid: str | None = None
    # The ingest's own status callback; None: the account's default, if it has one.
    status_callback: CallbackTarget | None = None
    # Where the service was reached, for the callback's RecordingUrl when RECORDINGS_PUBLIC_URL
    # is unset (None: `recordings import`, which was reached nowhere).
    base_url: str | None = None


async def ingest_file(services: Services, upload: Upload, source: Path, workdir: Path) -> Recording:
    """Store ``source`` as a new recording; the row is written only once the object is durable.

    Raises AudioError for input that is not usable audio; the account must exist. ``workdir``
    takes the normalised WAV when the upload needs one.
    """
    settings, storage = services.settings, services.storage
    wav, info = await prepare_wav(
        source,
        workdir,
        ffmpeg=settings.ffmpeg_path,
        timeout=settings.ffmpeg_timeout,
        max_seconds=settings.max_duration_seconds,
        slots=services.ffmpeg_slots,
    )
    etag = await anyio.to_thread.run_sync(file_etag, wav)
    size = wav.stat().st_size
    sid = new_sid("RE")
    key = object_key(storage, upload.account_sid, sid, "wav")
    created = upload.date_created or datetime.now(UTC)
    await storage.upload_file(key, wav, CONTENT_TYPES["wav"])
    try:
        row = Recording(
            sid=sid,
            account_sid=upload.account_sid,
            call_sid=upload.call_sid,
            duration=info.whole_seconds,
            date_created=created,
            date_updated=created,
            sample_rate=info.sample_rate,
            channels=info.channels,
            wav_key=key,
            wav_size=size,
            wav_etag=etag,
            mp3_key=None,
            mp3_size=None,
            mp3_etag=None,
            mp3_error=None,
            source=upload.source,
            start_time=upload.start_time,
            conference_sid=upload.conference_sid,
        )
        # The recording and its status callback are one statement (an outbox): a committed
        # recording always has its callback queued, and a refused one queues none.
        callback = new_callback(
            row,
            upload.status_callback,
            base_url=settings.public_url or upload.base_url or IMPORT_FALLBACK_BASE_URL,
            request_id=request_id.get(),
            window_seconds=settings.callback_retry_window_seconds,
        )
        recording = await insert_recording(services.pool, row, callback)
    except asyncpg.PostgresError:
        # PostgreSQL refused the row, so none points at this object: remove it now.
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await storage.delete_objects([key])
        raise
    # Any other failure (a timeout, a lost connection, a cancellation) may have come after the
    # commit: the object stays, and `recordings gc` removes it only if no row ever pointed at it.
    if settings.transcode_on_ingest:
        try:
            account = recording.account_sid
            await queue.enqueue_mp3(services.pool, account, sid, request_id=request_id.get())
            await enqueue_peaks(services.pool, account, sid, request_id=request_id.get())
        except Exception as exc:
            # The recording is safe; its MP3 and peaks will be made on first request instead.
            log.warning("could not enqueue the MP3 or peaks of %s: %s", sid, exc)
    return recording
