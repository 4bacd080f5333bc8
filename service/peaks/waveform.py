"""The peaks of a recording as audiowaveform's JSON (version 2): min/max pairs per pixel, the
channels interleaved, in 16 or 8 bits; and how many samples one pixel stands for."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# A one-hour call becomes at most this many pixels (tens of KB of JSON), enough for a canvas as
# wide as a screen at twice its density; players zoom out from it, never in.
MAX_PIXELS = 4000
# ...and a short one no more than this many pixels per second (5 ms each), so a few seconds of
# audio do not turn into thousands of single-sample pixels.
MAX_PIXELS_PER_SECOND = 200
BITS = (8, 16)


class InvalidPeaks(ValueError):
    """A document that is not audiowaveform JSON this service wrote."""


def samples_per_pixel(sample_rate: int, frames: int) -> int:
    """The resolution for ``frames`` frames at ``sample_rate``: at most MAX_PIXELS pixels in
    all, at most MAX_PIXELS_PER_SECOND per second."""
    by_length = math.ceil(max(frames, 1) / MAX_PIXELS)
    by_rate = math.ceil(max(sample_rate, 1) / MAX_PIXELS_PER_SECOND)
    return max(by_length, by_rate, 1)


@dataclass(frozen=True)
class Waveform:
    """Peaks at 16 bits: ``data`` is min, max of pixel 0 channel 0, then channel 1, ..."""

    channels: int
    sample_rate: int
    samples_per_pixel: int
    data: list[int]

    @property
    def length(self) -> int:
        """Pixels per channel."""
        return len(self.data) // (2 * self.channels)

    def values(self, bits: int) -> list[int]:
        """The data at ``bits``: 8 bits as audiowaveform makes them, 16-bit values divided by
        256 rounding toward zero (C's integer division)."""
        if bits == 16:
            return self.data
        if bits == 8:
            return [int(v / 256) for v in self.data]
        raise ValueError(f"bits must be 8 or 16, not {bits}")

    def to_json(self, bits: int = 16) -> bytes:
        """audiowaveform's JSON document, compact, keys in its order."""
        document = {
            "version": 2,
            "channels": self.channels,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel,
            "bits": bits,
            "length": self.length,
            "data": self.values(bits),
        }
        return json.dumps(document, separators=(",", ":")).encode()


def _integer(document: dict[str, Any], name: str, low: int) -> int:
    value = document.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise InvalidPeaks(f"{name} must be an integer >= {low}")
    return value


def parse_waveform(body: bytes) -> Waveform:
    """A stored 16-bit document back as a Waveform."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InvalidPeaks("not JSON") from exc
    if not isinstance(document, dict) or document.get("version") != 2:
        raise InvalidPeaks("not an audiowaveform version 2 document")
    if document.get("bits") != 16:
        raise InvalidPeaks("stored peaks are 16-bit")
    channels = _integer(document, "channels", 1)
    length = _integer(document, "length", 0)
    data = document.get("data")
    if not isinstance(data, list) or len(data) != 2 * channels * length:
        raise InvalidPeaks("data must hold a min and a max per pixel and channel")
    if not all(isinstance(v, int) and -32768 <= v <= 32767 for v in data):
        raise InvalidPeaks("data must be 16-bit integers")
    return Waveform(
        channels=channels,
        sample_rate=_integer(document, "sample_rate", 1),
        samples_per_pixel=_integer(document, "samples_per_pixel", 1),
        data=data,
    )
