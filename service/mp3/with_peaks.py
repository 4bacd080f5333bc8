"""A new recording's MP3 and peaks from one read of its WAV.

For a plain 16-bit PCM WAV (what ingest and the importer store, nearly always) the peaks are
taken from the bytes on their way into a bare MP3 encode (service.peaks.pcm): ffmpeg does what
it does for the MP3 alone, and the peaks cost a byte-wise reduction. Anything else is decoded once
by ffmpeg with its audio split between the MP3 and an ``astats`` branch (service.peaks.tap),
which costs ffmpeg about a sixth more than the encode alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from service.audio.ffmpeg import FfmpegResult, run_ffmpeg
from service.mp3.commands import Mp3Format, mp3_and_peaks_args, mp3_args
from service.peaks.pcm import PcmPeaks, peek_pcm16
from service.peaks.tap import PeaksTap, TappedPeaks


@dataclass(frozen=True)
class Encoded:
    """ffmpeg's outcome, the peaks read alongside, and whether the run was ffmpeg's split one
    (whose failure may be its filters', not the audio's)."""

    result: FfmpegResult
    peaks: TappedPeaks
    split: bool


async def encode_with_peaks(
    ffmpeg: str,
    source: AsyncIterable[bytes],
    dst: Path,
    fmt: Mp3Format,
    tap: PeaksTap,
    *,
    timeout: float,
) -> Encoded:
    """Encode the WAV ``source`` to the MP3 ``dst`` and read its peaks at ``tap``'s resolution
    in the same pass; a header not read within ``timeout`` is reported as a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout(timeout):
            layout, stream = await peek_pcm16(source)
    except TimeoutError:
        return Encoded(FfmpegResult(None, "the WAV's header was not read in time"), tap, False)
    remaining = deadline - loop.time()
    if layout is not None and (layout.channels, layout.sample_rate) == (
        tap.channels,
        tap.sample_rate,
    ):
        pcm = PcmPeaks(layout, samples_per_pixel=tap.samples_per_pixel)
        args = mp3_args(ffmpeg, dst, fmt)
        return Encoded(await run_ffmpeg(args, pcm.through(stream), timeout=remaining), pcm, False)
    # A layout other than the recording's measured one is ffmpeg's to make sense of.
    args = mp3_and_peaks_args(ffmpeg, dst, fmt, tap)
    result = await run_ffmpeg(args, stream, timeout=remaining, output=tap.feed)
    return Encoded(result, tap, True)
