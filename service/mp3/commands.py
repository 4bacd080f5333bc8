"""The ffmpeg command lines that make MP3s: the speech-friendly format of a WAV's layout, the
bare encode, and the encode whose decode also feeds the peaks' filtergraph branch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import ffmpeg as ffmpeg_lib

from service.peaks.tap import PeaksTap

# MPEG-1 and MPEG-2 Layer III rates. Chromium and Firefox also decode 8-12 kHz (MPEG-2.5),
# but Safari documents no support for it, so telephone audio is resampled up to 16 kHz.
_MP3_RATES = (16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class Mp3Format:
    sample_rate: int
    channels: int
    bitrate: int  # bits per second, constant

    @property
    def bytes_per_second(self) -> float:
        return self.bitrate / 8


def mp3_format(sample_rate: int, channels: int) -> Mp3Format:
    """Speech-friendly CBR settings for a WAV of this layout."""
    rate = next((r for r in _MP3_RATES if r >= sample_rate), _MP3_RATES[-1])
    channels = 1 if channels == 1 else 2
    per_channel = 32_000 if rate <= 16000 else 48_000 if rate <= 24000 else 64_000
    return Mp3Format(rate, channels, per_channel * channels)


def mp3_args(ffmpeg: str, dst: Path, fmt: Mp3Format) -> list[str]:
    """The ffmpeg command line: WAV forced on stdin (pipe protocol only), CBR MP3 to a file."""
    source = ffmpeg_lib.input("pipe:0", f="wav", protocol_whitelist="pipe")["a:0"]
    # A seekable output gets the Info (Xing) frame that tells players the exact duration;
    # constant bitrate lets them seek by byte offset.
    node = source.output(
        f"file:{dst}",
        acodec="libmp3lame",
        ar=fmt.sample_rate,
        ac=fmt.channels,
        audio_bitrate=fmt.bitrate,
        f="mp3",
        write_xing=1,
        id3v2_version=0,
        map_metadata=-1,
        fflags="+bitexact",
    )
    node = node.global_args("-nostdin", "-hide_banner", "-loglevel", "error").overwrite_output()
    return cast(list[str], node.compile(cmd=ffmpeg))


def mp3_and_peaks_args(ffmpeg: str, dst: Path, fmt: Mp3Format, peaks: PeaksTap) -> list[str]:
    """``mp3_args`` with the decoded audio split in ffmpeg's filtergraph: one branch encoded
    to the MP3, the other reduced to peaks (printed on stdout), so the WAV is decoded once."""
    args = mp3_args(ffmpeg, dst, fmt)
    # mp3_args maps the input's first audio stream; the split's first branch takes its place.
    at = args.index("-map")
    graph = f"[0:a:0]asplit=2[mp3][peaks];{peaks.branch('peaks')}"
    return [*args[:at], "-filter_complex", graph, "-map", "[mp3]", *args[at + 2 :]]
