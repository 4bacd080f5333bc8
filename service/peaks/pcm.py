"""Peaks read from a 16-bit PCM WAV's own bytes on their way into ffmpeg, so the MP3's run is a
bare encode and no second output of ffmpeg's is asked for.

A stored recording is usually such a WAV (ingest keeps a linear PCM upload as it came and
writes anything else as 16-bit PCM; the importer keeps PCM as it came): the bytes the worker
feeds ffmpeg already hold every sample. The values are the reducer's (service.peaks.reducer)
for the samples ffmpeg decodes from the same bytes: the data chunk's bytes as its header
declares them (fewer when the file ends first), a trailing partial frame dropped, the last pixel
shorter. Any other layout (8, 24 or 32 bits, float, mu-law, WAVE_FORMAT_EXTENSIBLE, a data
size of 0 or 0xFFFFFFFF, a header not read to its data chunk within ``MAX_HEADER`` bytes) gives
no tap: the caller falls back to ffmpeg's own decode (service.peaks.tap).

Each pixel's extremes are found byte by byte (service.peaks.extremes), at close to C speed.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

from service.peaks.extremes import channel_bytes, extremes
from service.peaks.waveform import Waveform

_WAVE_FORMAT_PCM = 0x0001
# A header this long has more than a handful of metadata chunks before its data: not read.
MAX_HEADER = 64 * 1024
_MAX_CHUNKS = 64
# Sizes ffmpeg reads as "until the end of the file" where a header was never finalised: not
# something to second-guess, so ffmpeg decodes those itself.
_UNSIZED = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class PcmLayout:
    """Where a 16-bit PCM WAV's samples are: ``data_bytes`` from ``data_offset``, as declared."""

    channels: int
    sample_rate: int
    data_offset: int
    data_bytes: int


class IncompleteHeader(Exception):
    """More bytes are needed to read the header to its data chunk."""


def read_pcm16_header(head: bytes | bytearray) -> PcmLayout | None:
    """The layout of the WAV that starts with ``head`` when it is plain 16-bit PCM, else None;
    raises IncompleteHeader when ``head`` ends before the data chunk's header."""
    if len(head) < 12:
        raise IncompleteHeader()
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt: tuple[int, int] | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > min(len(head), MAX_HEADER):
            if pos + 8 > MAX_HEADER:
                return None
            raise IncompleteHeader()
        chunk_id = head[pos : pos + 4]
        (size,) = struct.unpack_from("<I", head, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if fmt is not None or size < 16 or size > 1024:
                return None
            if body + size > len(head):
                raise IncompleteHeader()
            fmt = _pcm16(head[body : body + size])
            if fmt is None:
                return None
        elif chunk_id == b"data":
            if fmt is None or size in _UNSIZED:
                return None
            channels, rate = fmt
            return PcmLayout(channels, rate, data_offset=body, data_bytes=size)
        pos = body + size + (size & 1)
    return None


def _pcm16(body: bytes | bytearray) -> tuple[int, int] | None:
    """Channels and rate of a ``fmt `` body that says 16-bit linear PCM, consistently."""
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag != _WAVE_FORMAT_PCM or bits != 16 or channels < 1 or rate < 1:
        return None
    if block_align != 2 * channels or byte_rate != rate * block_align:
        return None
    return channels, rate


class PcmPeaks:
    """Takes the WAV's bytes from its first one with ``feed``; ``finish`` gives the peaks."""

    def __init__(self, layout: PcmLayout, *, samples_per_pixel: int) -> None:
        if samples_per_pixel < 1:
            raise ValueError("samples_per_pixel must be positive")
        self.channels = layout.channels
        self.sample_rate = layout.sample_rate
        self.samples_per_pixel = samples_per_pixel
        self.frames = 0
        # Nothing in the samples themselves can be malformed; the frame count says the rest.
        self.malformed = False
        self._skip = layout.data_offset
        self._left = layout.data_bytes
        self._frame_bytes = 2 * layout.channels
        self._pixel_bytes = samples_per_pixel * self._frame_bytes
        self._pending = bytearray()
        self._data: list[int] = []

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the file; the header's are skipped, whole pixels reduced."""
        view = memoryview(chunk)
        if self._skip:
            skipped = min(self._skip, len(view))
            self._skip -= skipped
            view = view[skipped:]
        if len(view) > self._left:
            view = view[: self._left]  # what follows the data chunk is not audio
        self._left -= len(view)
        if not self._pending:
            # The usual case, a chunk much longer than a pixel: reduced where it lies.
            whole = len(view) - len(view) % self._pixel_bytes
            if whole:
                self._reduce(view[:whole], self.samples_per_pixel)
            self._pending += view[whole:]
            return
        self._pending += view
        whole = len(self._pending) - len(self._pending) % self._pixel_bytes
        if whole:
            self._reduce(memoryview(self._pending)[:whole], self.samples_per_pixel)
            del self._pending[:whole]

    def finish(self) -> Waveform:
        """The peaks of everything fed; a last, shorter pixel holds the remaining frames (a
        trailing partial frame is dropped)."""
        whole = len(self._pending) - len(self._pending) % self._frame_bytes
        if whole:
            self._reduce(memoryview(self._pending)[:whole], whole // self._frame_bytes)
        self._pending.clear()
        return Waveform(
            channels=self.channels,
            sample_rate=self.sample_rate,
            samples_per_pixel=self.samples_per_pixel,
            data=list(self._data),
        )

    async def through(self, source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        """``source`` unchanged, each chunk read here on its way (before it is passed on, so a
        reader that stops early has still had it counted)."""
        chunks = aiter(source)
        try:
            async for chunk in chunks:
                self.feed(chunk)
                yield chunk
        finally:
            await _close(chunks)

    def _reduce(self, block: memoryview, pixel_frames: int) -> None:
        # Pixels of ``pixel_frames`` frames: min and max over each pixel's frames, per channel,
        # laid out pixel by pixel, channel by channel, min before max.
        raw = block.tobytes()
        block.release()  # before the caller trims its buffer
        frames = len(raw) // self._frame_bytes
        split = [channel_bytes(raw, c, self.channels) for c in range(self.channels)]
        out = self._data
        for start in range(0, frames, pixel_frames):
            stop = start + pixel_frames
            for lows, highs, nibbles in split:
                out.extend(extremes(lows[start:stop], highs[start:stop], nibbles[start:stop]))
        self.frames += frames


async def peek_pcm16(
    source: AsyncIterable[bytes],
) -> tuple[PcmLayout | None, AsyncIterator[bytes]]:
    """The layout of the WAV ``source`` when it is plain 16-bit PCM (None otherwise), and the
    stream to read instead of ``source``: all its bytes from the first. Only as many chunks as
    the header takes are read here."""
    chunks = aiter(source)
    taken: list[bytes] = []
    head = bytearray()
    layout: PcmLayout | None = None
    try:
        while True:
            try:
                layout = read_pcm16_header(head)
                break
            except IncompleteHeader:
                chunk = await anext(chunks, None)
                if chunk is None:
                    break
                taken.append(chunk)
                head += chunk
    except BaseException:
        await _close(chunks)
        raise
    return layout, _replay(taken, chunks)


async def _replay(taken: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        for chunk in taken:
            yield chunk
        async for chunk in rest:
            yield chunk
    finally:
        await _close(rest)


async def _close(chunks: AsyncIterator[bytes]) -> None:
    # However the reading ends, the source (a storage stream) is closed now, not when collected.
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
