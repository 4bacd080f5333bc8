"""prepare_wav with the real ffmpeg: what is stored as it came, what is normalised, what is
refused, and ffmpeg processes that never outlive a request."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import stat
import struct
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import psutil
import pytest

from service.audio.probe import AudioError, AudioInfo, _build_args, parse_pcm_wav, prepare_wav
from tests.support.ffmpeg import generate, sine
from tests.support.wavs import GOOD_DATA, GOOD_FMT, chunk, fmt_extensible, fmt_pcm, noise_wav, riff


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@pytest.fixture(autouse=True)
def no_leftover_children() -> Iterator[None]:
    # Session fixtures elsewhere in the suite run servers as children; only new ones count.
    me = psutil.Process()
    before = set(me.children(recursive=True))
    yield
    # Zombies are listed too, so this catches both unkilled and unreaped ffmpeg processes.
    left = set(me.children(recursive=True)) - before
    assert not left, f"child processes left behind: {left}"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    return d


def run_prepare(
    src: Path, workdir: Path, ffmpeg: str, timeout: float = 60.0
) -> tuple[Path, AudioInfo]:
    return asyncio.run(prepare_wav(src, workdir, ffmpeg=ffmpeg, timeout=timeout))


def expect_audio_error(src: Path, workdir: Path, ffmpeg: str, **kw: float) -> AudioError:
    with pytest.raises(AudioError) as excinfo:
        run_prepare(src, workdir, ffmpeg, **kw)
    assert list(workdir.iterdir()) == [], "partial output left in workdir"
    return excinfo.value


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_normalised(
    dst: Path, info: AudioInfo, src: Path, workdir: Path, *, rate: int, channels: int
) -> None:
    assert dst != src
    assert dst.parent == workdir
    assert list(workdir.iterdir()) == [dst]
    assert parse_pcm_wav(dst) == info
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (rate, channels, 16)
    raw = dst.read_bytes()
    assert struct.unpack_from("<H", raw, 20)[0] in (1, 0xFFFE)
    # The stdlib reader only accepts integer PCM, so it independently confirms the format.
    with wave.open(str(dst), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, channels, 2)
        assert w.getnframes() == info.frames


# --- pass-through of well-formed PCM WAV -------------------------------------------------


def test_wellformed_8k_mono_wav_is_returned_unchanged(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    src = tmp_path / "call.wav"
    src.write_bytes(noise_wav(28_000))
    before = sha256(src)
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst == src
    assert sha256(src) == before
    assert info == AudioInfo(8000, 1, 16, 44, 56_000)
    assert info.duration_seconds == 3.5
    assert info.whole_seconds == 4
    assert list(workdir.iterdir()) == []


def test_list_chunks_before_and_after_data_pass_through(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes = 5120 frames of 16-bit mono
    list_before = chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00test\x00")  # odd size, padded
    list_after = chunk(b"LIST", b"INFOICMT\x03\x00\x00\x00hi\x00")
    src = tmp_path / "list.wav"
    src.write_bytes(
        riff(chunk(b"fmt ", fmt_pcm(16_000, 1, 16)), list_before, chunk(b"data", data), list_after)
    )
    before = sha256(src)
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst == src and sha256(src) == before
    assert info.data_offset == 12 + 8 + 16 + len(list_before) + 8
    assert src.read_bytes()[info.data_offset : info.data_offset + info.data_bytes] == data
    assert info.frames == 5120
    assert info.duration_seconds == 0.32


def test_wave_format_extensible_pcm_passes_through(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    data = random.Random(7).randbytes(6 * 4800)  # 24-bit stereo, 4800 frames
    src = tmp_path / "ext.wav"
    src.write_bytes(riff(chunk(b"fmt ", fmt_extensible(48_000, 2, 24)), chunk(b"data", data)))
    before = sha256(src)
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst == src and sha256(src) == before
    assert info == AudioInfo(48_000, 2, 24, 12 + 48 + 8, len(data))
    assert info.duration_seconds == 0.1


def test_8bit_wav_passes_through(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    src = generate(ffmpeg_exe, tmp_path / "u8.wav", *sine(11_025, 2), "-c:a", "pcm_u8")
    before = sha256(src)
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst == src and sha256(src) == before
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (11_025, 1, 8)
    assert info.frames == 22_050


def test_stereo_44k_wav_from_ffmpeg_passes_through(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    # ffmpeg's default WAV has a LIST/ISFT chunk ahead of data.
    src = generate(ffmpeg_exe, tmp_path / "st.wav", *sine(44_100, 1.5, channels=2))
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst == src
    assert (info.sample_rate, info.channels, info.bits_per_sample) == (44_100, 2, 16)
    assert info.data_offset > 44
    assert info.frames == 66_150


# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encode", "rate", "channels", "seconds"),
    [
        ("mulaw.wav", ["-c:a", "pcm_mulaw"], 8000, 1, 3.0),
        ("float.wav", ["-c:a", "pcm_f32le"], 16_000, 1, 2.0),
        ("call.mp3", ["-c:a", "libmp3lame"], 8000, 1, 3.0),
        ("stereo.flac", ["-c:a", "flac"], 44_100, 2, 2.5),
        ("call.ogg", ["-c:a", "libvorbis"], 22_050, 1, 2.0),
        ("call.m4a", ["-c:a", "aac", "-movflags", "+faststart"], 16_000, 1, 2.0),
    ],
)
def test_non_pcm_inputs_are_normalised(
    tmp_path: Path,
    workdir: Path,
    ffmpeg_exe: str,
    name: str,
    encode: list[str],
    rate: int,
    channels: int,
    seconds: float,
) -> None:
    src = generate(ffmpeg_exe, tmp_path / name, *sine(rate, seconds, channels), *encode)
    assert parse_pcm_wav(src) is None
    before = sha256(src)
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert_normalised(dst, info, src, workdir, rate=rate, channels=channels)
    assert info.duration_seconds == pytest.approx(seconds, abs=0.1)
    assert sha256(src) == before


def test_high_sample_rate_is_resampled_to_48k(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    src = generate(ffmpeg_exe, tmp_path / "hi.flac", *sine(96_000, 2, channels=2), "-c:a", "flac")
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert_normalised(dst, info, src, workdir, rate=48_000, channels=2)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.1)


def test_wav_header_claiming_4gib_gets_duration_of_actual_data(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    data = random.Random(3).randbytes(1024)  # 512 frames of 16-bit mono at 8 kHz
    src = tmp_path / "liar.wav"
    src.write_bytes(riff(GOOD_FMT, chunk(b"data", data, declared=0xFFFFFF00), riff_size=0xFFFFFFFF))
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert_normalised(dst, info, src, workdir, rate=8000, channels=1)
    assert info.frames == 512
    assert info.duration_seconds == 0.064
    # PCM to PCM at the same rate must not alter samples.
    assert dst.read_bytes()[info.data_offset : info.data_offset + info.data_bytes] == data


def test_truncated_wav_gets_duration_of_what_remains(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    full = tmp_path / "full.wav"
    full.write_bytes(noise_wav(16_000))
    src = tmp_path / "cut.wav"
    src.write_bytes(full.read_bytes()[: 44 + 8000 * 2 + 1])  # 1 s and half a sample
    assert parse_pcm_wav(src) is None
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert_normalised(dst, info, src, workdir, rate=8000, channels=1)
    assert info.frames == 8000
    assert info.whole_seconds == 1


def test_truncated_header_is_rejected(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    full = tmp_path / "full.wav"
    full.write_bytes(noise_wav(100))
    src = tmp_path / "cut.wav"
    src.write_bytes(full.read_bytes()[:30])
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message in (
        "The uploaded file could not be decoded as audio",
        "The uploaded audio is empty",
    )


# --- rejections --------------------------------------------------------------------------


def test_zero_length_file_is_rejected(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    src = tmp_path / "empty.wav"
    src.write_bytes(b"")
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded file could not be decoded as audio"
    assert err.detail  # ffmpeg's reason is kept for the logs


def test_random_bytes_are_rejected(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "noise.bin"
    src.write_bytes(random.Random(0).randbytes(4 * 1024 * 1024))
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded file could not be decoded as audio"
    # ffmpeg gives up long before the 4 MiB are fed; the broken pipe must be handled quietly.
    assert [r for r in caplog.records if r.name == "asyncio"] == []


def test_text_file_is_rejected(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    src = tmp_path / "notes.txt"
    src.write_text("Meeting notes\nThis is not audio at all.\n" * 500)
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded file could not be decoded as audio"
    assert str(src) not in err.message and str(workdir) not in err.message


def test_wav_with_empty_data_chunk_is_rejected_as_empty(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    src = tmp_path / "nodata.wav"
    src.write_bytes(riff(GOOD_FMT, chunk(b"data", b"")))
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded audio is empty"
    assert str(err) == err.message


def test_absurd_sample_rate_in_pcm_header_is_rejected(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    src = tmp_path / "absurd.wav"
    src.write_bytes(riff(chunk(b"fmt ", fmt_pcm(4_000_000_000, 1, 16)), GOOD_DATA))
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded file could not be decoded as audio"


@pytest.mark.parametrize("rate", [500, 500_000])
def test_decodable_but_unsupported_sample_rate_is_rejected(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str, rate: int
) -> None:
    # A float WAV is not passed through, so ffmpeg decodes it at its odd rate.
    src = tmp_path / "odd-rate.wav"
    src.write_bytes(
        riff(chunk(b"fmt ", fmt_pcm(rate, 1, 32, tag=3)), chunk(b"data", b"\0\0\0\0" * 2000))
    )
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message.startswith("The uploaded audio has an unsupported sample rate")


def test_more_than_eight_channels_is_rejected(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    src = tmp_path / "twelve.wav"
    src.write_bytes(riff(chunk(b"fmt ", fmt_pcm(8000, 12, 16)), chunk(b"data", b"\0" * 24 * 800)))
    assert parse_pcm_wav(src) is None
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded audio has more than 8 channels"


def test_mp4_with_index_after_data_decodes(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    # Through a pipe ffmpeg could not seek back from a trailing moov atom and exited 0 with no
    # samples; the upload is handed over as a seekable descriptor instead.
    src = generate(ffmpeg_exe, tmp_path / "slow.m4a", *sine(44_100, 60), "-c:a", "aac")
    dst, info = run_prepare(src, workdir, ffmpeg_exe)
    assert dst != src
    assert abs(info.duration_seconds - 60) < 0.1


# --- hostile containers referring to other files -----------------------------------------


@pytest.fixture
def secret_audio(tmp_path: Path, ffmpeg_exe: str) -> Path:
    # Real audio, so that following the reference would make the upload succeed.
    return generate(
        ffmpeg_exe,
        tmp_path / "secret.m4a",
        *sine(8000, 3),
        "-c:a",
        "aac",
        "-movflags",
        "+faststart",
    )


def dash_manifest(target: Path) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT3S"
     profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" minBufferTime="PT1S">
 <Period><AdaptationSet mimeType="audio/mp4">
  <Representation id="a" bandwidth="64000" codecs="mp4a.40.2" audioSamplingRate="8000">
   <BaseURL>file:{target}</BaseURL>
  </Representation>
 </AdaptationSet></Period>
</MPD>
"""


def hls_playlist(target: Path) -> str:
    return (
        f"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:3.0,\nfile:{target}\n#EXTINF:3.0,\n{target}\n#EXT-X-ENDLIST\n"
    )


def ffconcat_list(target: Path) -> str:
    return f"ffconcat version 1.0\nfile 'file:{target}'\nfile '{target}'\nfile '{target.name}'\n"


@pytest.mark.parametrize(
    "make", [dash_manifest, hls_playlist, ffconcat_list], ids=["dash", "hls", "ffconcat"]
)
def test_manifests_cannot_make_ffmpeg_read_other_files(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str, secret_audio: Path, make: object
) -> None:
    assert callable(make)
    src = tmp_path / "upload.bin"
    src.write_text(make(secret_audio))
    err = expect_audio_error(src, workdir, ffmpeg_exe)
    assert err.message == "The uploaded file could not be decoded as audio"
    assert str(secret_audio) not in err.message


def test_dash_manifest_would_leak_without_protocol_whitelist(
    tmp_path: Path, ffmpeg_exe: str, secret_audio: Path
) -> None:
    # Control for the test above: the very same command, with only the whitelist widened,
    # does read the referenced file, so the manifest is a real threat and not just invalid.
    src = tmp_path / "upload.mpd"
    src.write_text(dash_manifest(secret_audio))
    out = tmp_path / "leak.wav"
    args = _build_args(ffmpeg_exe, out, None)
    args[args.index("-protocol_whitelist") + 1] = "fd,file"
    with src.open("rb") as stdin:
        subprocess.run(args, stdin=stdin, check=True, capture_output=True)
    info = parse_pcm_wav(out)
    assert info is not None and info.duration_seconds == pytest.approx(3.0, abs=0.1)


# --- process hygiene ---------------------------------------------------------------------


def test_timeout_kills_ffmpeg_and_cleans_up(tmp_path: Path, workdir: Path, ffmpeg_exe: str) -> None:
    src = generate(ffmpeg_exe, tmp_path / "long.wav", *sine(8000, 600), "-c:a", "pcm_mulaw")
    started = time.monotonic()
    err = expect_audio_error(src, workdir, ffmpeg_exe, timeout=0.0)
    assert err.message == "Decoding the uploaded audio timed out"
    assert time.monotonic() - started < 5


@pytest.fixture
def fake_ffmpeg(tmp_path: Path) -> tuple[str, Path]:
    """An "ffmpeg" that hangs and leaves a grandchild in its process group."""
    pidfile = tmp_path / "grandchild.pid"
    script = tmp_path / "fake-ffmpeg"
    script.write_text(
        f"#!/bin/sh\nsleep 300 &\necho $! > {pidfile}.tmp\n"
        f"mv {pidfile}.tmp {pidfile}\nexec sleep 300\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script), pidfile


def assert_process_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return  # dead; its new parent (init) reaps it
        except psutil.NoSuchProcess:
            return
        time.sleep(0.02)
    pytest.fail(f"process {pid} survived")


def test_timeout_kills_whole_process_group(
    tmp_path: Path, workdir: Path, fake_ffmpeg: tuple[str, Path]
) -> None:
    exe, pidfile = fake_ffmpeg
    src = tmp_path / "in.wav"
    src.write_bytes(noise_wav(1_000_000, width=1))
    src.write_bytes(src.read_bytes()[:-1])  # make it need normalising

    async def scenario() -> None:
        # The outer bound turns a hang (a survivor holding the pipes open) into a failure.
        await asyncio.wait_for(prepare_wav(src, workdir, ffmpeg=exe, timeout=1.0), 15)

    with pytest.raises(AudioError) as excinfo:
        asyncio.run(scenario())
    assert excinfo.value.message == "Decoding the uploaded audio timed out"
    assert list(workdir.iterdir()) == []
    assert_process_gone(int(pidfile.read_text()))


def test_cancellation_kills_and_reaps_ffmpeg(
    tmp_path: Path, workdir: Path, fake_ffmpeg: tuple[str, Path]
) -> None:
    exe, pidfile = fake_ffmpeg
    src = tmp_path / "in.txt"
    src.write_text("not audio\n" * 100_000)

    async def scenario() -> None:
        task = asyncio.create_task(prepare_wav(src, workdir, ffmpeg=exe, timeout=60))

        def exec_done() -> bool:
            # The script writes the pidfile, then execs sleep: our child shows it only after.
            return any(p.cmdline()[-2:] == ["sleep", "300"] for p in psutil.Process().children())

        for _ in range(500):
            if pidfile.exists() and exec_done():
                break
            await asyncio.sleep(0.01)
        assert pidfile.exists(), "fake ffmpeg never started"
        assert exec_done(), "fake ffmpeg is not our child"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)  # a TimeoutError here means reaping hung

    asyncio.run(scenario())
    assert list(workdir.iterdir()) == []
    assert_process_gone(int(pidfile.read_text()))


def test_unreadable_source_raises_os_error_not_audio_error(
    tmp_path: Path, workdir: Path, ffmpeg_exe: str
) -> None:
    # A server-side fault must not be blamed on the client's upload.
    with pytest.raises(FileNotFoundError):
        run_prepare(tmp_path / "missing.wav", workdir, ffmpeg_exe)
    assert list(workdir.iterdir()) == []
