"""Turning an audio file into a durable recording: validate, measure, store, then insert."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import anyio
import asyncpg

from db.pool import Pool
from db.recordings import Recording, insert_recording
from service import queue
from service.audio import prepare_wav
from service.logs import request_id
from service.sids import new_sid
from storage.client import Storage

log = logging.getLogger(__name__)
WAV_TYPE = "audio/x-wav"


def parse_timestamp(value: str) -> datetime:
    """An ISO-8601 or RFC 2822 timestamp; one without a zone is taken as UTC."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError) as exc:
            raise ValueError(f"not an ISO-8601 or RFC 2822 timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"timestamp out of range: {value!r}") from exc


def file_etag(path: Path) -> str:
    """A strong ETag: the SHA-256 of the stored bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return f'"{digest.hexdigest()[:40]}"'


def wav_key(storage: Storage, account_sid: str, sid: str) -> str:
    return storage.key(f"{account_sid}/{sid}.wav")


async def ingest_file(
    pool: Pool,
    storage: Storage,
    *,
    source: Path,
    workdir: Path,
    account_sid: str,
    call_sid: str,
    date_created: datetime | None,
    ffmpeg: str,
    ffmpeg_timeout: float,
    enqueue_mp3: bool = False,
) -> Recording:
    """Store ``source`` as a new recording; the row is written only once the object is durable.

    Raises AudioError for input that is not usable audio; the account must exist.
    """
    wav, info = await prepare_wav(source, workdir, ffmpeg=ffmpeg, timeout=ffmpeg_timeout)
    etag = await anyio.to_thread.run_sync(file_etag, wav)
    size = wav.stat().st_size
    sid = new_sid("RE")
    key = wav_key(storage, account_sid, sid)
    created = date_created or datetime.now(UTC)
    await storage.upload_file(key, wav, WAV_TYPE)
    try:
        recording = await insert_recording(
            pool,
            Recording(
                sid=sid,
                account_sid=account_sid,
                call_sid=call_sid,
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
            ),
        )
    except asyncpg.PostgresError:
        # PostgreSQL refused the row, so none points at this object: remove it now.
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await storage.delete_objects([key])
        raise
    # Any other failure (a timeout, a lost connection, a cancellation) may have come after the
    # commit: the object stays, and `recordings gc` removes it only if no row ever pointed at it.
    if enqueue_mp3:
        try:
            await queue.enqueue_mp3(pool, sid, request_id=request_id.get())
        except Exception as exc:
            # The recording is safe; its MP3 will be made on the first request instead.
            log.warning("could not enqueue the MP3 of %s: %s", sid, exc)
    return recording
