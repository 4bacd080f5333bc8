"""Two channels end to end: ingest keeps them, RequestedChannels picks them (Twilio's rules and
error 16113), conference recordings download as a mono mix, and each mix is made once, served
like any audio (length, ranges, ETag) and removed with its recording."""

from __future__ import annotations

import asyncio
import concurrent.futures
import struct
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.recordings.gc import remove_orphans
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import open_storage
from tests.support.api2010 import assert_json_error
from tests.support.clients import Account, new_account, upload
from tests.support.ffmpeg import CountingFfmpeg, generate, sine
from tests.support.rows import object_exists, stored_key
from tests.support.stack import ServerThread, make_settings
from tests.support.wavs import noise_wav

FRAMES = 8000 * 4  # four seconds at 8 kHz


def wav_channels(wav: bytes) -> int:
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    return int(struct.unpack_from("<H", wav, 22)[0])


def mp3_channels(mp3: bytes) -> int:
    """From the first frame header: channel mode 3 is mono, the others two channels."""
    header = struct.unpack(">I", mp3[:4])[0]
    assert header >> 21 == 0x7FF, "starts with a frame"
    return 1 if (header >> 6) & 0b11 == 0b11 else 2


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> CountingFfmpeg:
    return CountingFfmpeg(settings.ffmpeg_path, tmp_path_factory.mktemp("ffmpeg"))


@pytest.fixture(scope="module")
def mixing(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, counted: CountingFfmpeg
) -> Iterator[ServerThread]:
    lazy = make_settings(postgres, s3, ffmpeg=str(counted.path), transcode_on_ingest=False)
    with ServerThread(lazy) as running:
        yield running


@pytest.fixture
def http(mixing: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mixing.base_url, timeout=60) as client:
        yield client


@pytest.fixture
def owner(settings: Settings) -> Account:
    return new_account(settings.database_url)


def stereo(seed: int = 7) -> bytes:
    return noise_wav(FRAMES, channels=2, seed=seed)


def media(owner: Account, sid: str, suffix: str = ".wav") -> str:
    return f"/2010-04-01/Accounts/{owner.sid}/Recordings/{sid}{suffix}"


def mix_runs(counted: CountingFfmpeg, codec: str) -> int:
    lines = counted.log.read_text().splitlines()
    return sum(codec in line and "-ac 1" in line for line in lines)


def test_a_two_channel_upload_stays_two_channels(
    http: httpx.Client, owner: Account, settings: Settings, tmp_path: Path
) -> None:
    body = stereo()
    stored = upload(http, owner, body).json()
    sid = stored["sid"]
    meta = http.get(media(owner, sid, ".json"), auth=owner.auth).json()
    assert meta["channels"] == 2
    assert http.get(media(owner, sid)).content == body  # stored and served as uploaded
    flac = generate(
        settings.ffmpeg_path, tmp_path / "two.flac", *sine(16000, 2, channels=2), "-c:a", "flac"
    )
    decoded = upload(http, owner, flac.read_bytes()).json()
    assert http.get(media(owner, decoded["sid"], ".json"), auth=owner.auth).json()["channels"] == 2
    assert wav_channels(http.get(media(owner, decoded["sid"])).content) == 2


def test_requested_channels_of_a_call_recording(
    http: httpx.Client, owner: Account, counted: CountingFfmpeg
) -> None:
    body = stereo()
    sid = upload(http, owner, body).json()["sid"]
    # Not a conference: served as stored unless one channel is asked for.
    assert http.get(media(owner, sid)).content == body
    assert http.get(media(owner, sid) + "?RequestedChannels=2").content == body
    mono = http.get(media(owner, sid) + "?RequestedChannels=1")
    assert mono.status_code == 200, mono.text
    assert wav_channels(mono.content) == 1
    assert len(mono.content) == 44 + FRAMES * 2
    assert mono.headers["content-length"] == str(len(mono.content))
    assert mono.headers["etag"] != http.get(media(owner, sid)).headers["etag"]
    assert mp3_channels(http.get(media(owner, sid, ".mp3")).content) == 2
    mono_mp3 = http.get(media(owner, sid, ".mp3") + "?RequestedChannels=1")
    assert mono_mp3.status_code == 200 and mp3_channels(mono_mp3.content) == 1
    # The 2008 face's media takes it too.
    old = http.get(f"{owner.base}/{sid}.wav?RequestedChannels=1")
    assert old.content == mono.content


def test_a_conference_recording_is_a_mono_mix_unless_both_channels_are_asked_for(
    http: httpx.Client, owner: Account, counted: CountingFfmpeg
) -> None:
    body = stereo(seed=11)
    sid = upload(
        http, owner, body, query={"Source": "Conference", "ConferenceSid": new_sid("CF")}
    ).json()["sid"]
    wav_runs, mp3_runs = mix_runs(counted, "pcm_s16le"), mix_runs(counted, "libmp3lame")
    # Eight cold requests at once: one ffmpeg run for the mix, identical bytes for all.
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: http.get(media(owner, sid)), range(8)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert mix_runs(counted, "pcm_s16le") == wav_runs + 1
    mono = answers[0]
    assert wav_channels(mono.content) == 1 and len(mono.content) == 44 + FRAMES * 2
    # Served like any audio: exact ranges, the same strong ETag, HEAD, 304.
    part = http.get(media(owner, sid), headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == mono.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(mono.content)}"
    assert part.headers["etag"] == mono.headers["etag"]
    head = http.head(media(owner, sid))
    assert head.headers["content-length"] == str(len(mono.content))
    cached = http.get(media(owner, sid), headers={"If-None-Match": mono.headers["etag"]})
    assert cached.status_code == 304
    # Both channels on request: the recording as stored.
    both = http.get(media(owner, sid) + "?RequestedChannels=2")
    assert both.content == body and wav_channels(both.content) == 2
    # MP3s follow the same rule, each made once.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        mp3s = list(pool.map(lambda _: http.get(media(owner, sid, ".mp3")), range(4)))
    assert {a.status_code for a in mp3s} == {200} and len({a.content for a in mp3s}) == 1
    assert mp3_channels(mp3s[0].content) == 1
    assert mix_runs(counted, "libmp3lame") == mp3_runs + 1
    stereo_mp3 = http.get(media(owner, sid, ".mp3") + "?RequestedChannels=2")
    assert mp3_channels(stereo_mp3.content) == 2
    assert mix_runs(counted, "libmp3lame") == mp3_runs + 1  # the stereo MP3 is another run


def test_the_mixes_go_with_their_recording(
    http: httpx.Client, owner: Account, mixing: ServerThread
) -> None:
    sid = upload(
        http, owner, stereo(seed=3), query={"Source": "Conference", "ConferenceSid": new_sid("CF")}
    ).json()["sid"]
    assert http.get(media(owner, sid)).status_code == 200
    assert http.get(media(owner, sid, ".mp3")).status_code == 200
    keys = [stored_key(mixing.settings, owner.sid, sid, kind) for kind in ("mono.wav", "mono.mp3")]
    assert all(object_exists(mixing.settings, key) for key in keys)
    assert http.delete(media(owner, sid, ".json"), auth=owner.auth).status_code == 204
    assert not any(object_exists(mixing.settings, key) for key in keys)
    assert http.get(media(owner, sid) + "?RequestedChannels=2").status_code == 404


def test_requested_channels_that_cannot_be_served_are_clear_400s(
    http: httpx.Client, owner: Account, demo_wav: bytes
) -> None:
    sid = upload(http, owner, demo_wav).json()["sid"]  # mono
    assert http.get(media(owner, sid) + "?RequestedChannels=1").content == demo_wav
    refused = http.get(media(owner, sid) + "?RequestedChannels=2")
    body = assert_json_error(refused, 400, 16113)
    assert "one channel" in body["message"]
    assert_json_error(http.get(media(owner, sid, ".mp3") + "?RequestedChannels=2"), 400, 16113)
    for value in ("3", "0", "two", "", "1.0"):
        bad = http.get(media(owner, sid), params={"RequestedChannels": value})
        assert_json_error(bad, 400, 20001)
    old = http.get(f"{owner.base}/{sid}.wav?RequestedChannels=2")
    assert old.status_code == 400 and b"<Status>400</Status>" in old.content
    assert http.head(media(owner, sid) + "?RequestedChannels=9").status_code == 400


def test_gc_collects_a_mix_no_recording_owns_and_spares_a_live_ones(
    http: httpx.Client, owner: Account, mixing: ServerThread
) -> None:
    settings = mixing.settings
    sid = upload(http, owner, stereo(seed=5)).json()["sid"]
    assert http.get(media(owner, sid) + "?RequestedChannels=1").status_code == 200
    live = stored_key(settings, owner.sid, sid, "mono.wav")
    # A mix stored by a run that raced the DELETE of its recording, whose row is gone.
    orphan = stored_key(settings, owner.sid, new_sid("RE"), "mono.mp3")

    async def collect() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.put_bytes(orphan, b"orphaned mix", "audio/mpeg")
            pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
            try:
                await remove_orphans(pool, storage, grace=timedelta(0))
            finally:
                await pool.close()

    asyncio.run(collect())
    assert object_exists(settings, live)
    assert not object_exists(settings, orphan)
