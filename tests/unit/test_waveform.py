"""audiowaveform's JSON: the fields and their order, 8 bits as audiowaveform divides, the
resolution that keeps an hour in tens of KB, and stored documents read back."""

from __future__ import annotations

import json
import random

import pytest

from service.peaks.waveform import (
    MAX_PIXELS,
    InvalidPeaks,
    Waveform,
    parse_waveform,
    samples_per_pixel,
)


def test_the_document_has_audiowaveforms_fields_in_order() -> None:
    waveform = Waveform(channels=2, sample_rate=48000, samples_per_pixel=512, data=[-1, 2, -3, 4])
    body = waveform.to_json()
    assert body == (
        b'{"version":2,"channels":2,"sample_rate":48000,"samples_per_pixel":512,"bits":16,'
        b'"length":1,"data":[-1,2,-3,4]}'
    )


def test_eight_bits_divide_by_256_toward_zero_as_audiowaveform_does() -> None:
    data = [-32768, 32767, -256, -255, 255, 256, -1, 0, -12345, 12345]
    waveform = Waveform(channels=1, sample_rate=8000, samples_per_pixel=1, data=data)
    document = json.loads(waveform.to_json(8))
    assert document["bits"] == 8
    assert document["data"] == [-128, 127, -1, 0, 0, 1, 0, 0, -48, 48]
    assert all(-128 <= v <= 127 for v in document["data"])
    with pytest.raises(ValueError):
        waveform.values(12)


@pytest.mark.parametrize(
    ("rate", "seconds", "pixels"),
    [
        (8000, 3600, MAX_PIXELS),
        (8000, 600, MAX_PIXELS),
        (16000, 7200, MAX_PIXELS),
        (48000, 3600, MAX_PIXELS),
        (8000, 3, 600),  # 200 pixels per second at most
        (8000, 1, 200),
    ],
)
def test_resolution(rate: int, seconds: int, pixels: int) -> None:
    frames = rate * seconds
    spp = samples_per_pixel(rate, frames)
    assert -(-frames // spp) == pixels
    assert spp * pixels >= frames


def test_an_hour_of_loud_audio_is_tens_of_kb_not_the_audio() -> None:
    rng = random.Random(5)
    frames = 8000 * 3600
    spp = samples_per_pixel(8000, frames)
    length = -(-frames // spp)
    data = [v for _ in range(length) for v in (rng.randint(-32768, -1), rng.randint(0, 32767))]
    waveform = Waveform(channels=1, sample_rate=8000, samples_per_pixel=spp, data=data)
    assert 20_000 < len(waveform.to_json(16)) < 64_000
    assert 10_000 < len(waveform.to_json(8)) < 40_000
    assert len(waveform.to_json(16)) < frames * 2 / 500  # the WAV is 57.6 MB


def test_a_stored_document_reads_back() -> None:
    waveform = Waveform(channels=2, sample_rate=8000, samples_per_pixel=40, data=[-5, 5, 0, 1])
    assert parse_waveform(waveform.to_json()) == waveform


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"version":1,"bits":16}',
        b'{"version":2,"bits":8,"channels":1,"sample_rate":8000,"samples_per_pixel":1,"length":0,"data":[]}',
        b'{"version":2,"bits":16,"channels":0,"sample_rate":8000,"samples_per_pixel":1,"length":0,"data":[]}',
        b'{"version":2,"bits":16,"channels":1,"sample_rate":8000,"samples_per_pixel":1,"length":2,"data":[1,2]}',
        b'{"version":2,"bits":16,"channels":1,"sample_rate":8000,"samples_per_pixel":1,"length":1,"data":[1,40000]}',
        b'{"version":2,"bits":16,"channels":1,"sample_rate":8000,"samples_per_pixel":true,"length":1,"data":[1,2]}',
    ],
)
def test_anything_else_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidPeaks):
        parse_waveform(body)
