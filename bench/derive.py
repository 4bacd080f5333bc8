"""``python -m bench.derive``: the CPU the worker spends on a new recording's MP3 and peaks,
against a bare ffmpeg MP3 encode of the same one-hour 8 kHz file, measured in one run.

Four figures, CPU seconds (user + system, this process and its ffmpeg children, from
getrusage), medians of ``--runs`` rounds in which the four take turns:

- bare: the MP3's ffmpeg command line (service.mp3.transcoder.mp3_args), the file as its stdin:
  what an MP3 costs at all;
- two: what the worker did two rounds ago, two runs through run_ffmpeg: the MP3, then the
  peaks' own decode (decode_peaks, every sample reduced in Python);
- split: what it did last round, one run of mp3_and_peaks_args, the decode split in ffmpeg's
  filtergraph and the peaks read through a PeaksTap;
- now: what it does now, service.mp3.with_peaks.encode_with_peaks as the transcoder calls it: a
  bare MP3 encode, the peaks reduced from the WAV's bytes on their way in (service.peaks.pcm).

The worker figures are fed through a pipe in 256 KB chunks, as the worker feeds the object it
reads from storage. The ratios to bare are the figures; the target is now / bare <= 1.15.
Nothing is asserted but that all three make the same peaks.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from bench.audio import RATE, make_wav
from service.audio.ffmpeg import run_ffmpeg
from service.mp3.commands import mp3_and_peaks_args, mp3_args, mp3_format
from service.mp3.with_peaks import encode_with_peaks
from service.peaks.maker import decode_peaks
from service.peaks.tap import PeaksTap
from service.peaks.waveform import Waveform, samples_per_pixel
from service.settings import Settings

CHUNK = 256 * 1024
TARGET = 1.15


def cpu_seconds() -> float:
    """User and system CPU of this process and its reaped children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


async def chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as file:
        while block := file.read(CHUNK):
            yield block


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.derive", description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600, help="recording length (3600)")
    parser.add_argument("--runs", type=int, default=3, help="rounds (3)")
    args = parser.parse_args(argv)
    ffmpeg = Settings().ffmpeg_path
    frames = args.seconds * RATE
    fmt = mp3_format(RATE, 1)
    spp = samples_per_pixel(RATE, frames)
    with tempfile.TemporaryDirectory(prefix="bench-derive-") as tmp:
        wav = make_wav(Path(tmp) / "call.wav", args.seconds)
        dst = Path(tmp) / "out.mp3"
        peaks: dict[str, Waveform] = {}

        def bare() -> None:
            with wav.open("rb") as stdin:
                subprocess.run(mp3_args(ffmpeg, dst, fmt), stdin=stdin, check=True, timeout=900)

        def two() -> None:
            async def go() -> None:
                made = await run_ffmpeg(mp3_args(ffmpeg, dst, fmt), chunks(wav), timeout=900)
                assert made.ok, made.stderr
                decoded = await decode_peaks(
                    ffmpeg,
                    chunks(wav),
                    channels=1,
                    sample_rate=RATE,
                    expected_frames=frames,
                    timeout=900,
                )
                assert decoded.result.ok and decoded.frames == frames, decoded.result.stderr
                peaks["two"] = decoded.waveform

            asyncio.run(go())

        def split() -> None:
            async def go() -> None:
                tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=spp)
                command = mp3_and_peaks_args(ffmpeg, dst, fmt, tap)
                made = await run_ffmpeg(command, chunks(wav), timeout=900, output=tap.feed)
                assert made.ok, made.stderr
                peaks["split"] = tap.finish()
                assert tap.frames == frames and not tap.malformed

            asyncio.run(go())

        def now() -> None:
            async def go() -> None:
                tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=spp)
                made = await encode_with_peaks(ffmpeg, chunks(wav), dst, fmt, tap, timeout=900)
                assert made.result.ok, made.result.stderr
                assert not made.split, "the WAV was not read as 16-bit PCM"
                peaks["now"] = made.peaks.finish()
                assert made.peaks.frames == frames and not made.peaks.malformed

            asyncio.run(go())

        cases: dict[str, Callable[[], None]] = {
            "bare": bare,
            "two": two,
            "split": split,
            "now": now,
        }
        bare()  # warm the page cache and ffmpeg's own start-up
        spent: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, case in cases.items():
                before = cpu_seconds()
                case()
                spent[name].append(cpu_seconds() - before)
    assert peaks["split"] == peaks["two"], "the split run's peaks differ from a decode's own"
    assert peaks["now"] == peaks["two"], "the peaks read from the WAV differ from a decode's"
    figures = {name: statistics.median(values) for name, values in spent.items()}
    print(f"MP3 and peaks of a {args.seconds} s recording at {RATE} Hz,")
    print(f"CPU seconds (this process and ffmpeg), median of {args.runs} rounds; ffmpeg: {ffmpeg}")
    print(f"{'':6}{'cpu s':>10}{'x bare':>10}   runs")
    for name, seconds in figures.items():
        runs = " ".join(f"{v:.2f}" for v in spent[name])
        print(f"{name:6}{seconds:10.2f}{seconds / figures['bare']:10.2f}   {runs}")
    print("peaks identical in all three worker figures")
    ratio = figures["now"] / figures["bare"]
    verdict = "met" if ratio <= TARGET else "not met"
    print(f"ratio now / bare MP3 encode: {ratio:.2f} (target <= {TARGET}: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
