"""WAV to MP3: one ffmpeg per recording across every replica, made whole, then stored while the
first answer is served from the finished file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import anyio

from db.pool import Db, Pool
from db.recordings import Recording, fetch_recording, set_mp3, set_mp3_error
from service.audio.ffmpeg import FfmpegResult, FfmpegSlots, run_ffmpeg
from service.flights import OncePerRecording, Unfinished
from service.mp3.commands import Mp3Format, mp3_args, mp3_format
from service.mp3.with_peaks import encode_with_peaks
from service.peaks.tap import PeaksTap, TappedPeaks
from service.recordings.objects import CONTENT_TYPES, file_etag, object_key
from storage.client import Storage

log = logging.getLogger(__name__)
MP3_TYPE = CONTENT_TYPES["mp3"]
_UNTRANSCODABLE = "The recording's audio could not be transcoded to MP3"
# The advisory locks' class of MP3 runs (service.flights); the peaks have their own.
_LOCK_CLASS = 0x4D503320  # "MP3 "
# An MP3 up to this size (8 minutes of telephone audio) is hashed on the event loop: a couple
# of milliseconds, less than a worker thread's round trip on the way to the first answer.
_INLINE_HASH_BYTES = 2 * 1024 * 1024
# Stores the peaks a run read through its tap (service.peaks.maker.PeaksMaker.store_tapped).
PeaksStore = Callable[[Recording, TappedPeaks, FfmpegResult, float], Awaitable[object]]


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


class LocalMp3:
    """An MP3 just made, in its temporary file: served from there while it is being stored.

    The file goes once it is stored (or failed to be) and no response reads it any more.
    """

    def __init__(self, recording: Recording, path: Path, directory: Path) -> None:
        # The recording with its MP3's facts as they are being stored.
        self.recording = recording
        self.path = path
        self._directory = directory
        self._holders = 1  # the store itself
        self.stored: asyncio.Future[Recording] = asyncio.get_running_loop().create_future()
        # Nobody may wait for it: its failure is logged by the store, not reported as lost.
        self.stored.add_done_callback(lambda f: f.cancelled() or f.exception())

    def hold(self) -> HeldMp3 | None:
        """The file kept for a reader until it releases it; None when it is already gone."""
        if self._holders == 0:
            return None
        self._holders += 1
        return HeldMp3(self.recording, self.path, _once(self.release))

    def release(self) -> None:
        self._holders -= 1
        if self._holders == 0:
            shutil.rmtree(self._directory, ignore_errors=True)


@dataclass(frozen=True)
class HeldMp3:
    """A just-made MP3's file, kept until ``release()`` (which may be called more than once)."""

    recording: Recording
    path: Path
    release: Callable[[], None]


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done = False

    def once() -> None:
        nonlocal done
        if not done:
            done = True
            action()

    return once


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
        locks: Pool | None = None,
    ) -> None:
        self._pool = pool
        self._storage = storage
        self._ffmpeg = ffmpeg
        self._timeout = timeout
        self._tmp_dir = tmp_dir
        self._on_run = on_run
        self._flights: OncePerRecording[Recording | LocalMp3] = OncePerRecording(
            pool,
            slots,
            lock_class=_LOCK_CLASS,
            capacity=max_processes + max_waiting,
            timeout=timeout,
            busy=TranscoderBusy,
            locks=locks,
        )

    @property
    def inflight(self) -> int:
        return self._flights.inflight

    async def ensure_mp3(
        self,
        recording: Recording,
        *,
        peaks: PeaksTap | None = None,
        store_peaks: PeaksStore | None = None,
    ) -> Recording:
        """The recording with its MP3 cached, making it (or waiting for it) when missing; a run
        started here with ``peaks`` also makes the peaks from the same read of the WAV
        (service.mp3.with_peaks) and hands them to ``store_peaks``."""
        made = await self._made(recording, peaks, store_peaks)
        if isinstance(made, LocalMp3):
            return await asyncio.shield(made.stored)
        return made

    async def mp3_to_serve(self, recording: Recording) -> Recording | HeldMp3:
        """The recording with its MP3 cached, or an MP3 just made here and still being stored,
        held for the caller, who must ``release()`` it."""
        made = await self._made(recording)
        if isinstance(made, LocalMp3):
            held = made.hold()
            if held is not None:
                return held
            return await asyncio.shield(made.stored)  # stored, and its file already gone
        return made

    async def _made(
        self,
        recording: Recording,
        peaks: PeaksTap | None = None,
        store_peaks: PeaksStore | None = None,
    ) -> Recording | LocalMp3:
        if recording.mp3_key:
            return recording
        if recording.encryption_details is not None:
            # Its object is ciphertext: whatever queued a job for it, ffmpeg never reads it.
            raise TranscodeFailed("The recording is encrypted", permanent=True)
        if recording.mp3_error:
            raise TranscodeFailed(recording.mp3_error, permanent=True)
        return await self._flights.run(
            recording.sid,
            lambda db: self._current(db, recording.account_sid, recording.sid),
            lambda: self._transcode(recording, peaks, store_peaks),
        )

    async def _current(self, db: Db, account_sid: str, sid: str) -> Recording | LocalMp3 | None:
        """The recording if its MP3 is settled (made or failed for good), else None."""
        current = await fetch_recording(db, account_sid, sid)
        if current is None:
            raise RecordingGone()
        if current.mp3_key:
            return current
        if current.mp3_error:
            raise TranscodeFailed(current.mp3_error, permanent=True)
        return None

    async def _transcode(
        self,
        recording: Recording,
        peaks: PeaksTap | None = None,
        store_peaks: PeaksStore | None = None,
    ) -> Unfinished[Recording | LocalMp3]:
        fmt = mp3_format(recording.sample_rate, recording.channels)
        started = asyncio.get_running_loop().time()
        directory = Path(tempfile.mkdtemp(prefix="mp3-", dir=self._tmp_dir))
        try:
            dst = directory / "out.mp3"
            result = await self._run(recording, dst, fmt, peaks, store_peaks, started)
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
                await set_mp3_error(
                    self._pool, recording.account_sid, recording.sid, _UNTRANSCODABLE
                )
                raise TranscodeFailed(_UNTRANSCODABLE, permanent=True, detail=result.stderr)
            self._report(elapsed, True)
            log.info(
                "made the MP3 of %s in %.2f s",
                recording.sid,
                elapsed,
                extra={"recording_sid": recording.sid, "mp3_bytes": size},
            )
            if size <= _INLINE_HASH_BYTES:
                etag = file_etag(dst)
            else:
                etag = await anyio.to_thread.run_sync(file_etag, dst)
            # A DELETE acknowledged while ffmpeg ran must not be followed by its audio.
            if await fetch_recording(self._pool, recording.account_sid, recording.sid) is None:
                raise RecordingGone()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        made = replace(
            recording,
            mp3_key=object_key(self._storage, recording.account_sid, recording.sid, "mp3"),
            mp3_size=size,
            mp3_etag=etag,
            mp3_created_at=datetime.now(UTC),
        )
        local = LocalMp3(made, dst, directory)
        # Callers may serve the file now; the flight stores it before it lets go of the lock.
        return Unfinished(local, self._store(local))

    async def _run(
        self,
        recording: Recording,
        dst: Path,
        fmt: Mp3Format,
        peaks: PeaksTap | None,
        store_peaks: PeaksStore | None,
        started: float,
    ) -> FfmpegResult:
        """ffmpeg's run making the MP3 at ``dst``, and the peaks too when there is a tap."""
        # The WAV is opened by the feeder, so the storage round trip overlaps ffmpeg's start.
        if peaks is None or store_peaks is None:
            return await run_ffmpeg(
                mp3_args(self._ffmpeg(), dst, fmt),
                self._storage.iter_object(recording.wav_key),
                timeout=self._timeout,
            )
        encoded = await encode_with_peaks(
            self._ffmpeg(),
            self._storage.iter_object(recording.wav_key),
            dst,
            fmt,
            peaks,
            timeout=self._timeout,
        )
        result = encoded.result
        if result.returncode is None:
            return result  # timed out: the MP3's rule applies, and the peaks job decides alone
        if not result.ok:
            if not encoded.split:
                return result  # the bare encode failed: the MP3's rule applies
            # An ffmpeg without the filters the split needs would otherwise fail every MP3:
            # the MP3 alone is tried as before, and the peaks are left to their own run.
            log.warning("MP3 and peaks in one run failed on %s: %s", recording.sid, result.stderr)
            dst.unlink(missing_ok=True)
            return await self._run(recording, dst, fmt, None, None, started)
        seconds = asyncio.get_running_loop().time() - started
        try:
            await store_peaks(recording, encoded.peaks, result, seconds)
        except Exception as exc:  # the MP3 stands; the peaks job or a request makes them
            log.warning("storing the peaks of %s made with its MP3 failed: %r", recording.sid, exc)
        return result

    async def _store(self, local: LocalMp3) -> None:
        """Upload the made MP3 and record it; ``local.stored`` tells how that went."""
        made = local.recording
        assert made.mp3_key and made.mp3_size is not None and made.mp3_etag
        try:
            await self._storage.upload_file(made.mp3_key, local.path, MP3_TYPE)
            updated = await set_mp3(
                self._pool,
                made.account_sid,
                made.sid,
                key=made.mp3_key,
                size=made.mp3_size,
                etag=made.mp3_etag,
                created_at=made.mp3_created_at,
            )
            if updated is None:
                # Deleted while we worked: take the MP3 away again (gc would, later).
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self._storage.delete_objects([made.mp3_key])
                raise RecordingGone()
            local.stored.set_result(updated)
        except asyncio.CancelledError:
            local.stored.cancel()
            raise
        except Exception as exc:
            if not isinstance(exc, RecordingGone):
                log.error("storing the MP3 of %s failed: %r", made.sid, exc)
            local.stored.set_exception(exc)
            raise
        finally:
            local.release()

    def _report(self, seconds: float, ok: bool) -> None:
        if self._on_run is not None:
            self._on_run(seconds, ok)
