"""Turning an audio file into a durable recording: validate, measure, store, then insert."""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import anyio
import asyncpg

from db.pool import Pool
from db.public_keys import PublicKey, fetch_encryption_key
from db.recordings import Recording, insert_recording
from service.audio.ffmpeg import FfmpegSlots
from service.audio.probe import AudioError, prepare_wav
from service.callbacks.outbox import IMPORT_FALLBACK_BASE_URL, CallbackTarget, new_callback
from service.encryption.cipher import CIPHERTEXT_TYPE, encrypt_file
from service.ingest.receiver import Streamed
from service.logs import request_id
from service.mp3 import queue
from service.peaks.jobs import enqueue_peaks
from service.recordings.objects import CONTENT_TYPES, etag_of, file_etag, object_key
from service.settings import Settings
from service.sids import new_sid
from storage.client import Storage

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


@dataclass(frozen=True)
class Sealing:
    """How an account stores its new recordings, as read when an upload began: encrypted with
    ``key``, or in the clear (None)."""

    key: PublicKey | None


async def sealing_of(db: Pool, account_sid: str) -> Sealing:
    """The account's rule for new recordings, read now."""
    return Sealing(await fetch_encryption_key(db, account_sid))


class Clients(Protocol):
    """What ingest uses of the process's long-lived clients; `Services` is one (its callers pass
    theirs), and the pipeline never imports the composition root that builds them."""

    @property
    def settings(self) -> Settings: ...
    @property
    def pool(self) -> Pool: ...
    @property
    def storage(self) -> Storage: ...
    @property
    def ffmpeg_slots(self) -> FfmpegSlots: ...


async def ingest_file(
    services: Clients,
    upload: Upload,
    source: Path,
    workdir: Path,
    *,
    sealing: Sealing | None = None,
    sha256: str | None = None,
) -> Recording:
    """Store ``source`` as a new recording; the row is written only once the object is durable.

    Raises AudioError for input that is not usable audio; the account must exist. ``workdir``
    takes the normalised WAV when the upload needs one, and the ciphertext when the account
    encrypts its recordings: the plaintext is measured here, and only the ciphertext is stored.
    ``sealing`` is the account's rule as the caller read it before the body (read here if None).
    ``sha256`` (hex) is the source's digest when it was taken as the upload was received.
    """
    settings = services.settings
    wav, info = await prepare_wav(
        source,
        workdir,
        ffmpeg=settings.ffmpeg_path,
        timeout=settings.ffmpeg_timeout,
        max_seconds=settings.max_duration_seconds,
        slots=services.ffmpeg_slots,
    )
    measured = Measured(
        duration=info.whole_seconds, sample_rate=info.sample_rate, channels=info.channels
    )
    if sealing is None:
        sealing = await sealing_of(services.pool, upload.account_sid)
    key = sealing.key
    if key is None:
        # A WAV stored as it came has the digest taken while it was received: one read less.
        known = etag_of(sha256) if sha256 is not None and wav == source else None
        return await store_recording(services, upload, wav, measured, etag=known)
    # A name of its own: callers may share one workdir between ingests.
    sealed = workdir / f"sealed-{uuid.uuid4().hex}"
    try:
        encrypted = await anyio.to_thread.run_sync(
            functools.partial(
                encrypt_file, wav, sealed, public_key_sid=key.sid, public_key_pem=key.public_key
            )
        )
    finally:
        if wav != source:
            # The normalised plaintext is ours: gone at once, not with the request's workdir.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(functools.partial(wav.unlink, missing_ok=True))
    try:
        return await store_recording(
            services,
            upload,
            sealed,
            measured,
            etag=etag_of(encrypted.sha256),
            encryption_details=encrypted.details,
        )
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(functools.partial(sealed.unlink, missing_ok=True))


@dataclass(frozen=True)
class Measured:
    """What ingest measured of the audio (from the plaintext, when it is stored encrypted)."""

    duration: int
    sample_rate: int
    channels: int


async def store_recording(
    services: Clients,
    upload: Upload,
    path: Path,
    measured: Measured,
    *,
    etag: str | None = None,
    encryption_details: dict[str, str] | None = None,
) -> Recording:
    """Store ``path`` as it is as a new recording's object, then its row; ``etag`` when its
    SHA-256 is already known (else it is read here).

    With ``encryption_details``, ``path`` is the recording's ciphertext (made here, or a
    Twilio-encrypted recording copied as it is: nothing is decrypted or encrypted again), and
    no MP3 or peaks are ever made of it.
    """
    storage = services.storage
    if etag is None:
        etag = await anyio.to_thread.run_sync(file_etag, path)
    size = path.stat().st_size
    sid = new_sid("RE")
    key = object_key(storage, upload.account_sid, sid, "wav")
    content_type = CIPHERTEXT_TYPE if encryption_details is not None else CONTENT_TYPES["wav"]
    await storage.upload_file(key, path, content_type)
    stored = Stored(sid, key, size, etag)
    return await record_stored(services, upload, stored, measured, encryption_details)


async def ingest_streamed(
    services: Clients, upload: Upload, streamed: Streamed, size: int, sha256: bytes
) -> Recording:
    """Make the recording of a body already streamed to storage (``service.ingest.receiver``):
    complete its upload, then write its row. The caller aborts the upload if this raises
    before completing it (``Received.discard``)."""
    info = streamed.info
    if info.duration_seconds > services.settings.max_duration_seconds:
        raise AudioError(
            "The uploaded audio is longer than the limit of"
            f" {services.settings.max_duration_seconds:.0f} seconds"
        )
    measured = Measured(
        duration=info.whole_seconds, sample_rate=info.sample_rate, channels=info.channels
    )
    await streamed.write.complete()
    stored = Stored(streamed.sid, streamed.write.key, size, etag_of(sha256.hex()))
    return await record_stored(services, upload, stored, measured, None)


@dataclass(frozen=True)
class Stored:
    """A new recording's object, durable in storage: its SID, key, size and strong ETag."""

    sid: str
    key: str
    size: int
    etag: str


async def record_stored(
    services: Clients,
    upload: Upload,
    stored: Stored,
    measured: Measured,
    encryption_details: dict[str, str] | None,
) -> Recording:
    """Write the row (and its status callback) of an object already stored, and queue its MP3
    and peaks; the object is removed again if PostgreSQL refuses the row."""
    settings, storage = services.settings, services.storage
    sid, key = stored.sid, stored.key
    created = upload.date_created or datetime.now(UTC)
    try:
        row = Recording(
            sid=sid,
            account_sid=upload.account_sid,
            call_sid=upload.call_sid,
            duration=measured.duration,
            date_created=created,
            date_updated=created,
            sample_rate=measured.sample_rate,
            channels=measured.channels,
            wav_key=key,
            wav_size=stored.size,
            wav_etag=stored.etag,
            mp3_key=None,
            mp3_size=None,
            mp3_etag=None,
            mp3_error=None,
            source=upload.source,
            # Stored, not only defaulted on read: what the row says is what every face shows.
            start_time=upload.start_time or created,
            conference_sid=upload.conference_sid,
            encryption_details=encryption_details,
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
    if settings.transcode_on_ingest and encryption_details is None:
        try:
            account = recording.account_sid
            await queue.enqueue_mp3(services.pool, account, sid, request_id=request_id.get())
            await enqueue_peaks(services.pool, account, sid, request_id=request_id.get())
        except Exception as exc:
            # The recording is safe; its MP3 and peaks will be made on first request instead.
            log.warning("could not enqueue the MP3 or peaks of %s: %s", sid, exc)
    return recording
