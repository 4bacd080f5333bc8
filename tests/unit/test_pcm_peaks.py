"""Peaks read from a 16-bit PCM WAV's own bytes (service.peaks.pcm): the reducer's values for the
same samples whatever the chunking, only the data chunk's declared bytes, and no tap at all for
any WAV that is not plain 16-bit PCM."""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.peaks.pcm import (
    MAX_HEADER,
    IncompleteHeader,
    PcmLayout,
    PcmPeaks,
    peek_pcm16,
    read_pcm16_header,
)
from service.peaks.reducer import PeakReducer
from service.peaks.waveform import Waveform
from tests.support.wavs import FLOAT_GUID, chunk, fmt_extensible, fmt_pcm, riff


def wav16(samples: list[int], channels: int, *, before: bytes = b"", after: bytes = b"") -> bytes:
    """A 16-bit PCM WAV of interleaved ``samples``, other chunks before and after its data."""
    body = struct.pack(f"<{len(samples)}h", *samples)
    return riff(chunk(b"fmt ", fmt_pcm(8000, channels, 16)), before, chunk(b"data", body), after)


def fed(data: bytes, cuts: list[int], *, spp: int) -> PcmPeaks:
    """A tap fed ``data`` cut at ``cuts`` (byte offsets: mid-sample and mid-frame included)."""
    layout = read_pcm16_header(data)
    assert layout is not None
    tap = PcmPeaks(layout, samples_per_pixel=spp)
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        tap.feed(data[start:cut])
        start = max(start, cut)
    tap.feed(data[start:])
    return tap


def reduced(samples: list[int], channels: int, spp: int, *, extra: bytes = b"") -> PeakReducer:
    """The reducer fed the samples as ffmpeg's raw decode gives them (native order)."""
    reducer = PeakReducer(channels=channels, sample_rate=8000, samples_per_pixel=spp)
    reducer.feed(struct.pack(f"={len(samples)}h", *samples) + extra)
    return reducer


@settings(max_examples=300)
@given(
    channels=st.integers(1, 2),
    spp=st.integers(1, 60),
    frames=st.integers(1, 500),
    cuts=st.lists(st.integers(0, 10_000), max_size=10),
    seed=st.integers(0, 2**32),
)
def test_the_reducers_values_whatever_the_chunks(
    channels: int, spp: int, frames: int, cuts: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    samples = [rng.randint(-32768, 32767) for _ in range(frames * channels)]
    tap = fed(wav16(samples, channels), cuts, spp=spp)
    reducer = reduced(samples, channels, spp)
    assert tap.finish() == reducer.finish()
    assert tap.frames == reducer.frames == frames


@pytest.mark.parametrize("channels", [1, 2])
def test_every_byte_boundary_mid_sample_and_mid_frame(channels: int) -> None:
    # 7 pixels of 9 frames and a last one of 4: each cut lands in a sample, between the samples
    # of a frame, on a pixel's edge, or in the header.
    rng = random.Random(channels)
    samples = [rng.randint(-32768, 32767) for _ in range((7 * 9 + 4) * channels)]
    data = wav16(samples, channels)
    expected = reduced(samples, channels, 9).finish()
    assert expected.length == 8
    for cut in range(len(data) + 1):
        assert fed(data, [cut], spp=9).finish() == expected, cut
    one_by_one = fed(data, list(range(len(data))), spp=9)
    assert one_by_one.finish() == expected and one_by_one.frames == 67


def test_a_trailing_partial_frame_is_dropped_as_the_reducer_drops_it() -> None:
    samples = [100, -200, 300, -400, 500, -600, 700]
    # Three stereo frames and one sample of a fourth: the declared size counts that sample too.
    tap = fed(wav16(samples, 2), [5, 47, 51], spp=2)
    reducer = reduced(samples, 2, 2)
    assert (
        tap.finish()
        == reducer.finish()
        == Waveform(2, 8000, 2, [100, 300, -400, -200, 500, 500, -600, -600])
    )
    assert tap.frames == reducer.frames == 3


def test_chunks_after_the_data_are_not_audio() -> None:
    samples = [1, 2, 3, 4, 5]
    listed = chunk(b"LIST", b"INFOISFT\x06\x00\x00\x00Lavf\x00\x00" + b"\x7f\x7f" * 20)
    cued = chunk(b"cue ", b"\x00" * 28)
    data = wav16(samples, 1, before=cued, after=listed)
    tap = fed(data, [50, 60], spp=2)
    assert tap.finish().data == [1, 2, 3, 4, 5, 5]
    assert tap.frames == 5


def test_a_header_that_claims_more_data_than_the_file_holds_gives_what_is_there() -> None:
    samples = [7, -7, 9]
    body = struct.pack("<3h", *samples)
    data = riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), b"data" + struct.pack("<I", 10_000) + body)
    tap = fed(data, [45], spp=2)
    assert tap.finish().data == [-7, 7, 9, 9]
    assert tap.frames == 3


def test_a_header_that_claims_less_data_than_follows_gives_the_declared_bytes() -> None:
    samples = [1, 2, 3, 4, 5, 6]
    body = struct.pack("<6h", *samples)
    data = riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), b"data" + struct.pack("<I", 7) + body)
    tap = fed(data, [], spp=4)
    # Seven bytes: three samples and half of a fourth, which is dropped.
    assert tap.finish().data == [1, 3]
    assert tap.frames == 3


@pytest.mark.parametrize(
    "fmt",
    [
        fmt_pcm(8000, 1, 8),
        fmt_pcm(8000, 1, 24),
        fmt_pcm(8000, 2, 32),
        fmt_pcm(8000, 1, 32, tag=3),  # IEEE float
        fmt_pcm(8000, 1, 8, tag=7),  # mu-law
        fmt_pcm(8000, 1, 8, tag=6),  # A-law
        fmt_extensible(8000, 1, 16),
        fmt_extensible(8000, 1, 32, guid=FLOAT_GUID),
        fmt_pcm(8000, 0, 16),
        fmt_pcm(0, 1, 16),
        struct.pack("<HHIIHH", 1, 1, 8000, 16000, 4, 16),  # a block_align that lies
        struct.pack("<HHIIHH", 1, 2, 8000, 16000, 4, 16),  # a byte rate that lies
        b"\x01\x00\x01\x00",  # a fmt chunk too short to hold its fields
    ],
)
def test_anything_but_plain_16_bit_pcm_is_left_to_ffmpeg(fmt: bytes) -> None:
    assert read_pcm16_header(riff(chunk(b"fmt ", fmt), chunk(b"data", b"\x00" * 64))) is None


@pytest.mark.parametrize(
    "data",
    [
        b"RIFX\x00\x00\x00\x00WAVE" + b"\x00" * 40,  # big-endian RIFF
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), form=b"AVI "),
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff" * 40,  # an MP3
        riff(chunk(b"data", b"\x00" * 8), chunk(b"fmt ", fmt_pcm(8000, 1, 16))),  # data first
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"fmt ", fmt_pcm(8000, 1, 16))),
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"data", b"", declared=0)),
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"data", b"", declared=0xFFFFFFFF)),
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16), declared=0xFFFFFFF0)),
        # Metadata past the header's limit before the data chunk.
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"junk", b"\x00" * MAX_HEADER)),
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), *[chunk(b"junk", b"")] * 100),
    ],
)
def test_other_files_and_lying_headers_are_left_to_ffmpeg(data: bytes) -> None:
    assert read_pcm16_header(data) is None


def test_a_header_cut_short_asks_for_more() -> None:
    data = wav16([1, 2, 3], 1, before=chunk(b"LIST", b"x" * 100))
    for end in range(data.index(b"data") + 8):
        with pytest.raises(IncompleteHeader):
            read_pcm16_header(data[:end])
    assert read_pcm16_header(data[: data.index(b"data") + 8]) == PcmLayout(
        channels=1, sample_rate=8000, data_offset=data.index(b"data") + 8, data_bytes=6
    )


async def chunked(data: bytes, size: int, closed: list[bool]) -> AsyncIterator[bytes]:
    try:
        for at in range(0, len(data), size):
            yield data[at : at + size]
    finally:
        closed.append(True)


@pytest.mark.parametrize("size", [1, 7, 44, 45, 1000])
def test_peeking_reads_the_header_and_gives_back_every_byte(size: int) -> None:
    data = wav16(list(range(-300, 300)), 2, before=chunk(b"LIST", b"y" * 51))

    async def go() -> None:
        closed: list[bool] = []
        layout, stream = await peek_pcm16(chunked(data, size, closed))
        assert layout is not None and layout.channels == 2
        tap = PcmPeaks(layout, samples_per_pixel=50)
        assert b"".join([c async for c in tap.through(stream)]) == data
        assert tap.finish() == reduced(list(range(-300, 300)), 2, 50).finish()
        assert closed == [True]

    asyncio.run(go())


@pytest.mark.parametrize(
    "data", [b"", b"RIFF", b"not a wav at all", riff(chunk(b"fmt ", fmt_pcm(8000, 1, 24)))]
)
def test_peeking_at_anything_else_still_gives_back_every_byte(data: bytes) -> None:
    async def go() -> None:
        closed: list[bool] = []
        layout, stream = await peek_pcm16(chunked(data, 3, closed))
        assert layout is None
        assert b"".join([c async for c in stream]) == data
        assert closed == [True]

    asyncio.run(go())


def test_a_stream_left_unread_is_closed_when_its_reader_is() -> None:
    data = wav16([5] * 1000, 1)

    async def go() -> None:
        closed: list[bool] = []
        layout, stream = await peek_pcm16(chunked(data, 100, closed))
        assert layout is not None
        reading = PcmPeaks(layout, samples_per_pixel=10).through(stream)
        await anext(reading)
        await reading.aclose()
        assert closed == [True]

    asyncio.run(go())
