"""Decoded PCM to peaks as it streams in: one pass, constant memory, no NumPy.

The samples arrive as native-endian signed 16-bit frames (ffmpeg's ``s16le``/``s16be`` raw
output) in chunks of any size; each pixel's minimum and maximum are taken by ``min``/``max`` over
a strided memoryview, so the per-sample work runs in C.
"""

from __future__ import annotations

from service.peaks.waveform import Waveform

SAMPLE_BYTES = 2


class PeakReducer:
    """Feed it raw frames with ``feed``; ``finish`` gives the waveform."""

    def __init__(self, *, channels: int, sample_rate: int, samples_per_pixel: int) -> None:
        if channels < 1 or samples_per_pixel < 1:
            raise ValueError("channels and samples_per_pixel must be positive")
        self.channels = channels
        self.sample_rate = sample_rate
        self.samples_per_pixel = samples_per_pixel
        self.frames = 0
        self._frame_bytes = channels * SAMPLE_BYTES
        self._pixel_bytes = samples_per_pixel * self._frame_bytes
        self._pending = bytearray()
        self._data: list[int] = []

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream; whole pixels are reduced at once."""
        self._pending += chunk
        whole = len(self._pending) - len(self._pending) % self._pixel_bytes
        if whole:
            self._reduce(memoryview(self._pending)[:whole])
            del self._pending[:whole]

    def finish(self) -> Waveform:
        """The waveform of everything fed; a last, shorter pixel holds the remaining frames
        (a trailing partial frame is dropped)."""
        whole = len(self._pending) - len(self._pending) % self._frame_bytes
        if whole:
            self._reduce(memoryview(self._pending)[:whole])
        self._pending.clear()
        return Waveform(
            channels=self.channels,
            sample_rate=self.sample_rate,
            samples_per_pixel=self.samples_per_pixel,
            data=list(self._data),
        )

    def _reduce(self, block: memoryview) -> None:
        samples = block.cast("h")
        try:
            channels, step = self.channels, self.samples_per_pixel * self.channels
            out = self._data
            self.frames += len(samples) // channels
            if channels == 1:
                for start in range(0, len(samples), step):
                    pixel = samples[start : start + step]
                    out.append(min(pixel))
                    out.append(max(pixel))
                return
            for start in range(0, len(samples), step):
                stop = min(start + step, len(samples))
                for channel in range(channels):
                    pixel = samples[start + channel : stop : channels]
                    out.append(min(pixel))
                    out.append(max(pixel))
        finally:
            samples.release()
            block.release()
