"""The MP3 and the peaks of a new recording from one decode: the worker's two jobs make both
in one ffmpeg run, and the peaks that run reads are the ones a decode of their own gives."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest

from service.audio.ffmpeg import run_ffmpeg
from service.mp3.commands import mp3_and_peaks_args, mp3_format
from service.peaks.maker import decode_peaks
from service.peaks.tap import PeaksTap
from service.peaks.waveform import Waveform, samples_per_pixel
from service.services import Services, open_services
from service.settings import Settings
from service.worker import make_mp3, make_peaks
from tests.support.clients import Account, uploaded_sid
from tests.support.ffmpeg import CountingFfmpeg, ffmpeg_children
from tests.support.peaks import reference_peaks, stretches_wav
from tests.support.rows import fetch_rows, insert_raw_recording
from tests.support.wavs import chunk, fmt_pcm, riff


def noise_wav(rate: int, channels: int, seconds: float, *, bits: int = 16) -> bytes:
    """Loud and quiet noise, so every pixel has extremes of its own."""
    rng = random.Random(rate * channels + bits)
    frames = int(rate * seconds)
    top = (1 << (bits - 1)) - 1
    values = []
    for i in range(frames * channels):
        scale = top if (i // (rate * channels // 3)) % 2 == 0 else top // 50
        values.append(rng.randint(-scale - 1, scale))
    width = bits // 8
    if bits == 8:
        body = bytes(v + 128 for v in values)
    else:
        body = b"".join(v.to_bytes(width, "little", signed=True) for v in values)
    return riff(chunk(b"fmt ", fmt_pcm(rate, channels, bits)), chunk(b"data", body))


@pytest.mark.parametrize(
    ("rate", "channels", "bits", "seconds"),
    [(8000, 1, 16, 7.3), (16000, 2, 16, 3.1), (8000, 1, 24, 2.0), (8000, 1, 8, 2.5)],
)
def test_the_split_run_reads_the_peaks_a_decode_of_their_own_gives(
    settings: Settings, tmp_path: Path, rate: int, channels: int, bits: int, seconds: float
) -> None:
    wav = tmp_path / "in.wav"
    wav.write_bytes(noise_wav(rate, channels, seconds, bits=bits))
    expected = int(rate * seconds)
    ffmpeg = settings.ffmpeg_path

    async def go() -> None:
        alone = await decode_peaks(
            ffmpeg,
            wav,
            channels=channels,
            sample_rate=rate,
            expected_frames=expected,
            timeout=60,
        )
        assert alone.result.ok, alone.result.stderr
        spp = samples_per_pixel(rate, expected)
        tap = PeaksTap(channels=channels, sample_rate=rate, samples_per_pixel=spp)
        dst = tmp_path / "out.mp3"
        args = mp3_and_peaks_args(ffmpeg, dst, mp3_format(rate, channels), tap)
        result = await run_ffmpeg(args, wav, timeout=60, output=tap.feed)
        assert result.ok, result.stderr
        waveform = tap.finish()
        assert not tap.malformed
        assert tap.frames == alone.frames == expected
        assert waveform == alone.waveform
        assert dst.stat().st_size > 0

    asyncio.run(go())


async def peaks_job(services: Services, account_sid: str, sid: str) -> None:
    """The worker's peaks job, with what the worker hands it."""
    await make_peaks(services.pool, services.peaks, services.transcoder, account_sid, sid)


@pytest.mark.parametrize(
    "stretches",
    [
        [(2, [0]), (3, [20000]), (2, [0]), (3.0003, [5000])],
        [(1, [0, 9000]), (1.5, [31000, 0]), (0.7001, [2000, 32767])],
    ],
    ids=["mono", "stereo"],
)
def test_the_worker_makes_both_from_one_bare_encode(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    stretches: list[tuple[float, list[int]]],
) -> None:
    wav, samples = stretches_wav(stretches)
    channels = len(stretches[0][1])
    sid = uploaded_sid(client, account, wav)
    counted = settings.model_copy(update={"ffmpeg": str(counting_ffmpeg.path)})

    async def jobs() -> None:
        async with open_services(counted) as services:
            # Both jobs are queued by an ingest and usually taken in one batch.
            await asyncio.gather(
                make_mp3(services, account.sid, sid), peaks_job(services, account.sid, sid)
            )

    asyncio.run(jobs())
    # One ffmpeg run, the MP3's alone: the peaks came from the WAV's bytes on their way in.
    assert counting_ffmpeg.mp3_runs() == 1
    assert counting_ffmpeg.mp3_and_peaks_runs() == 0 and counting_ffmpeg.peaks_runs() == 0
    (row,) = fetch_rows(
        settings.database_url,
        "SELECT r.mp3_key, p.peaks_key FROM recordings r"
        " JOIN recording_peaks p ON p.sid = r.sid WHERE r.sid = $1",
        sid,
    )
    assert row["mp3_key"] and row["peaks_key"]
    doc = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json").json()
    assert doc["channels"] == channels
    assert doc["data"] == reference_peaks(samples, channels, doc["samples_per_pixel"])
    mp3 = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.mp3")
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert counting_ffmpeg.mp3_runs() == 1, "the API served the worker's MP3"


def test_a_24_bit_recording_is_split_in_ffmpeg_once(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
    tmp_path: Path,
) -> None:
    # Ingest keeps a linear PCM upload as it came: its samples are not 16-bit ones to reduce.
    wav = noise_wav(8000, 1, 4.2, bits=24)
    sid = uploaded_sid(client, account, wav)
    counted = settings.model_copy(update={"ffmpeg": str(counting_ffmpeg.path)})
    (tmp_path / "in.wav").write_bytes(wav)

    async def jobs() -> Waveform:
        async with open_services(counted) as services:
            await asyncio.gather(
                make_mp3(services, account.sid, sid), peaks_job(services, account.sid, sid)
            )
        alone = await decode_peaks(
            settings.ffmpeg_path,
            tmp_path / "in.wav",
            channels=1,
            sample_rate=8000,
            expected_frames=int(8000 * 4.2),
            timeout=60,
        )
        return alone.waveform

    decoded = asyncio.run(jobs())
    assert counting_ffmpeg.mp3_and_peaks_runs() == 1
    assert counting_ffmpeg.mp3_runs() == 1 and counting_ffmpeg.peaks_runs() == 0
    doc = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json").json()
    assert doc["data"] == decoded.data


@pytest.mark.parametrize(
    "body",
    [
        # A minute claimed, two seconds held (an object cut short in storage).
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"data", b"\x00\x10" * 16_000))[:44]
        + b"\x00\x10" * 16_000,
        # Two seconds claimed of the minute that follows.
        riff(
            chunk(b"fmt ", fmt_pcm(8000, 1, 16)),
            chunk(b"data", b"\x00\x10" * 480_000, declared=32_000),
        ),
        # A size no header holds.
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"data", b"", declared=0xFFFFFFFE)),
    ],
    ids=["cut-short", "claims-less", "absurd-size"],
)
def test_a_stored_wav_whose_header_lies_fails_both_cleanly(
    settings: Settings, account: Account, counting_ffmpeg: CountingFfmpeg, body: bytes
) -> None:
    # The row's measured minute is what both are held to: neither is stored, both are
    # remembered as failed, and the jobs end normally.
    sid = insert_raw_recording(settings, account.sid, body, 60)
    counted = settings.model_copy(update={"ffmpeg": str(counting_ffmpeg.path)})

    async def jobs() -> None:
        async with open_services(counted) as services:
            await asyncio.gather(
                make_mp3(services, account.sid, sid), peaks_job(services, account.sid, sid)
            )

    asyncio.run(jobs())
    (row,) = fetch_rows(
        settings.database_url,
        "SELECT r.mp3_key, r.mp3_error, p.peaks_key, p.error FROM recordings r"
        " LEFT JOIN recording_peaks p ON p.sid = r.sid WHERE r.sid = $1",
        sid,
    )
    assert row["mp3_key"] is None and row["mp3_error"]
    assert row["peaks_key"] is None and row["error"]
    assert ffmpeg_children() == []


def test_a_peaks_job_alone_still_decodes_when_the_mp3_is_made(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    counting_ffmpeg: CountingFfmpeg,
) -> None:
    wav, samples = stretches_wav([(1, [3000]), (1, [0])])
    sid = uploaded_sid(client, account, wav)
    assert client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.mp3").status_code == 200
    counted = settings.model_copy(update={"ffmpeg": str(counting_ffmpeg.path)})

    async def job() -> None:
        async with open_services(counted) as services:
            await peaks_job(services, account.sid, sid)

    asyncio.run(job())
    assert counting_ffmpeg.peaks_runs() == 1 and counting_ffmpeg.mp3_runs() == 0
    doc = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json").json()
    assert doc["data"] == reference_peaks(samples, 1, doc["samples_per_pixel"])


def test_an_ffmpeg_that_cannot_split_still_makes_both(
    client: httpx.Client, settings: Settings, account: Account, tmp_path: Path
) -> None:
    # An ffmpeg without astats (a build of its own) fails the split run at once.
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$*" in *astats*) echo "No such filter: astats" >&2; exit 1;; esac\n'
        f'exec {settings.ffmpeg_path} "$@"\n'
    )
    wrapper.chmod(0o755)
    wav, samples = stretches_wav([(1, [7000]), (1, [0])])
    sid = uploaded_sid(client, account, wav)
    limited = settings.model_copy(update={"ffmpeg": str(wrapper)})

    async def jobs() -> None:
        async with open_services(limited) as services:
            await make_mp3(services, account.sid, sid)
            await peaks_job(services, account.sid, sid)

    asyncio.run(jobs())
    (row,) = fetch_rows(
        settings.database_url,
        "SELECT r.mp3_key, r.mp3_error, p.peaks_key FROM recordings r"
        " JOIN recording_peaks p ON p.sid = r.sid WHERE r.sid = $1",
        sid,
    )
    assert row["mp3_key"] and row["mp3_error"] is None and row["peaks_key"]
    doc = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json").json()
    assert doc["data"] == reference_peaks(samples, 1, doc["samples_per_pixel"])
