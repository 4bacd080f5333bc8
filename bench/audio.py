"""Benchmark audio: 8 kHz mono 16-bit PCM WAV (telephone speech rate) of any length.

One minute of the service's own demo audio (tones and pauses over line noise) is made once and
repeated, so a one-hour file (57.6 MB) takes a fraction of a second to write.
"""

from __future__ import annotations

import tempfile
import wave
from pathlib import Path

from devstack.demo import RATE, write_demo_wav

BYTES_PER_SECOND = RATE * 2


def make_wav(path: Path, seconds: int) -> Path:
    """A mono 16-bit ``RATE`` Hz WAV of exactly ``seconds`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        unit = write_demo_wav(Path(tmp) / "minute.wav", 60.0)
        with wave.open(str(unit)) as source:
            minute = source.readframes(source.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        left = seconds * BYTES_PER_SECOND
        while left > 0:
            piece = minute[: min(left, len(minute))]
            out.writeframes(piece)
            left -= len(piece)
    return path
