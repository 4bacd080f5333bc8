"""Validate and measure uploaded call-recording audio at ingest.

A well-formed linear PCM WAV is stored exactly as uploaded; anything else is decoded by
ffmpeg into a 16-bit PCM WAV first. Durations always come from sample counts in a WAV
whose header we have checked against the file size, never from a container's claims.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

import ffmpeg as ffmpeg_lib  # type: ignore[import-untyped, unused-ignore]

from service.audio.ffmpeg import FfmpegSlots, run_ffmpeg

__all__ = ("AudioError", "AudioInfo", "parse_pcm_wav", "parse_pcm_wav_file", "prepare_wav")

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
# Normalised output never exceeds this: telephony audio gains nothing above it and it
# keeps stored files (and playback bandwidth) bounded.
MAX_OUTPUT_SAMPLE_RATE = 48_000
# Calls are mono or one channel per party; more channels are mixed down to two.
MAX_OUTPUT_CHANNELS = 2
MAX_CHANNELS = 8

_WAVE_FORMAT_PCM = 0x0001
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM, as laid out on disk (little-endian GUID fields).
_PCM_SUBFORMAT = bytes.fromhex("0100000000001000800000aa00389b71")
_SUPPORTED_BITS = (8, 16, 24, 32)
# A hostile file can be made of millions of empty chunks; real WAVs have a handful.
_MAX_CHUNKS = 1024
# fmt is 16..40 bytes in practice; anything huge is not something a browser expects.
_MAX_FMT_SIZE = 1024


_MSG_UNDECODABLE = "The uploaded file could not be decoded as audio"
_MSG_EMPTY = "The uploaded audio is empty"
_MSG_TIMEOUT = "Decoding the uploaded audio timed out"
_MSG_TOO_MANY_CHANNELS = f"The uploaded audio has more than {MAX_CHANNELS} channels"
_MSG_BAD_RATE = (
    f"The uploaded audio has an unsupported sample rate "
    f"(supported: {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
)


class AudioError(Exception):
    """Uploaded audio was rejected.

    ``message`` is safe to show to the API client; ``detail`` is ffmpeg's own stderr tail,
    which may contain paths and internals and so belongs in logs only.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    channels: int
    bits_per_sample: int
    data_offset: int
    data_bytes: int

    @property
    def block_align(self) -> int:
        return self.channels * self.bits_per_sample // 8

    @property
    def frames(self) -> int:
        return self.data_bytes // self.block_align

    @property
    def duration_seconds(self) -> float:
        return self.frames / self.sample_rate

    @property
    def whole_seconds(self) -> int:
        # Integer arithmetic so that exactly-half durations round up regardless of float error.
        return (2 * self.frames + self.sample_rate) // (2 * self.sample_rate)


@dataclass(frozen=True)
class _Fmt:
    sample_rate: int
    channels: int
    bits_per_sample: int


def _parse_fmt(body: bytes) -> _Fmt | None:
    if len(body) < 16:
        return None
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            return None
        cb_size, valid_bits, _channel_mask = struct.unpack_from("<HHI", body, 16)
        if cb_size < 22 or valid_bits > bits or body[24:40] != _PCM_SUBFORMAT:
            return None
    elif tag != _WAVE_FORMAT_PCM:
        return None
    if bits not in _SUPPORTED_BITS or channels < 1:
        return None
    if block_align != channels * bits // 8 or byte_rate != rate * block_align:
        return None
    return _Fmt(sample_rate=rate, channels=channels, bits_per_sample=bits)


def _read_wav_structure(f: BinaryIO, file_size: int) -> AudioInfo | None:
    """Walk the RIFF chunk headers; check structure only, not our supported ranges."""
    head = f.read(12)
    if len(head) != 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    riff_end = 8 + struct.unpack_from("<I", head, 4)[0]
    # Writers commonly omit the pad byte after an odd-sized final chunk, so the RIFF may
    # claim one byte more than the file has. Anything else means the header was not
    # finalised (streamed output, 0xFFFFFFFF placeholders) or the file was cut/extended.
    if riff_end not in (file_size, file_size + 1):
        return None

    fmt: _Fmt | None = None
    data: tuple[int, int] | None = None
    pos = 12
    for _ in range(_MAX_CHUNKS):
        if pos + 8 > riff_end:
            break
        f.seek(pos)
        header = f.read(8)
        if len(header) != 8:
            return None
        chunk_id = header[:4]
        size = struct.unpack_from("<I", header, 4)[0]
        body_start = pos + 8
        if body_start + size > file_size:
            return None
        if chunk_id == b"fmt ":
            if fmt is not None or data is not None or size > _MAX_FMT_SIZE:
                return None
            fmt = _parse_fmt(f.read(size))
            if fmt is None:
                return None
        elif chunk_id == b"data":
            # Browsers expect fmt first, and two data chunks have no agreed meaning.
            if fmt is None or data is not None:
                return None
            data = (body_start, size)
        pos = body_start + size + (size & 1)
    else:
        return None

    if fmt is None or data is None:
        return None
    info = AudioInfo(
        sample_rate=fmt.sample_rate,
        channels=fmt.channels,
        bits_per_sample=fmt.bits_per_sample,
        data_offset=data[0],
        data_bytes=data[1],
    )
    if info.data_bytes % info.block_align:
        return None
    return info


def _inspect_wav(path: Path) -> AudioInfo | None:
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return _read_wav_structure(f, size)
    except (OSError, struct.error):
        return None


def _in_supported_range(info: AudioInfo) -> bool:
    return (
        MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE
        and 1 <= info.channels <= MAX_CHANNELS
    )


def parse_pcm_wav_file(f: BinaryIO, size: int) -> AudioInfo | None:
    """``parse_pcm_wav`` of an open file of ``size`` bytes (an anonymous temporary one, say)."""
    try:
        info = _read_wav_structure(f, size)
    except (OSError, struct.error):
        return None
    if info is None or info.data_bytes == 0 or not _in_supported_range(info):
        return None
    return info


def parse_pcm_wav(path: Path) -> AudioInfo | None:
    """Return the layout of a well-formed, consistent, non-empty linear PCM WAV, else None.

    Only chunk headers are read, so this is cheap on multi-gigabyte files.
    """
    info = _inspect_wav(path)
    if info is None or info.data_bytes == 0 or not _in_supported_range(info):
        return None
    return info


async def prepare_wav(
    src: Path,
    workdir: Path,
    *,
    ffmpeg: str,
    timeout: float = 120.0,
    max_seconds: float = 4 * 3600,
    slots: FfmpegSlots | None = None,
) -> tuple[Path, AudioInfo]:
    """Return a browser-playable PCM WAV for ``src`` and its measured layout.

    ``src`` itself is returned when it already qualifies, so stored bytes match the upload.
    Otherwise a new file in ``workdir`` is returned; the caller owns and must delete it.
    Anything else is decoded at most to ``MAX_OUTPUT_CHANNELS`` channels, ``MAX_OUTPUT_SAMPLE_RATE``
    and ``max_seconds``: a few KB of FLAC may claim hours of 8-channel 384 kHz audio, and
    its decoded size, not the upload's, is what fills a disk. Raises AudioError when the upload
    is not usable audio, FfmpegBusy when ``slots`` has too many runs waiting.
    """
    info = await asyncio.to_thread(parse_pcm_wav, src)
    if info is not None:
        if info.duration_seconds > max_seconds:
            raise AudioError(_too_long(max_seconds))
        return src, info

    deadline = asyncio.get_running_loop().time() + timeout
    async with slots.slot() if slots else contextlib.nullcontext():
        # A few milliseconds of the source tell its layout (there is no ffprobe in the wheel);
        # the full decode then asks ffmpeg for the capped layout directly.
        probe = await _transcode(src, workdir, ffmpeg=ffmpeg, deadline=deadline, seconds=0.05)
        try:
            layout = await _check_output(probe)
        finally:
            await asyncio.to_thread(probe.unlink, missing_ok=True)
        dst = await _transcode(
            src,
            workdir,
            ffmpeg=ffmpeg,
            deadline=deadline,
            sample_rate=min(layout.sample_rate, MAX_OUTPUT_SAMPLE_RATE),
            channels=min(layout.channels, MAX_OUTPUT_CHANNELS),
            # One second over the limit is enough to tell that the recording is too long.
            seconds=max_seconds + 1,
        )
    try:
        info = await _check_output(dst)
        if info.duration_seconds > max_seconds:
            raise AudioError(_too_long(max_seconds))
    except BaseException:
        await asyncio.shield(asyncio.to_thread(dst.unlink, missing_ok=True))
        raise
    return dst, info


def _too_long(max_seconds: float) -> str:
    return f"The uploaded audio is longer than the limit of {max_seconds:.0f} seconds"


async def _check_output(path: Path) -> AudioInfo:
    info = await asyncio.to_thread(_inspect_wav, path)
    if info is None:
        raise AudioError(_MSG_UNDECODABLE, "ffmpeg output is not a consistent PCM WAV")
    if info.data_bytes == 0:
        raise AudioError(_MSG_EMPTY)
    if info.channels > MAX_CHANNELS:
        raise AudioError(_MSG_TOO_MANY_CHANNELS)
    if not MIN_SAMPLE_RATE <= info.sample_rate <= MAX_SAMPLE_RATE:
        raise AudioError(_MSG_BAD_RATE)
    return info


def _build_args(
    ffmpeg: str,
    dst: Path,
    sample_rate: int | None,
    channels: int | None = None,
    seconds: float | None = None,
) -> list[str]:
    out_opts: dict[str, object] = {
        "vn": None,
        "sn": None,
        "dn": None,
        "map_metadata": -1,
        # Keeps ffmpeg's version string (a LIST/ISFT chunk) out of stored files.
        "fflags": "+bitexact",
        "acodec": "pcm_s16le",
        "f": "wav",
    }
    if sample_rate is not None:
        out_opts["ar"] = sample_rate
    if channels is not None:
        out_opts["ac"] = channels
    if seconds is not None:
        out_opts["t"] = seconds
    # The upload is stdin itself, read through the fd protocol only: seekable, so an MP4 whose
    # index follows its data decodes, while a playlist or concat list in the upload has no way
    # to make ffmpeg open local files or URLs.
    stream = ffmpeg_lib.input("fd:", protocol_whitelist="fd")["a:0"]
    # "file:" stops a ':' in the work directory path being parsed as a protocol name.
    node = stream.output(f"file:{dst}", **out_opts)
    # -n: never overwrite; the name is fresh, so an existing file means something is wrong.
    node = node.global_args("-nostdin", "-hide_banner", "-loglevel", "error", "-n")
    return cast(list[str], node.compile(cmd=ffmpeg))


async def _transcode(
    src: Path,
    workdir: Path,
    *,
    ffmpeg: str,
    deadline: float,
    sample_rate: int | None = None,
    channels: int | None = None,
    seconds: float | None = None,
) -> Path:
    # Naming only, no I/O: a cancellation before ffmpeg starts then has nothing to clean up.
    dst = workdir / f"audio-{uuid.uuid4().hex}.wav"
    try:
        remaining = deadline - asyncio.get_running_loop().time()
        args = _build_args(ffmpeg, dst, sample_rate, channels, seconds)
        result = await run_ffmpeg(args, src, timeout=remaining)
        returncode, stderr = result.returncode, result.stderr
        if returncode is None:
            raise AudioError(_MSG_TIMEOUT, stderr)
        if returncode != 0:
            raise AudioError(_MSG_UNDECODABLE, stderr)
        info = await asyncio.to_thread(_inspect_wav, dst)
        if info is not None and info.data_bytes == 0:
            # ffmpeg exits 0 even when demuxing failed outright (e.g. an MP4 whose index
            # sits after the data, which a pipe cannot seek back to); only a silent run
            # with no samples is genuinely empty audio.
            raise AudioError(_MSG_EMPTY if not stderr else _MSG_UNDECODABLE, stderr)
    except BaseException:
        await asyncio.shield(asyncio.to_thread(dst.unlink, missing_ok=True))
        raise
    return dst
