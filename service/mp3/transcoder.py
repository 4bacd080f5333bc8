"""WAV to MP3: one ffmpeg per recording across every replica, made whole, stored, then served."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import anyio
import ffmpeg as ffmpeg_lib

from db.pool import Db, Pool
from db.recordings import Recording, fetch_recording_by_sid, set_mp3, set_mp3_error
from service.audio.ffmpeg import FfmpegSlots, run_ffmpeg
from service.flights import OncePerRecording
from service.recordings.objects import CONTENT_TYPES, file_etag, object_key
from storage.client import Storage

log = logging.getLogger(__name__)
MP3_TYPE = CONTENT_TYPES["mp3"]
# MPEG-1 and MPEG-2 Layer III rates. Chromium and Firefox also decode 8-12 kHz (MPEG-2.5),
# but Safari documents no support for it, so telephone audio is resampled up to 16 kHz.
_MP3_RATES = (16000, 22050, 24000, 32000, 44100, 48000)
_UNTRANSCODABLE = "The recording's audio could not be transcoded to MP3"
# The advisory locks' class of MP3 runs (service.flights); the peaks have their own.
_LOCK_CLASS = 0x4D503320  # "MP3 "


class TranscodeFailed(Exception):
    """No MP3 could be made; ``permanent`` when retrying would fail the same way."""

    def __init__(self, message: str, *, permanent: bool, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.detail = detail


class TranscoderBusy(Exception):
    """Too many transcodes already running or waiting here."""


class RecordingGone(Exception):
    """The recording was deleted while its MP3 was being made."""


@dataclass(frozen=True)
class Mp3Format:
    sample_rate: int
    channels: int
    bitrate: int  # bits per second, constant

    @property
    def bytes_per_second(self) -> float:
        return self.bitrate / 8


def mp3_format(sample_rate: int, channels: int) -> Mp3Format:
    """Speech-friendly CBR settings for a WAV of this layout."""
    rate = next((r for r in _MP3_RATES if r >= sample_rate), _MP3_RATES[-1])
    channels = 1 if channels == 1 else 2
    per_channel = 32_000 if rate <= 16000 else 48_000 if rate <= 24000 else 64_000
    return Mp3Format(rate, channels, per_channel * channels)


def mp3_args(ffmpeg: str, dst: Path, fmt: Mp3Format) -> list[str]:
    """The ffmpeg command line: WAV forced on stdin (pipe protocol only), CBR MP3 to a file."""
    source = ffmpeg_lib.input("pipe:0", f="wav", protocol_whitelist="pipe")["a:0"]
    # A seekable output gets the Info (Xing) frame that tells players the exact duration;
    # constant bitrate lets them seek by byte offset.
    node = source.output(
        f"file:{dst}",
        acodec="libmp3lame",
        ar=fmt.sample_rate,
        ac=fmt.channels,
        audio_bitrate=fmt.bitrate,
        f="mp3",
        write_xing=1,
        id3v2_version=0,
        map_metadata=-1,
        fflags="+bitexact",
    )
    node = node.global_args("-nostdin", "-hide_banner", "-loglevel", "error").overwrite_output()
    return cast(list[str], node.compile(cmd=ffmpeg))


class Transcoder:
    """Makes MP3s: single-flight in this process, one ffmpeg per recording across processes."""

    def __init__(
        self,
        pool: Pool,
        storage: Storage,
        *,
        ffmpeg: Callable[[], str],
        timeout: float,
        slots: FfmpegSlots,
        max_processes: int,
        max_waiting: int,
        tmp_dir: str | None = None,
        on_run: Callable[[float, bool], None] | None = None,
    ) -> None:
        self._pool = pool
        self._storage = storage
        self._ffmpeg = ffmpeg
        self._timeout = timeout
        self._tmp_dir = tmp_dir
        self._on_run = on_run
        self._flights: OncePerRecording[Recording] = OncePerRecording(
            pool,
            slots,
            lock_class=_LOCK_CLASS,
            capacity=max_processes + max_waiting,
            timeout=timeout,
            busy=TranscoderBusy,
        )

    @property
    def inflight(self) -> int:
        return self._flights.inflight

    async def ensure_mp3(self, recording: Recording) -> Recording:
        """The recording with its MP3 cached, making it (or waiting for it) when missing."""
        if recording.mp3_key:
            return recording
        if recording.mp3_error:
            raise TranscodeFailed(recording.mp3_error, permanent=True)
        return await self._flights.run(
            recording.sid,
            lambda db: self._current(db, recording.sid),
            lambda: self._transcode(recording),
        )

    async def _current(self, db: Db, sid: str) -> Recording | None:
        """The recording if its MP3 is settled (made or failed for good), else None."""
        current = await fetch_recording_by_sid(db, sid)
        if current is None:
            raise RecordingGone()
        if current.mp3_key:
            return current
        if current.mp3_error:
            raise TranscodeFailed(current.mp3_error, permanent=True)
        return None

    async def _transcode(self, recording: Recording) -> Recording:
        fmt = mp3_format(recording.sample_rate, recording.channels)
        started = asyncio.get_running_loop().time()
        with tempfile.TemporaryDirectory(prefix="mp3-", dir=self._tmp_dir) as tmp:
            dst = Path(tmp) / "out.mp3"
            # The WAV is opened by the feeder, so the storage round trip overlaps ffmpeg's start.
            result = await run_ffmpeg(
                mp3_args(self._ffmpeg(), dst, fmt),
                self._storage.iter_object(recording.wav_key),
                timeout=self._timeout,
            )
            elapsed = asyncio.get_running_loop().time() - started
            if result.returncode is None:
                self._report(elapsed, False)
                log.error("ffmpeg timed out on %s after %.0f s", recording.sid, self._timeout)
                raise TranscodeFailed("Transcoding timed out", permanent=False)
            size = dst.stat().st_size if dst.exists() else 0
            # ffmpeg trusts a WAV header's sizes and exits 0 on a truncated file: compare the
            # MP3's length with the recording's measured duration instead.
            expected = recording.duration * fmt.bytes_per_second
            short = size < max(expected - 1.5 * fmt.bytes_per_second, 0.5 * expected)
            if not result.ok or size == 0 or short:
                self._report(elapsed, False)
                log.error(
                    "ffmpeg failed on %s (exit %s, %d bytes): %s",
                    recording.sid,
                    result.returncode,
                    size,
                    result.stderr,
                )
                await set_mp3_error(self._pool, recording.sid, _UNTRANSCODABLE)
                raise TranscodeFailed(_UNTRANSCODABLE, permanent=True, detail=result.stderr)
            self._report(elapsed, True)
            log.info(
                "made the MP3 of %s in %.2f s",
                recording.sid,
                elapsed,
                extra={"recording_sid": recording.sid, "mp3_bytes": size},
            )
            etag = await anyio.to_thread.run_sync(file_etag, dst)
            key = object_key(self._storage, recording.account_sid, recording.sid, "mp3")
            await self._storage.upload_file(key, dst, MP3_TYPE)
        updated = await set_mp3(self._pool, recording.sid, key=key, size=size, etag=etag)
        if updated is None:
            # Deleted while we worked: take the MP3 away again (gc would, later).
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._storage.delete_objects([key])
            raise RecordingGone()
        return updated

    def _report(self, seconds: float, ok: bool) -> None:
        if self._on_run is not None:
            self._on_run(seconds, ok)
