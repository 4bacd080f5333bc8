"""WAV bytes for tests, made in memory: seeded noise in any PCM format, and the RIFF pieces that
well-formed, odd and hostile files are assembled from.

Speech-like audio of a given length is devstack.demo.write_demo_wav's (the `demo_wav` fixture).
"""

from __future__ import annotations

import io
import random
import struct
import wave

PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")
FLOAT_GUID = bytes.fromhex("0300000000001000800000aa00389b71")


def noise_wav(
    frames: int, *, rate: int = 8000, channels: int = 1, width: int = 2, seed: int = 1234
) -> bytes:
    """A PCM WAV of ``frames`` frames of seeded noise (``width`` bytes per sample)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(random.Random(seed).randbytes(frames * channels * width))
    return out.getvalue()


def fmt_pcm(rate: int, channels: int, bits: int, tag: int = 1) -> bytes:
    """The body of a 16-byte ``fmt `` chunk."""
    align = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)


def fmt_extensible(rate: int, channels: int, bits: int, guid: bytes = PCM_GUID) -> bytes:
    """The body of a WAVE_FORMAT_EXTENSIBLE ``fmt `` chunk."""
    base = fmt_pcm(rate, channels, bits, tag=0xFFFE)
    return base + struct.pack("<HHI", 22, bits, 0x3) + guid


def chunk(cid: bytes, body: bytes, declared: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length; its size field may lie (``declared``)."""
    size = len(body) if declared is None else declared
    return cid + struct.pack("<I", size) + body + (b"\x00" if len(body) % 2 else b"")


def riff(*chunks: bytes, riff_size: int | None = None, form: bytes = b"WAVE") -> bytes:
    """A RIFF file of ``chunks``; its size field may lie (``riff_size``)."""
    body = form + b"".join(chunks)
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def pcm_header(rate: int, data_size: int, channels: int = 1, bits: int = 16) -> bytes:
    """The 44-byte head of a PCM WAV whose data chunk claims ``data_size`` bytes."""
    return riff(
        chunk(b"fmt ", fmt_pcm(rate, channels, bits)),
        chunk(b"data", b"", declared=data_size),
        riff_size=min(36 + data_size, 0xFFFFFFFF),
    )


# The pieces of a small valid file (8 kHz mono 16-bit), which the malformed ones vary.
GOOD_FMT = chunk(b"fmt ", fmt_pcm(8000, 1, 16))
GOOD_DATA = chunk(b"data", b"\x01\x02" * 100)
