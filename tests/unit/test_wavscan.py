"""WavScan measures a WAV fed in pieces exactly as service.audio.probe measures it in a file."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from service.audio.probe import AudioInfo, parse_pcm_wav
from service.ingest.wavscan import WavScan
from tests.support.wavs import chunk, fmt_extensible, fmt_pcm, noise_wav, riff


def _scanned(data: bytes, pieces: list[int]) -> tuple[WavScan, AudioInfo | None]:
    scan = WavScan()
    at = 0
    for size in pieces:
        scan.feed(data[at : at + size])
        at += size
    scan.feed(data[at:])
    return scan, scan.measure()


def _at_rest(tmp_path: Path, data: bytes) -> AudioInfo | None:
    path = tmp_path / "upload.wav"
    path.write_bytes(data)
    return parse_pcm_wav(path)


def _mutations(wav: bytes, rng: random.Random) -> bytes:
    data = bytearray(wav)
    match rng.randrange(7):
        case 0:
            return bytes(data[: rng.randrange(len(data))])
        case 1:
            data += chunk(b"LIST", rng.randbytes(rng.randrange(40)))
        case 2:
            data[rng.randrange(60)] = rng.randrange(256)
        case 3:
            data[36:36] = chunk(b"JUNK", b"abc")
        case 4:
            data += b"LIST" + struct.pack("<I", 1000) + b"short"
        case 5:
            data[12:12] = chunk(b"JUNK", b"\0" * rng.randrange(1, 3000))
        case _:
            pass
    if rng.random() < 0.8:
        struct.pack_into("<I", data, 4, len(data) - 8 + rng.choice([0, 0, 0, 1, -1, 2]))
    return bytes(data)


def test_a_plain_wav_in_one_byte_pieces() -> None:
    wav = noise_wav(1001, seed=3)
    scan, info = _scanned(wav, [1] * 200)
    assert info == AudioInfo(8000, 1, 16, 44, 2002)
    assert scan.looks_like_pcm_wav(len(wav))
    assert not scan.looks_like_pcm_wav(len(wav) + 2)


@pytest.mark.parametrize("seed", range(40))
def test_any_wav_in_any_pieces_measures_as_at_rest(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    wav = noise_wav(rng.randrange(1, 5000), channels=rng.choice([1, 2]), seed=seed)
    for _ in range(10):
        data = _mutations(wav, rng)
        pieces = [rng.randrange(1, 64) for _ in range(rng.randrange(30))]
        assert _scanned(data, pieces)[1] == _at_rest(tmp_path, data)


def test_an_extensible_pcm_wav_streams_and_a_mu_law_one_does_not(tmp_path: Path) -> None:
    audio = b"\0\0" * 800
    extensible = riff(chunk(b"fmt ", fmt_extensible(8000, 1, 16)), chunk(b"data", audio))
    scan, info = _scanned(extensible, [7, 100])
    assert info == _at_rest(tmp_path, extensible) and info is not None
    assert scan.looks_like_pcm_wav(len(extensible))
    mu_law = riff(chunk(b"fmt ", fmt_pcm(8000, 1, 8, tag=7)), chunk(b"data", audio))
    scan, info = _scanned(mu_law, [])
    assert info is None
    assert not scan.looks_like_pcm_wav(len(mu_law))
