"""Peaks made once per recording across every replica: decoded by ffmpeg, reduced as they
stream, stored, then recorded; the MP3's rule (service.mp3.transcoder) for another product."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sys
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import anyio
import ffmpeg as ffmpeg_lib

from db.peaks import StoredPeaks, fetch_peaks_state, set_peaks, set_peaks_error
from db.pool import Db, Pool
from db.recordings import Recording
from service.audio.ffmpeg import FfmpegResult, FfmpegSlots, run_ffmpeg
from service.flights import OncePerRecording
from service.peaks.reducer import PeakReducer
from service.peaks.tap import PeaksTap, TappedPeaks
from service.peaks.waveform import Waveform, samples_per_pixel
from service.recordings.objects import CONTENT_TYPES, object_key
from storage.client import Storage

log = logging.getLogger(__name__)
UNDECODABLE = "The recording's audio could not be decoded for its waveform"
# The advisory locks' class of peaks runs (service.flights); the MP3s have their own.
_LOCK_CLASS = 0x5045414B  # "PEAK"
# Native byte order, so the reducer reads the samples without swapping them.
_RAW_FORMAT = "s16le" if sys.byteorder == "little" else "s16be"


class PeaksFailed(Exception):
    """No peaks could be made; ``permanent`` when retrying would fail the same way."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class PeaksBusy(Exception):
    """Too many peaks already being made or waited for here."""


class PeaksGone(Exception):
    """The recording was deleted (or never was) while its peaks were wanted."""


def decode_args(ffmpeg: str, channels: int) -> list[str]:
    """The ffmpeg command line: WAV forced on stdin (pipe protocol only), raw 16-bit PCM of the
    recording's channels on stdout."""
    source = ffmpeg_lib.input("pipe:0", f="wav", protocol_whitelist="pipe")["a:0"]
    node = source.output("pipe:1", f=_RAW_FORMAT, acodec=f"pcm_{_RAW_FORMAT}", ac=channels)
    node = node.global_args("-nostdin", "-hide_banner", "-loglevel", "error")
    return cast(list[str], node.compile(cmd=ffmpeg))


@dataclass(frozen=True)
class Decoded:
    """What one decode gave: ffmpeg's outcome, the frames it wrote and their peaks."""

    result: FfmpegResult
    frames: int
    waveform: Waveform


async def decode_peaks(
    ffmpeg: str,
    source: AsyncIterable[bytes] | Path,
    *,
    channels: int,
    sample_rate: int,
    expected_frames: int,
    timeout: float,
) -> Decoded:
    """Decode a WAV with ffmpeg and reduce its samples to peaks as they stream out, at the
    resolution ``expected_frames`` calls for."""
    reducer = PeakReducer(
        channels=channels,
        sample_rate=sample_rate,
        samples_per_pixel=samples_per_pixel(sample_rate, expected_frames),
    )
    result = await run_ffmpeg(
        decode_args(ffmpeg, channels), source, timeout=timeout, output=reducer.feed
    )
    return Decoded(result, reducer.frames, reducer.finish())


class PeaksMaker:
    """Makes peaks: single-flight in this process, one ffmpeg per recording across processes."""

    def __init__(
        self,
        pool: Pool,
        storage: Storage,
        *,
        ffmpeg: Callable[[], str],
        timeout: float,
        slots: FfmpegSlots,
        capacity: int,
        on_run: Callable[[float, bool], None] | None = None,
        locks: Pool | None = None,
    ) -> None:
        self._pool = pool
        self._storage = storage
        self._ffmpeg = ffmpeg
        self._timeout = timeout
        # Told each ffmpeg run's seconds and whether it gave usable peaks (metrics).
        self._on_run = on_run
        self._flights: OncePerRecording[StoredPeaks] = OncePerRecording(
            pool,
            slots,
            lock_class=_LOCK_CLASS,
            capacity=capacity,
            timeout=timeout,
            busy=PeaksBusy,
            locks=locks,
        )

    async def ensure_peaks(self, recording: Recording) -> StoredPeaks:
        """The recording's stored peaks, making them (or waiting for them) when missing."""
        if recording.encryption_details is not None:
            # Its object is ciphertext: whatever queued a job for it, ffmpeg never reads it.
            raise PeaksFailed("The recording is encrypted", permanent=True)
        current = await self._settled(self._pool, recording.account_sid, recording.sid)
        if current is not None:
            return current
        return await self._flights.run(
            recording.sid,
            lambda db: self._settled(db, recording.account_sid, recording.sid),
            lambda: self._make(recording),
        )

    async def read_peaks(self, stored: StoredPeaks) -> bytes:
        """The stored document (tens of KB: read whole)."""
        return b"".join([chunk async for chunk in self._storage.iter_object(stored.key)])

    async def _settled(self, db: Db, account_sid: str, sid: str) -> StoredPeaks | None:
        """The stored peaks if they are settled (made, or failed for good: raised), else None."""
        state = await fetch_peaks_state(db, account_sid, sid)
        if state is None:
            raise PeaksGone()
        if state.error is not None:
            raise PeaksFailed(state.error, permanent=True)
        return state.stored

    async def _make(self, recording: Recording) -> StoredPeaks:
        expected = recording.duration * recording.sample_rate
        started = asyncio.get_running_loop().time()
        decoded = await decode_peaks(
            self._ffmpeg(),
            self._storage.iter_object(recording.wav_key),
            channels=recording.channels,
            sample_rate=recording.sample_rate,
            expected_frames=expected,
            timeout=self._timeout,
        )
        elapsed = asyncio.get_running_loop().time() - started
        if decoded.result.returncode is None:
            self._report(elapsed, False)
            log.error("ffmpeg timed out decoding %s after %.0f s", recording.sid, self._timeout)
            raise PeaksFailed("Decoding the audio timed out", permanent=False)
        # ffmpeg trusts a WAV header's sizes and exits 0 on a truncated file: compare the frames
        # decoded with the recording's measured duration instead.
        rate = recording.sample_rate
        short = decoded.frames < max(expected - 1.5 * rate, 0.5 * expected)
        if not decoded.result.ok or decoded.frames == 0 or short:
            self._report(elapsed, False)
            log.error(
                "ffmpeg could not decode %s for peaks (exit %s, %d frames): %s",
                recording.sid,
                decoded.result.returncode,
                decoded.frames,
                decoded.result.stderr,
            )
            await set_peaks_error(self._pool, recording.account_sid, recording.sid, UNDECODABLE)
            raise PeaksFailed(UNDECODABLE, permanent=True)
        self._report(elapsed, True)
        return await self._store(recording, decoded.waveform, elapsed)

    async def tap(self, recording: Recording) -> PeaksTap | None:
        """A tap for another run's decode (the MP3's) to make these peaks with; None when they
        are made, failed for good, or cannot be (an encrypted or deleted recording)."""
        if recording.encryption_details is not None:
            return None
        try:
            if await self._settled(self._pool, recording.account_sid, recording.sid) is not None:
                return None
        except (PeaksGone, PeaksFailed):
            return None
        expected = recording.duration * recording.sample_rate
        return PeaksTap(
            channels=recording.channels,
            sample_rate=recording.sample_rate,
            samples_per_pixel=samples_per_pixel(recording.sample_rate, expected),
        )

    async def store_tapped(
        self, recording: Recording, tap: TappedPeaks, result: FfmpegResult, seconds: float
    ) -> StoredPeaks | None:
        """Store what ``tap`` read from a run that ended with ``result``, unless another run
        stored them first; None when they are not usable (a peaks run then decides)."""
        waveform = tap.finish()
        expected = recording.duration * recording.sample_rate
        short = tap.frames < max(expected - 1.5 * recording.sample_rate, 0.5 * expected)
        if not result.ok or tap.malformed or tap.frames == 0 or short:
            return None
        if (
            current := await self._settled(self._pool, recording.account_sid, recording.sid)
        ) is not None:
            return current
        self._report(seconds, True)
        return await self._store(recording, waveform, seconds)

    async def _store(self, recording: Recording, waveform: Waveform, elapsed: float) -> StoredPeaks:
        body = waveform.to_json(16)
        etag = f'"{hashlib.sha256(body).hexdigest()[:40]}"'
        key = object_key(self._storage, recording.account_sid, recording.sid, "peaks")
        await self._storage.put_bytes(key, body, CONTENT_TYPES["peaks"])
        stored = await set_peaks(
            self._pool, recording.account_sid, recording.sid, key=key, size=len(body), etag=etag
        )
        if stored is None:
            # Deleted while we worked: take the object away again (gc would, later).
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await self._storage.delete_objects([key])
            raise PeaksGone()
        log.info(
            "made the peaks of %s in %.2f s",
            recording.sid,
            elapsed,
            extra={"recording_sid": recording.sid, "peaks_bytes": len(body)},
        )
        return stored

    def _report(self, seconds: float, ok: bool) -> None:
        if self._on_run is not None:
            self._on_run(seconds, ok)
