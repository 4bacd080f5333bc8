"""parse_pcm_wav and AudioInfo: which WAVs are stored as they came, read from headers alone."""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import pytest

from service.audio.probe import AudioInfo, parse_pcm_wav
from tests.support.wavs import (
    FLOAT_GUID,
    GOOD_DATA,
    GOOD_FMT,
    chunk,
    fmt_extensible,
    fmt_pcm,
    noise_wav,
    riff,
)


@pytest.mark.parametrize(
    ("frames", "rate", "expected"),
    [
        (20_000, 8000, 3),
        (19_999, 8000, 2),
        (4000, 8000, 1),
        (3999, 8000, 0),
        (8000, 8000, 1),
        (0, 8000, 0),
        (66_150, 44_100, 2),
    ],
)
def test_whole_seconds_rounds_half_up(frames: int, rate: int, expected: int) -> None:
    info = AudioInfo(rate, 2, 16, 44, frames * 4)
    assert info.frames == frames
    assert info.whole_seconds == expected
    assert info.duration_seconds == pytest.approx(frames / rate)


def test_unknown_chunk_before_fmt_and_odd_data_with_pad_byte(tmp_path: Path) -> None:
    data = b"\x80" * 8001  # 8-bit mono, odd length needs a pad byte before the next chunk
    src = tmp_path / "odd.wav"
    src.write_bytes(
        riff(
            chunk(b"JUNK", b"\x00" * 28),
            chunk(b"fmt ", fmt_pcm(8000, 1, 8)),
            chunk(b"data", data),
            chunk(b"LIST", b"INFO"),
        )
    )
    info = parse_pcm_wav(src)
    assert info is not None
    assert (info.data_offset, info.data_bytes, info.frames) == (12 + 36 + 24 + 8, 8001, 8001)


def test_missing_final_pad_byte_is_tolerated(tmp_path: Path) -> None:
    data = b"\x80" * 101
    raw = riff(chunk(b"fmt ", fmt_pcm(8000, 1, 8)), chunk(b"data", data))
    src = tmp_path / "nopad.wav"
    src.write_bytes(raw[:-1])  # RIFF size still counts the pad byte, as many writers do
    info = parse_pcm_wav(src)
    assert info is not None and info.data_bytes == 101


def test_parse_reads_only_headers_of_huge_file(tmp_path: Path) -> None:
    data_bytes = 3_000_000_000
    src = tmp_path / "huge.wav"
    with src.open("wb") as f:
        f.write(riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), riff_size=4 + 24 + 8 + data_bytes))
        f.write(b"data" + struct.pack("<I", data_bytes))
        f.truncate(f.tell() + data_bytes)  # sparse: takes no disk space
    tracemalloc.start()
    try:
        info = parse_pcm_wav(src)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info is not None and info.data_bytes == data_bytes
    assert info.whole_seconds == 187_500
    assert peak < 1_000_000


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"RIFF", id="short"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA)[:30], id="cut-in-fmt"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA, form=b"AVI "), id="not-wave"),
        pytest.param(b"RIFX" + riff(GOOD_FMT, GOOD_DATA)[4:], id="rifx"),
        pytest.param(b"RF64" + riff(GOOD_FMT, GOOD_DATA)[4:], id="rf64"),
        pytest.param(
            riff(GOOD_FMT, chunk(b"data", b"\x01\x02" * 100, declared=0x7FFFFFF0)),
            id="data-claims-more-than-file",
        ),
        pytest.param(riff(GOOD_FMT, GOOD_DATA, riff_size=0xFFFFFFFF), id="riff-size-placeholder"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA, riff_size=1000), id="riff-size-too-big"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA, riff_size=100), id="riff-size-too-small"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA) + b"\x00" * 64, id="trailing-garbage"),
        pytest.param(riff(GOOD_FMT, chunk(b"data", b"\x01\x02\x03")), id="partial-frame"),
        pytest.param(riff(GOOD_FMT, chunk(b"data", b"")), id="zero-data"),
        pytest.param(riff(GOOD_FMT), id="no-data"),
        pytest.param(riff(GOOD_DATA), id="no-fmt"),
        pytest.param(riff(GOOD_DATA, GOOD_FMT), id="fmt-after-data"),
        pytest.param(riff(GOOD_FMT, GOOD_FMT, GOOD_DATA), id="two-fmt"),
        pytest.param(riff(GOOD_FMT, GOOD_DATA, GOOD_DATA), id="two-data"),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)[:14]), GOOD_DATA), id="short-fmt"),
        pytest.param(
            riff(chunk(b"fmt ", fmt_pcm(8000, 1, 32, tag=3)), chunk(b"data", b"\0" * 8)),
            id="ieee-float",
        ),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(8000, 1, 8, tag=7)), GOOD_DATA), id="mulaw"),
        pytest.param(
            riff(
                chunk(b"fmt ", fmt_extensible(8000, 1, 32, FLOAT_GUID)), chunk(b"data", b"\0" * 8)
            ),
            id="extensible-float",
        ),
        pytest.param(
            riff(chunk(b"fmt ", fmt_extensible(8000, 1, 16)[:30]), GOOD_DATA), id="extensible-short"
        ),
        pytest.param(
            riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 24000, 3, 12)), GOOD_DATA),
            id="12-bit",
        ),
        pytest.param(
            riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 8000, 2, 16)), GOOD_DATA),
            id="bad-byte-rate",
        ),
        pytest.param(
            riff(chunk(b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 32000, 4, 16)), GOOD_DATA),
            id="bad-block-align",
        ),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(8000, 0, 16)), GOOD_DATA), id="zero-channels"),
        pytest.param(
            riff(chunk(b"fmt ", fmt_extensible(8000, 9, 16)), chunk(b"data", b"\0" * 18 * 4)),
            id="nine-channels",
        ),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(999, 1, 16)), GOOD_DATA), id="rate-999"),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(384_001, 1, 16)), GOOD_DATA), id="rate-384001"),
        pytest.param(riff(chunk(b"fmt ", fmt_pcm(4_000_000_000, 1, 16)), GOOD_DATA), id="rate-4e9"),
        pytest.param(
            riff(GOOD_FMT, *[chunk(b"JUNK", b"")] * 2000, GOOD_DATA), id="too-many-chunks"
        ),
        pytest.param(
            riff(GOOD_FMT, GOOD_DATA, b"LIST\xff\xff\x00\x00INFO"), id="trailing-chunk-overruns"
        ),
    ],
)
def test_parse_rejects_malformed_or_unsupported(tmp_path: Path, raw: bytes) -> None:
    src = tmp_path / "x.wav"
    src.write_bytes(raw)
    assert parse_pcm_wav(src) is None


@pytest.mark.parametrize(
    ("rate", "channels", "bits"), [(1000, 1, 16), (384_000, 8, 32), (22_050, 3, 24), (8000, 2, 8)]
)
def test_parse_accepts_range_limits(tmp_path: Path, rate: int, channels: int, bits: int) -> None:
    align = channels * bits // 8
    src = tmp_path / "x.wav"
    src.write_bytes(
        riff(chunk(b"fmt ", fmt_pcm(rate, channels, bits)), chunk(b"data", b"\0" * align * 10))
    )
    assert parse_pcm_wav(src) == AudioInfo(rate, channels, bits, 44, align * 10)


def test_parse_missing_file_returns_none(tmp_path: Path) -> None:
    assert parse_pcm_wav(tmp_path / "nope.wav") is None


@pytest.mark.parametrize(
    ("rate", "channels", "width"), [(8000, 1, 2), (16_000, 2, 2), (11_025, 1, 1)]
)
def test_stdlib_wavs_are_read_from_their_header(
    tmp_path: Path, rate: int, channels: int, width: int
) -> None:
    src = tmp_path / "noise.wav"
    src.write_bytes(noise_wav(1000, rate=rate, channels=channels, width=width))
    assert parse_pcm_wav(src) == AudioInfo(rate, channels, 8 * width, 44, 1000 * channels * width)


def test_extensible_pcm_is_accepted(tmp_path: Path) -> None:
    data = b"\0" * 6 * 4800  # 24-bit stereo, 4800 frames
    src = tmp_path / "ext.wav"
    src.write_bytes(riff(chunk(b"fmt ", fmt_extensible(48_000, 2, 24)), chunk(b"data", data)))
    info = parse_pcm_wav(src)
    assert info == AudioInfo(48_000, 2, 24, 12 + 48 + 8, len(data))
    assert info.duration_seconds == 0.1
