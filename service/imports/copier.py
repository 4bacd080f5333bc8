"""One recording brought over: its media fetched to an anonymous file, stored under the
recording's own key, its row inserted with the source's SID and fields, then, if asked, its
copy verified and the source's deleted."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import UTC
from typing import BinaryIO

import httpx

from db.imports import fetch_present, insert_imported
from db.recordings import Recording
from service.audio.probe import parse_pcm_wav_file
from service.imports.media import Fetched, fetch_media
from service.imports.retries import SourceError, with_retries
from service.imports.source import SourceRecording, TwilioSource
from service.ingest.pipeline import SOURCES
from service.mp3.queue import enqueue_mp3
from service.peaks.jobs import enqueue_peaks
from service.recordings.objects import CONTENT_TYPES, etag_of, object_key
from service.services import Services
from service.sids import is_call_sid, is_conference_sid, is_recording_sid
from storage.client import PART_SIZE


class CopyRefused(SourceError):
    """The source's recording cannot be kept here as it is (a missing field, not a WAV...)."""


@dataclass(frozen=True)
class Copy:
    """Where a recording goes: the local account, and what to do besides storing it."""

    account_sid: str
    derive: bool = False
    delete_source: bool = False


def check_fields(item: SourceRecording) -> None:
    """Refuse, before any media is fetched, what the service cannot store as the source has it."""
    if not is_recording_sid(item.sid):
        raise CopyRefused(f"not a RecordingSid: {item.sid!r}")
    if item.call_sid is None or not is_call_sid(item.call_sid):
        raise CopyRefused(f"no CallSid the service can keep: {item.call_sid!r}")
    if item.conference_sid is not None and not is_conference_sid(item.conference_sid):
        raise CopyRefused(f"not a ConferenceSid: {item.conference_sid!r}")
    if item.date_created is None:
        raise CopyRefused("no date_created")
    if item.source is not None and item.source not in SOURCES:
        raise CopyRefused(f"unknown source {item.source!r}")
    details = item.encryption_details
    if details is not None and (
        details.get("type") != "rsa-aes"
        or not all(details.get(name) for name in ("public_key_sid", "encrypted_cek", "iv"))
    ):
        raise CopyRefused(f"encryption_details this service cannot keep: {sorted(details)}")
    if not item.media_url:
        raise CopyRefused("no media_url")


# The sample rate recorded for an imported encrypted recording, whose header cannot be read.
ENCRYPTED_SAMPLE_RATE = 8000


async def _abort_leftover_uploads(services: Services, key: str) -> None:
    # A run killed mid multipart upload leaves its parts; this key is only ever written by the
    # import of this SID, so they are ours to drop before writing it again.
    storage = services.storage
    name = key[len(storage.key("")) :]
    async for found, upload_id, _started in storage.list_unfinished_uploads(name):
        if found == key:
            await storage.abort_upload(found, upload_id)


async def _stored_sha256(services: Services, key: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    async for chunk in services.storage.iter_object(key, 1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


async def verify_stored(services: Services, key: str, fetched: Fetched) -> None:
    """Raise unless storage holds exactly what was read from the source (size and SHA-256)."""
    size, sha256 = await _stored_sha256(services, key)
    if (size, sha256) != (fetched.size, fetched.sha256):
        raise SourceError(f"verification failed: stored {size} bytes, read {fetched.size}")


def _row(
    item: SourceRecording, copy: Copy, key: str, fetched: Fetched, file: BinaryIO
) -> Recording:
    if item.encryption_details is not None:
        # Ciphertext, kept as it is: nothing here can read its header. Twilio records calls at
        # 8 kHz, and gives the channels.
        sample_rate, channels = ENCRYPTED_SAMPLE_RATE, item.channels
    else:
        file.seek(0)
        info = parse_pcm_wav_file(file, fetched.size)
        if info is None:
            raise CopyRefused("the media is not a PCM WAV")
        sample_rate, channels = info.sample_rate, item.channels or info.channels
    assert item.date_created is not None and item.call_sid is not None
    created = item.date_created.astimezone(UTC)
    return Recording(
        sid=item.sid,
        account_sid=copy.account_sid,
        call_sid=item.call_sid,
        duration=item.duration,
        date_created=created,
        date_updated=(item.date_updated or item.date_created).astimezone(UTC),
        sample_rate=sample_rate,
        channels=channels,
        wav_key=key,
        wav_size=fetched.size,
        wav_etag=etag_of(fetched.sha256),
        mp3_key=None,
        mp3_size=None,
        mp3_etag=None,
        mp3_error=None,
        source=item.source or "RecordVerb",
        start_time=item.start_time.astimezone(UTC) if item.start_time else None,
        conference_sid=item.conference_sid,
        encryption_details=item.encryption_details,
        price=item.price,
        price_unit=item.price_unit,
    )


async def copy_recording(
    services: Services,
    source: TwilioSource,
    http: httpx.AsyncClient,
    item: SourceRecording,
    copy: Copy,
) -> Fetched | None:
    """Bring one recording over; None when an earlier run (or a concurrent one) already had.

    Crash safety: the object goes to the recording's own key before its row exists, so a run
    killed in between leaves an object that the next run overwrites and then names, or that
    `recordings gc` removes after its grace period if no run comes back.
    """
    assert item.media_url is not None
    key = object_key(services.storage, copy.account_sid, item.sid, "wav")
    tmp_dir = services.settings.tmp_dir
    # Anonymous (unlinked at once on Linux): a run killed with SIGKILL leaves no file behind.
    with tempfile.TemporaryFile(dir=tmp_dir) as file:
        fetched = await with_retries(
            lambda: fetch_media(http, item.media_url or "", source.auth, item.channels, file)
        )
        row = _row(item, copy, key, fetched, file)
        if fetched.size > PART_SIZE:
            await _abort_leftover_uploads(services, key)
        await services.storage.upload_fileobj(key, file, fetched.size, CONTENT_TYPES["wav"])
    if not await insert_imported(services.pool, row):
        if item.sid in await fetch_present(services.pool, copy.account_sid, [item.sid]):
            return None  # a concurrent run stored the same recording under the same key
        # Another account here holds this SID: our object is named by no row, so it goes.
        await services.storage.delete_objects([key])
        raise CopyRefused("this RecordingSid belongs to another account here")
    if copy.derive and item.encryption_details is None:
        await enqueue_mp3(services.pool, copy.account_sid, item.sid)
        await enqueue_peaks(services.pool, copy.account_sid, item.sid)
    if copy.delete_source:
        await verify_stored(services, key, fetched)
        await source.delete(item.account_sid, item.sid)
    return fetched


async def delete_copied_source(
    services: Services,
    source: TwilioSource,
    http: httpx.AsyncClient,
    item: SourceRecording,
    copy: Copy,
) -> None:
    """--delete-source for a recording an earlier run copied: read the source once more and
    delete it only if storage holds the same bytes."""
    assert item.media_url is not None
    key = object_key(services.storage, copy.account_sid, item.sid, "wav")
    with tempfile.TemporaryFile(dir=services.settings.tmp_dir) as file:
        fetched = await with_retries(
            lambda: fetch_media(http, item.media_url or "", source.auth, item.channels, file)
        )
    await verify_stored(services, key, fetched)
    await source.delete(item.account_sid, item.sid)
