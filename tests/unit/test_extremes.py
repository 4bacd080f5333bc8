"""Byte-wise extremes of 16-bit samples (service.peaks.extremes) against min and max, for the
cases its two ways of reading low bytes take: a few samples with the extreme high byte, and many
(clipped and square waves, silence, a handful of values)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.peaks.extremes import channel_bytes, extremes


def check(samples: list[int], channels: int = 1) -> None:
    block = struct.pack(f"<{len(samples)}h", *samples)
    for channel in range(channels):
        values = samples[channel::channels]
        assert extremes(*channel_bytes(block, channel, channels)) == (min(values), max(values))


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=300))
def test_any_samples(samples: list[int]) -> None:
    check(samples)


@given(
    st.lists(st.sampled_from([-32768, -32767, -256, -255, -1, 0, 1, 255, 256, 32767]), min_size=1),
)
def test_few_distinct_values_many_times(samples: list[int]) -> None:
    check(samples)


@given(
    high=st.integers(-128, 127),
    lows=st.lists(st.integers(0, 255), min_size=1, max_size=200),
    others=st.lists(st.integers(-32768, 32767), max_size=50),
)
def test_many_samples_share_the_extreme_high_byte(
    high: int, lows: list[int], others: list[int]
) -> None:
    check([high * 256 + low for low in lows] + others)


@given(
    st.lists(st.integers(-32768, 32767), min_size=2, max_size=300).filter(lambda s: len(s) % 2 == 0)
)
def test_interleaved_channels(samples: list[int]) -> None:
    check(samples, channels=2)


@pytest.mark.parametrize(
    "samples",
    [[0] * 7200, [32767, -32768] * 3600, [-1] * 50 + [0] * 50, [12345], [-32768], [32767]],
    ids=["silence", "full-scale square", "either side of zero", "one", "lowest", "highest"],
)
def test_edges(samples: list[int]) -> None:
    check(samples)
