"""The streaming reducer against a plain reference: every pixel's min and max, per channel,
whatever the chunking."""

from __future__ import annotations

import array
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.peaks.reducer import PeakReducer
from tests.support.peaks import reference_peaks


def reference(samples: list[int], channels: int, spp: int) -> list[int]:
    frames = len(samples) // channels
    out = []
    for first in range(0, frames, spp):
        for channel in range(channels):
            pixel = [
                samples[f * channels + channel] for f in range(first, min(first + spp, frames))
            ]
            out += [min(pixel), max(pixel)]
    return out


def raw(samples: list[int]) -> bytes:
    # Native byte order: what ffmpeg is asked for and the reducer reads.
    return array.array("h", samples).tobytes()


def reduce(data: bytes, channels: int, spp: int, cuts: list[int]) -> PeakReducer:
    reducer = PeakReducer(channels=channels, sample_rate=8000, samples_per_pixel=spp)
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        reducer.feed(data[start:cut])
        start = max(start, cut)
    reducer.feed(data[start:])
    return reducer


@given(
    channels=st.integers(1, 3),
    spp=st.integers(1, 50),
    frames=st.integers(1, 400),
    cuts=st.lists(st.integers(0, 10_000), max_size=8),
    seed=st.integers(0, 2**32),
)
def test_matches_the_reference_whatever_the_chunks(
    channels: int, spp: int, frames: int, cuts: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    samples = [rng.randint(-32768, 32767) for _ in range(frames * channels)]
    reducer = reduce(raw(samples), channels, spp, cuts)
    waveform = reducer.finish()
    assert waveform.data == reference_peaks(samples, channels, spp)
    assert waveform.length == -(-frames // spp)
    assert waveform.length * waveform.samples_per_pixel >= frames == reducer.frames


def test_loud_and_silent_stretches_land_on_their_pixels() -> None:
    # 1 s of silence, 1 s at full scale, 1 s at a quarter, at 100 samples per pixel.
    samples = [0] * 8000 + [32767, -32768] * 4000 + [8192, -8192] * 4000
    waveform = reduce(raw(samples), 1, 100, [12345, 20000]).finish()
    pairs = list(zip(waveform.data[::2], waveform.data[1::2], strict=True))
    assert len(pairs) == 240
    assert set(pairs[:80]) == {(0, 0)}
    assert set(pairs[80:160]) == {(-32768, 32767)}
    assert set(pairs[160:]) == {(-8192, 8192)}


def test_stereo_is_interleaved_left_then_right() -> None:
    # Left loud, right silent, then the other way round.
    frames = [(20000, 0)] * 300 + [(0, -20000)] * 300
    samples = [s for frame in frames for s in frame]
    waveform = reduce(raw(samples), 2, 300, []).finish()
    assert waveform.data == [20000, 20000, 0, 0, 0, 0, -20000, -20000]


def test_a_trailing_partial_frame_is_dropped() -> None:
    reducer = PeakReducer(channels=2, sample_rate=8000, samples_per_pixel=4)
    reducer.feed(raw([1, 2, 3, 4, 5]))  # two frames and half of a third
    waveform = reducer.finish()
    assert waveform.data == [1, 3, 2, 4]
    assert reducer.frames == 2


def test_nothing_fed_is_no_pixel() -> None:
    waveform = PeakReducer(channels=1, sample_rate=8000, samples_per_pixel=4).finish()
    assert waveform.data == [] and waveform.length == 0


@pytest.mark.parametrize("bad", [{"channels": 0}, {"samples_per_pixel": 0}])
def test_nonsense_layouts_are_refused(bad: dict[str, int]) -> None:
    args = {"channels": 1, "sample_rate": 8000, "samples_per_pixel": 4, **bad}
    with pytest.raises(ValueError):
        PeakReducer(**args)
