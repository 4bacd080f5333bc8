"""Audio with known loud and silent stretches, and the plain reference its peaks must equal."""

from __future__ import annotations

import array
import io
import wave
from collections.abc import Sequence


def stretches_wav(
    stretches: Sequence[tuple[float, Sequence[int]]], *, rate: int = 8000
) -> tuple[bytes, list[int]]:
    """A 16-bit PCM WAV of square waves: each stretch is (seconds, one amplitude per channel),
    the wave flipping between +amplitude and -amplitude every 10 samples, so each stretch's
    minimum and maximum are exactly -/+ its amplitude (0: silence). Also its interleaved samples.
    """
    channels = len(stretches[0][1])
    samples = array.array("h")
    for seconds, amplitudes in stretches:
        assert len(amplitudes) == channels
        frames = round(seconds * rate)
        period = []
        for i in range(20):
            sign = 1 if i < 10 else -1
            period += [max(-32768, min(32767, sign * a)) for a in amplitudes]
        block = array.array("h", period) * (frames // 20 + 1)
        samples += block[: frames * channels]
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.tobytes())
    return out.getvalue(), list(samples)


def reference_peaks(samples: Sequence[int], channels: int, samples_per_pixel: int) -> list[int]:
    """audiowaveform's data for these interleaved samples, the slow and obvious way."""
    frames = len(samples) // channels
    data = []
    for first in range(0, frames, samples_per_pixel):
        last = min(first + samples_per_pixel, frames)
        for channel in range(channels):
            pixel = [samples[f * channels + channel] for f in range(first, last)]
            data += [min(pixel), max(pixel)]
    return data
