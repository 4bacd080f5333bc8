"""The voice-platform guide (docs/ingest.md), run: the files Asterisk and FreeSWITCH write,
posted by deploy/voice-platforms/recordings-post exactly as their dialplans call it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.support.clients import Account
from tests.support.stack import ServerThread

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "voice-platforms" / "recordings-post"
RECORDED_AT = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def platform_file(ffmpeg: str, path: Path, *, rate: int, channels: int, seconds: int) -> Path:
    """16-bit PCM WAV as MixMonitor and record_session write it, stamped when 'recorded'."""
    subprocess.run(
        [
            ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi",
            "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}",
            "-ac", str(channels), "-c:a", "pcm_s16le", "-fflags", "+bitexact",
            "-map_metadata", "-1", str(path),
        ],
        check=True,
    )  # fmt: skip
    os.utime(path, (RECORDED_AT.timestamp(), RECORDED_AT.timestamp()))
    return path


def post(file: Path, call_id: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), str(file), call_id],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("platform", "call_id", "rate", "channels", "expected_hex"),
    [
        # Asterisk's ${UNIQUEID}: not hex, so the CallSid is made from its SHA-256.
        ("asterisk", "1732912345.17", 8000, 1, None),
        ("asterisk-wideband", "1732912345.18", 16000, 1, None),
        # FreeSWITCH's ${uuid}: its own 32 hex digits, with RECORD_STEREO's two channels.
        ("freeswitch", str(uuid.uuid4()), 16000, 2, "uuid"),
        ("freeswitch-narrowband", str(uuid.uuid4()).upper(), 8000, 1, "uuid"),
    ],
)
def test_platform_recordings_arrive_through_the_post_script(
    tmp_path: Path,
    settings: Settings,
    server: ServerThread,
    client: httpx.Client,
    account: Account,
    platform: str,
    call_id: str,
    rate: int,
    channels: int,
    expected_hex: str | None,
) -> None:
    # Named as each platform names its files: ${UNIQUEID}.wav and ${uuid}.wav.
    file = platform_file(
        settings.ffmpeg_path, tmp_path / f"{call_id}.wav", rate=rate, channels=channels, seconds=5
    )
    original = file.read_bytes()
    env = {
        "RECORDINGS_URL": server.base_url,
        "RECORDINGS_INGEST_TOKEN": settings.ingest_token or "",
        "RECORDINGS_ACCOUNT_SID": account.sid,
        "RECORDINGS_DELETE_AFTER": "true",
    }
    result = post(file, call_id, env)
    assert result.returncode == 0, result.stderr
    sid = result.stdout.strip()
    assert sid.startswith("RE") and len(sid) == 34
    assert not file.exists()  # RECORDINGS_DELETE_AFTER: removed once stored

    if expected_hex == "uuid":
        want = "CA" + call_id.replace("-", "").lower()
    else:
        want = "CA" + hashlib.sha256(call_id.encode()).hexdigest()[:32]
    base = f"/2008-08-01/Accounts/{account.sid}/Recordings"
    meta = client.get(f"{base}/{sid}.json").json()
    assert meta["call_sid"] == want
    assert meta["duration"] == "5"
    assert meta["date_created"] == "Sat, 14 Mar 2026 15:09:26 +0000"
    # A platform's PCM WAV is stored byte for byte.
    assert client.get(f"{base}/{sid}.wav").content == original


def test_a_refused_upload_keeps_the_file_and_fails(
    tmp_path: Path, settings: Settings, server: ServerThread, account: Account
) -> None:
    file = platform_file(
        settings.ffmpeg_path, tmp_path / "1732912345.19.wav", rate=8000, channels=1, seconds=1
    )
    env = {
        "RECORDINGS_URL": server.base_url,
        "RECORDINGS_INGEST_TOKEN": "wrong",
        "RECORDINGS_ACCOUNT_SID": account.sid,
        "RECORDINGS_DELETE_AFTER": "true",
    }
    result = post(file, "1732912345.19", env)
    assert result.returncode != 0
    assert "401" in result.stderr or "ingest token" in result.stdout + result.stderr
    assert file.exists()
