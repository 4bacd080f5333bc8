"""Peaks taken from another ffmpeg run's decode: a branch of its filtergraph cuts the samples
into pixels and ffmpeg's ``astats`` gives each pixel's minimum and maximum, printed as text on
stdout, so one decode makes the MP3 and the peaks and Python reads a few lines per pixel.

The values are the ones the reducer (service.peaks.reducer) takes from raw 16-bit samples: the
same conversion to s16, the same pixels (the last one shorter), the extremes as integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from service.peaks.waveform import Waveform

_MIN = "Min_level"
_MAX = "Max_level"
_SAMPLES = "Overall.Number_of_samples"
_PREFIX = "lavfi.astats."


class TappedPeaks(Protocol):
    """Peaks read alongside an MP3's run: from ffmpeg's printout (PeaksTap) or from the WAV's
    bytes on their way in (service.peaks.pcm.PcmPeaks)."""

    frames: int
    malformed: bool

    def finish(self) -> Waveform: ...


def peaks_branch(source: str, samples_per_pixel: int) -> str:
    """The filtergraph chain from ``source`` (a link label) to a sink: s16 as the raw decode
    gives, pixels of ``samples_per_pixel`` frames, their extremes printed to stdout."""
    stats = (
        "astats=metadata=1:reset=1:measure_perchannel=Min_level+Max_level"
        ":measure_overall=Number_of_samples"
    )
    # ``pipe\:1`` is escaped once for the graph and once for the filter's options.
    return (
        f"[{source}]aformat=sample_fmts=s16,asetnsamples=n={samples_per_pixel}:p=0,"
        f"{stats},ametadata=mode=print:file=pipe\\\\:1,anullsink"
    )


@dataclass
class _Pixel:
    extremes: dict[int, list[int]] = field(default_factory=dict)
    frames: int = 0


class PeaksTap:
    """Reads ``ametadata``'s printout chunk by chunk (``feed``); ``finish`` gives the peaks."""

    def __init__(self, *, channels: int, sample_rate: int, samples_per_pixel: int) -> None:
        self.channels = channels
        self.sample_rate = sample_rate
        self.samples_per_pixel = samples_per_pixel
        self.frames = 0
        self._pending = b""
        self._pixel: _Pixel | None = None
        self._data: list[int] = []
        # A line ffmpeg printed that is none of the expected ones: the peaks are not used.
        self.malformed = False

    def branch(self, source: str) -> str:
        """This tap's filtergraph chain, fed by the link ``source``."""
        return peaks_branch(source, self.samples_per_pixel)

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of ffmpeg's stdout; whole lines are read at once."""
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line.decode("ascii", errors="replace").strip())

    def finish(self) -> Waveform:
        """The peaks of everything fed."""
        if self._pending:
            self._line(self._pending.decode("ascii", errors="replace").strip())
            self._pending = b""
        self._close_pixel()
        return Waveform(
            channels=self.channels,
            sample_rate=self.sample_rate,
            samples_per_pixel=self.samples_per_pixel,
            data=list(self._data),
        )

    def _line(self, line: str) -> None:
        if not line:
            return
        if line.startswith("frame:"):
            self._close_pixel()
            self._pixel = _Pixel()
            return
        name, sep, value = line.partition("=")
        if not sep or not name.startswith(_PREFIX) or self._pixel is None:
            self.malformed = True
            return
        try:
            number = int(float(value))
        except ValueError:
            self.malformed = True
            return
        measure = name[len(_PREFIX) :]
        if measure == _SAMPLES:
            self._pixel.frames = number
            return
        channel, _, kind = measure.partition(".")
        if not channel.isdigit() or kind not in (_MIN, _MAX):
            self.malformed = True
            return
        pair = self._pixel.extremes.setdefault(int(channel), [0, 0])
        pair[0 if kind == _MIN else 1] = number

    def _close_pixel(self) -> None:
        pixel, self._pixel = self._pixel, None
        if pixel is None:
            return
        if sorted(pixel.extremes) != list(range(1, self.channels + 1)) or pixel.frames < 1:
            self.malformed = True
            return
        self.frames += pixel.frames
        for channel in range(1, self.channels + 1):
            self._data.extend(pixel.extremes[channel])
