"""``python -m bench.peaks``: the peaks of a one-hour 8 kHz recording against a bare ffmpeg
decode of the same file, measured side by side in one run.

Three figures, medians of ``--runs`` runs each, on a WAV written once into a temporary
directory (removed at the end):

- bare: the ffmpeg command line of the peaks' decode (service.peaks.maker.decode_args), the file
  as its stdin, raw PCM written to /dev/null: what decoding costs at all;
- piped: the same through run_ffmpeg with every chunk handed to Python and dropped: what the
  pipe into the service costs;
- peaks: decode_peaks, the function the service runs (ffmpeg plus the streaming min/max reducer).

The ratio peaks / bare is the figure; nothing here is asserted (no timed tests).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.audio import RATE, make_wav
from service.audio.ffmpeg import run_ffmpeg
from service.peaks.maker import decode_args, decode_peaks
from service.settings import Settings


def median_seconds(runs: int, once: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peaks", description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600, help="recording length (3600)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (3)")
    args = parser.parse_args(argv)
    ffmpeg = Settings().ffmpeg_path
    frames = args.seconds * RATE
    with tempfile.TemporaryDirectory(prefix="bench-peaks-") as tmp:
        wav = make_wav(Path(tmp) / "call.wav", args.seconds)
        command = decode_args(ffmpeg, 1)

        def bare() -> None:
            with wav.open("rb") as stdin:
                subprocess.run(
                    command, stdin=stdin, stdout=subprocess.DEVNULL, check=True, timeout=600
                )

        def piped() -> None:
            result = asyncio.run(run_ffmpeg(command, wav, timeout=600, output=lambda _: None))
            assert result.ok, result.stderr

        sizes: list[int] = []

        def peaks() -> None:
            decoded = asyncio.run(
                decode_peaks(
                    ffmpeg,
                    wav,
                    channels=1,
                    sample_rate=RATE,
                    expected_frames=frames,
                    timeout=600,
                )
            )
            assert decoded.result.ok and decoded.frames == frames, decoded.result.stderr
            sizes[:] = [decoded.waveform.length, len(decoded.waveform.to_json(16))]

        bare()  # warm the page cache and ffmpeg's own start-up
        figures = {
            "bare": median_seconds(args.runs, bare),
            "piped": median_seconds(args.runs, piped),
            "peaks": median_seconds(args.runs, peaks),
        }
    megabytes = frames * 2 / 1e6
    print(f"peaks of a {args.seconds} s recording at {RATE} Hz ({megabytes:.1f} MB WAV),")
    print(f"median of {args.runs} runs each, ffmpeg: {ffmpeg}")
    print(f"{'':8}{'seconds':>10}{'x bare':>10}")
    for name, seconds in figures.items():
        print(f"{name:8}{seconds:10.3f}{seconds / figures['bare']:10.2f}")
    print(f"peaks: {sizes[0]} pixels, {sizes[1] / 1000:.1f} KB of JSON (16-bit)")
    print(f"ratio peaks / bare ffmpeg decode: {figures['peaks'] / figures['bare']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
