"""Generated demo audio: tones and pauses that sound like a short call, as 8 kHz PCM WAV."""

from __future__ import annotations

import math
import random
import struct
import wave
from pathlib import Path

RATE = 8000


def write_demo_wav(path: Path, seconds: float, *, seed: int = 0) -> Path:
    """A mono 16-bit WAV of ``seconds``: beeps of varying pitch over a little line noise."""
    rng = random.Random(seed)
    frames = bytearray()
    total = int(seconds * RATE)
    pitch = 440.0
    for i in range(total):
        if i % RATE == 0:
            pitch = rng.choice((350.0, 440.0, 480.0, 620.0, 697.0, 941.0))
        t = i / RATE
        audible = (i % RATE) < RATE * 0.6
        tone = 0.3 * math.sin(2 * math.pi * pitch * t) if audible else 0.0
        sample = tone + rng.uniform(-0.01, 0.01)
        frames += struct.pack("<h", int(max(-1.0, min(1.0, sample)) * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(bytes(frames))
    return path
