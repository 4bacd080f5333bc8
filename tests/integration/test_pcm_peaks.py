"""Peaks read from a WAV's bytes on their way into the MP3's ffmpeg (service.mp3.with_peaks) are
the ones ffmpeg's own decode gives the reducer, for well-formed files and for headers that lie
about their data; anything but plain 16-bit PCM goes through ffmpeg's split run instead."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.mp3.commands import mp3_format
from service.mp3.with_peaks import encode_with_peaks
from service.peaks.maker import decode_peaks
from service.peaks.tap import PeaksTap
from service.settings import Settings
from tests.support.ffmpeg import ffmpeg_children
from tests.support.wavs import chunk, fmt_extensible, fmt_pcm, riff

RATE = 8000


def samples16(frames: int, channels: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return struct.pack(
        f"<{frames * channels}h", *[rng.randint(-32768, 32767) for _ in range(frames * channels)]
    )


def listed(text: bytes) -> bytes:
    return chunk(b"LIST", b"INFOISFT" + struct.pack("<I", len(text)) + text)


def wav(channels: int, frames: int, *, seed: int = 1, declared: int | None = None) -> bytes:
    body = samples16(frames, channels, seed)
    return riff(chunk(b"fmt ", fmt_pcm(RATE, channels, 16)), chunk(b"data", body, declared))


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        yield data[at : at + size]


CASES = {
    # 2.3 s: the last pixel short (40 samples per pixel at 8 kHz).
    "mono": (wav(1, 18_403), 1, 18_403),
    "stereo": (wav(2, 18_403, seed=2), 2, 18_403),
    "metadata before and after the data": (
        riff(
            chunk(b"fmt ", fmt_pcm(RATE, 2, 16)),
            listed(b"recorder\x00"),
            chunk(b"data", samples16(9_001, 2, 3)),
            listed(b"Lavf61\x00\x00"),
        ),
        2,
        9_001,
    ),
    # An upload cut off in transfer: the header still claims the whole minute.
    "claims more than it holds": (wav(1, 60 * RATE)[: 44 + 2 * 12_345 + 1], 1, 12_345),
    "claims less than it holds": (wav(1, 16_000, declared=2 * 12_001 + 1), 1, 12_001),
    "claims less, then metadata": (
        riff(
            chunk(b"fmt ", fmt_pcm(RATE, 1, 16)),
            chunk(b"data", samples16(16_000, 1, 4), declared=2 * 15_000),
            listed(b"x" * 10),
        ),
        1,
        15_000,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [4097, 256 * 1024])
def test_the_peaks_read_on_the_way_in_are_the_decodes(
    settings: Settings, tmp_path: Path, case: str, size: int
) -> None:
    data, channels, frames = CASES[case]
    path = tmp_path / "in.wav"
    path.write_bytes(data)
    expected = 18_403  # one resolution for all: 40 samples per pixel
    ffmpeg = settings.ffmpeg_path

    async def go() -> None:
        alone = await decode_peaks(
            ffmpeg, path, channels=channels, sample_rate=RATE, expected_frames=expected, timeout=60
        )
        assert alone.result.ok, alone.result.stderr
        tap = PeaksTap(
            channels=channels,
            sample_rate=RATE,
            samples_per_pixel=alone.waveform.samples_per_pixel,
        )
        dst = tmp_path / "out.mp3"
        made = await encode_with_peaks(
            ffmpeg, chunked(data, size), dst, mp3_format(RATE, channels), tap, timeout=60
        )
        assert made.result.ok, made.result.stderr
        assert not made.split, "a 16-bit PCM WAV is read as it goes in"
        assert made.peaks.finish() == alone.waveform
        assert made.peaks.frames == frames
        assert dst.stat().st_size > 0

    asyncio.run(go())


@pytest.mark.parametrize(
    "fmt",
    [fmt_pcm(RATE, 1, 24), fmt_extensible(RATE, 1, 16), fmt_pcm(RATE, 1, 8, tag=7)],
    ids=["24-bit", "extensible", "mu-law"],
)
def test_anything_else_goes_through_ffmpegs_split_run(
    settings: Settings, tmp_path: Path, fmt: bytes
) -> None:
    width = struct.unpack_from("<H", fmt, 14)[0] // 8
    data = riff(chunk(b"fmt ", fmt), chunk(b"data", random.Random(5).randbytes(width * 5_000)))
    path = tmp_path / "in.wav"
    path.write_bytes(data)
    ffmpeg = settings.ffmpeg_path

    async def go() -> None:
        alone = await decode_peaks(
            ffmpeg, path, channels=1, sample_rate=RATE, expected_frames=5_000, timeout=60
        )
        assert alone.result.ok, alone.result.stderr
        tap = PeaksTap(
            channels=1, sample_rate=RATE, samples_per_pixel=alone.waveform.samples_per_pixel
        )
        made = await encode_with_peaks(
            ffmpeg, chunked(data, 999), tmp_path / "out.mp3", mp3_format(RATE, 1), tap, timeout=60
        )
        assert made.result.ok, made.result.stderr
        assert made.split and made.peaks is tap
        assert made.peaks.finish() == alone.waveform
        assert made.peaks.frames == 5_000

    asyncio.run(go())


def test_a_wav_of_another_layout_than_the_recordings_goes_through_ffmpeg(
    settings: Settings, tmp_path: Path
) -> None:
    # The row says mono; the object is stereo: the split run's tap reports it unusable.
    data = wav(2, 4_000)
    tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=40)

    async def go() -> None:
        made = await encode_with_peaks(
            settings.ffmpeg_path,
            chunked(data, 4096),
            tmp_path / "out.mp3",
            mp3_format(RATE, 1),
            tap,
            timeout=60,
        )
        assert made.split and made.peaks is tap

    asyncio.run(go())


class StorageCut(Exception):
    pass


async def cut_after(
    data: bytes, size: int, chunks: int, closed: list[bool]
) -> AsyncIterator[bytes]:
    try:
        for n, at in enumerate(range(0, len(data), size)):
            if n == chunks:
                raise StorageCut()
            yield data[at : at + size]
    finally:
        closed.append(True)


@pytest.mark.parametrize("chunks", [0, 1, 5], ids=["before-the-header", "after-it", "midway"])
def test_a_source_cut_off_propagates_with_ffmpeg_gone_and_the_source_closed(
    settings: Settings, tmp_path: Path, chunks: int
) -> None:
    data = wav(1, 40_000)
    tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=40)

    async def go() -> None:
        closed: list[bool] = []
        with pytest.raises(StorageCut):
            await encode_with_peaks(
                settings.ffmpeg_path,
                cut_after(data, 4096, chunks, closed),
                tmp_path / "out.mp3",
                mp3_format(RATE, 1),
                tap,
                timeout=60,
            )
        assert closed == [True]
        assert ffmpeg_children() == []

    asyncio.run(go())


def test_a_header_that_never_comes_is_a_timeout(settings: Settings, tmp_path: Path) -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b"RIFF\x00\x00\x00\x00WAVE"
        await asyncio.sleep(3600)
        yield b""

    tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=40)

    async def go() -> None:
        made = await encode_with_peaks(
            settings.ffmpeg_path,
            stalled(),
            tmp_path / "out.mp3",
            mp3_format(RATE, 1),
            tap,
            timeout=0.5,
        )
        assert made.result.returncode is None
        assert ffmpeg_children() == []

    asyncio.run(go())
