"""Each pixel's minimum and maximum of little-endian 16-bit samples, with the standard library
at close to C speed: no loop in Python over the samples.

A sample is its high byte (signed) times 256 plus its low byte, so its extremes are found byte
by byte: the largest high byte, then the largest low byte among the samples that have it (the
same for the smallest). High bytes are first mapped to an order-preserving unsigned byte, and a
byte string's largest value is found by membership tests, which run as ``memchr`` (about 0.1 us
for a pixel of 7,200 bytes): first on each byte's high nibble, then within the nibble found.
The low bytes of the samples with the extreme high byte are read one by one when there are a
few, else masked all at once through two integers.

For an hour at 8 kHz this is about 0.14 s of CPU, where ``min`` and ``max`` over the samples
(service.peaks.reducer) take 1.47 s and the MP3 encode itself 6-8 s. (NumPy would take 0.01 s,
but would add about 70 MB to the container image.)
"""

from __future__ import annotations

# A high byte as an unsigned one in the same order: -128..127 -> 0..255.
_ORDERED = bytes(v ^ 0x80 for v in range(256))
_NIBBLE = bytes(v >> 4 for v in range(256))
# 0xFF where a byte is ``k``, 0 elsewhere; and the other way round.
_ONLY = [bytes(0xFF if v == k else 0 for v in range(256)) for k in range(256)]
_ALL_BUT = [bytes(0 if v == k else 0xFF for v in range(256)) for k in range(256)]
# Past this many samples with the extreme high byte, their low bytes are masked at once.
_FEW = 96


def channel_bytes(block: bytes, channel: int, channels: int) -> tuple[bytes, bytes, bytes]:
    """One channel's low bytes, its high bytes made unsigned in the same order, and those
    high bytes' nibbles: the arguments of ``extremes`` for pixels sliced from them."""
    stride = 2 * channels
    highs = block[2 * channel + 1 :: stride].translate(_ORDERED)
    return block[2 * channel :: stride], highs, highs.translate(_NIBBLE)


def extremes(lows: bytes, highs: bytes, nibbles: bytes) -> tuple[int, int]:
    """The smallest and largest sample of a non-empty run, given as ``channel_bytes`` gives."""
    top = _largest(highs, nibbles)
    bottom = _smallest(highs, nibbles)
    return (
        (bottom - 128) * 256 + _low_of(lows, highs, bottom, largest=False),
        (top - 128) * 256 + _low_of(lows, highs, top, largest=True),
    )


def _largest(values: bytes, nibbles: bytes) -> int:
    for nibble in range(15, -1, -1):
        if nibble in nibbles:
            for value in range(16 * nibble + 15, 16 * nibble - 1, -1):
                if value in values:
                    return value
    raise ValueError("no values")


def _smallest(values: bytes, nibbles: bytes) -> int:
    for nibble in range(16):
        if nibble in nibbles:
            for value in range(16 * nibble, 16 * nibble + 16):
                if value in values:
                    return value
    raise ValueError("no values")


def _low_of(lows: bytes, highs: bytes, high: int, *, largest: bool) -> int:
    """The largest (or smallest) low byte among the samples whose high byte is ``high``."""
    at = highs.find(high)
    best = lows[at]
    for _ in range(_FEW):
        at = highs.find(high, at + 1)
        if at < 0:
            return best
        low = lows[at]
        if (low > best) if largest else (low < best):
            best = low
    # Many samples share it (a clipped or square wave): the others' low bytes are masked to
    # 0 (for the largest) or 0xFF (for the smallest), all at once, and the bytes probed from
    # the extreme one (the extreme is usually near it: few probes).
    size = len(lows)
    if largest:
        mask = int.from_bytes(highs.translate(_ONLY[high]), "big")
        masked = (int.from_bytes(lows, "big") & mask).to_bytes(size, "big")
        return next(v for v in range(255, -1, -1) if v in masked)
    mask = int.from_bytes(highs.translate(_ALL_BUT[high]), "big")
    masked = (int.from_bytes(lows, "big") | mask).to_bytes(size, "big")
    return next(v for v in range(256) if v in masked)
