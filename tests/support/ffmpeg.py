"""ffmpeg in tests: audio files it makes, runs counted, and ffmpeg children of this process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil


def generate(ffmpeg: str, out: Path, *args: str) -> Path:
    """Run ffmpeg with ``args`` (inputs and encoder options) writing ``out``."""
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
        check=True,
    )
    return out


def sine(rate: int, seconds: float, channels: int = 1) -> list[str]:
    """ffmpeg input arguments of a 440 Hz tone."""
    src = f"sine=frequency=440:sample_rate={rate}:duration={seconds}"
    if channels == 1:
        return ["-f", "lavfi", "-i", src]
    return ["-f", "lavfi", "-i", src, "-ac", str(channels)]


class CountingFfmpeg:
    """The real ffmpeg behind a script that logs each run, so tests can count them."""

    def __init__(self, real: str, directory: Path) -> None:
        self.log = directory / "runs.log"
        self.log.touch()
        self.path = directory / "ffmpeg"
        self.path.write_text(f'#!/bin/sh\necho "$*" >> {self.log}\nexec {real} "$@"\n')
        self.path.chmod(0o755)

    def mp3_runs(self) -> int:
        return sum("libmp3lame" in line for line in self.log.read_text().splitlines())

    def mp3_and_peaks_runs(self) -> int:
        """One decode for both: the MP3's run with the peaks' branch in its filtergraph."""
        lines = self.log.read_text().splitlines()
        return sum("libmp3lame" in line and "astats" in line for line in lines)

    def peaks_runs(self) -> int:
        """Decodes to raw PCM on stdout: only the peaks write to pipe:1."""
        return sum("pipe:1" in line for line in self.log.read_text().splitlines())


def ffmpeg_children() -> list[psutil.Process]:
    """The live (not zombie) ffmpeg processes below this one."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "ffmpeg" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found
