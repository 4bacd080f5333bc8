"""Mono mixes of recordings with two channels: a WAV and an MP3, each made once by ffmpeg
(single flight per mix, across replicas), stored beside the recording and served like it.

A downmixed WAV is made whole and cached rather than piped through ffmpeg per request: a
browser needs an exact Content-Length, byte ranges and a strong ETag for it as for any audio
(Safari drops media answered without a 206), and a pipe can give none of them. It costs half
the stored WAV again, once, for recordings whose mix someone asked for.

The mixes have no row of their own: their keys follow from the recording's (so a DELETE,
retention and gc remove them with it), and what they are is read from storage with a HEAD,
their ETag kept in the object's metadata.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, cast

import anyio
import ffmpeg as ffmpeg_lib

from db.pool import Db, Pool
from db.recordings import Recording, fetch_recording
from service.audio.ffmpeg import FfmpegSlots, run_ffmpeg
from service.flights import OncePerRecording
from service.mp3.commands import mp3_args, mp3_format
from service.mp3.transcoder import RecordingGone, TranscodeFailed, TranscoderBusy
from service.recordings.objects import CONTENT_TYPES, Kind, file_etag, object_key
from storage.client import Storage

log = logging.getLogger(__name__)
MixKind = Literal["wav", "mp3"]
_KINDS: dict[MixKind, Kind] = {"wav": "mono.wav", "mp3": "mono.mp3"}
# The advisory locks' classes of the two mixes (service.flights): one flight per mix.
_LOCK_CLASSES: dict[MixKind, int] = {"wav": 0x4D495857, "mp3": 0x4D49584D}  # "MIXW", "MIXM"
# The object metadata that carries the mix's ETag (the service's own, like every other one).
_ETAG_KEY = "etag"
_UNMIXABLE = "The recording's audio could not be mixed down to one channel"


@dataclass(frozen=True)
class Mix:
    """A stored mono mix."""

    key: str
    size: int
    etag: str
    created_at: datetime
    content_type: str


def mono_wav_args(ffmpeg: str, dst: Path) -> list[str]:
    """The stored WAV on stdin (pipe protocol only), its channels averaged into one, to a file."""
    source = ffmpeg_lib.input("pipe:0", f="wav", protocol_whitelist="pipe")["a:0"]
    node = source.output(
        f"file:{dst}",
        acodec="pcm_s16le",
        ac=1,
        f="wav",
        map_metadata=-1,
        fflags="+bitexact",
    )
    node = node.global_args("-nostdin", "-hide_banner", "-loglevel", "error").overwrite_output()
    return cast(list[str], node.compile(cmd=ffmpeg))


class Mixes:
    """Makes and finds the mono mixes."""

    def __init__(
        self,
        pool: Pool,
        storage: Storage,
        *,
        ffmpeg: Callable[[], str],
        timeout: float,
        slots: FfmpegSlots,
        capacity: int,
        tmp_dir: str | None = None,
        locks: Pool | None = None,
    ) -> None:
        # ``locks`` holds a flight's lock for its whole run: PostgreSQL itself, past any
        # transaction pooler, as the transcoder's and the peaks maker's flights do.
        self._pool = pool
        self._storage = storage
        self._ffmpeg = ffmpeg
        self._timeout = timeout
        self._tmp_dir = tmp_dir
        self._flights: dict[MixKind, OncePerRecording[Mix]] = {
            kind: OncePerRecording(
                pool,
                slots,
                lock_class=lock_class,
                capacity=capacity,
                timeout=timeout,
                busy=TranscoderBusy,
                locks=locks,
            )
            for kind, lock_class in _LOCK_CLASSES.items()
        }

    async def mono(self, recording: Recording, kind: MixKind) -> Mix:
        """The recording's stored mono mix of this kind, made first when missing."""
        key = object_key(self._storage, recording.account_sid, recording.sid, _KINDS[kind])
        found = await self._stored(key, kind)
        if found is not None:
            return found
        return await self._flights[kind].run(
            recording.sid,
            lambda db: self._settled(db, recording, key, kind),
            lambda: self._make(recording, key, kind),
        )

    async def _stored(self, key: str, kind: MixKind) -> Mix | None:
        head = await self._storage.head_object(key)
        if head is None:
            return None
        return Mix(
            key=key,
            size=head.size,
            etag=head.metadata.get(_ETAG_KEY) or head.etag,
            created_at=head.last_modified,
            content_type=CONTENT_TYPES[_KINDS[kind]],
        )

    async def _settled(self, db: Db, recording: Recording, key: str, kind: MixKind) -> Mix | None:
        if await fetch_recording(db, recording.account_sid, recording.sid) is None:
            raise RecordingGone()
        return await self._stored(key, kind)

    async def _make(self, recording: Recording, key: str, kind: MixKind) -> Mix:
        directory = Path(tempfile.mkdtemp(prefix="mix-", dir=self._tmp_dir))
        try:
            dst = directory / f"mono.{kind}"
            ffmpeg = self._ffmpeg()
            if kind == "wav":
                args = mono_wav_args(ffmpeg, dst)
            else:
                args = mp3_args(ffmpeg, dst, mp3_format(recording.sample_rate, 1))
            result = await run_ffmpeg(
                args, self._storage.iter_object(recording.wav_key), timeout=self._timeout
            )
            if result.returncode is None:
                raise TranscodeFailed("Mixing down timed out", permanent=False)
            size = dst.stat().st_size if dst.exists() else 0
            if not result.ok or size == 0:
                log.error(
                    "ffmpeg could not mix %s down (exit %s): %s",
                    recording.sid,
                    result.returncode,
                    result.stderr,
                )
                raise TranscodeFailed(_UNMIXABLE, permanent=True, detail=result.stderr)
            etag = await anyio.to_thread.run_sync(file_etag, dst)
            content_type = CONTENT_TYPES[_KINDS[kind]]
            await self._storage.upload_file(key, dst, content_type, metadata={_ETAG_KEY: etag})
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        # A DELETE acknowledged while ffmpeg ran must not be followed by its audio.
        if await fetch_recording(self._pool, recording.account_sid, recording.sid) is None:
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._storage.delete_objects([key])
            raise RecordingGone()
        stored = await self._stored(key, kind)
        if stored is None:
            raise TranscodeFailed(_UNMIXABLE, permanent=False)
        log.info("made the mono %s of %s (%d bytes)", kind, recording.sid, size)
        return stored
