"""``python -m bench.derive``: the CPU the worker spends on a new recording's MP3 and peaks,
against a bare ffmpeg MP3 encode of the same one-hour 8 kHz file, measured in one run.

Three figures, CPU seconds (user + system, this process and its ffmpeg children, from
getrusage), medians of ``--runs`` rounds in which the three take turns:

- bare: the MP3's ffmpeg command line (service.mp3.transcoder.mp3_args), the file as its stdin:
  what an MP3 costs at all;
- two: what the worker did before, two runs through run_ffmpeg: the MP3, then the peaks' own
  decode (decode_peaks, every sample reduced in Python);
- one: what it does now, one run of mp3_and_peaks_args, the peaks read through a PeaksTap.

Both worker figures are fed through a pipe in 256 KB chunks, as the worker feeds the object it
reads from storage. The ratios two / bare and one / bare are the figures; nothing is asserted.
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
from service.mp3.transcoder import mp3_and_peaks_args, mp3_args, mp3_format
from service.peaks.maker import decode_peaks
from service.peaks.tap import PeaksTap
from service.peaks.waveform import Waveform, samples_per_pixel
from service.settings import Settings

CHUNK = 256 * 1024


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

        def one() -> None:
            async def go() -> None:
                tap = PeaksTap(channels=1, sample_rate=RATE, samples_per_pixel=spp)
                command = mp3_and_peaks_args(ffmpeg, dst, fmt, tap)
                made = await run_ffmpeg(command, chunks(wav), timeout=900, output=tap.feed)
                assert made.ok, made.stderr
                peaks["one"] = tap.finish()
                assert tap.frames == frames and not tap.malformed

            asyncio.run(go())

        cases: dict[str, Callable[[], None]] = {"bare": bare, "two": two, "one": one}
        bare()  # warm the page cache and ffmpeg's own start-up
        spent: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, case in cases.items():
                before = cpu_seconds()
                case()
                spent[name].append(cpu_seconds() - before)
    assert peaks["one"] == peaks["two"], "the split run's peaks differ from a decode's own"
    figures = {name: statistics.median(values) for name, values in spent.items()}
    print(f"MP3 and peaks of a {args.seconds} s recording at {RATE} Hz,")
    print(f"CPU seconds (this process and ffmpeg), median of {args.runs} rounds; ffmpeg: {ffmpeg}")
    print(f"{'':6}{'cpu s':>10}{'x bare':>10}   runs")
    for name, seconds in figures.items():
        runs = " ".join(f"{v:.2f}" for v in spent[name])
        print(f"{name:6}{seconds:10.2f}{seconds / figures['bare']:10.2f}   {runs}")
    print("peaks identical in both worker figures")
    print(f"ratio one decode / bare MP3 encode: {figures['one'] / figures['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
