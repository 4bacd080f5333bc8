"""Peaks.json on both faces: audiowaveform JSON equal to a plain reference computed from the
same samples, made once, served with validators under the media's access rule, 422 for audio
that does not decode, and gone with its recording."""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Iterator

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import Account, set_media_auth, uploaded_sid
from tests.support.ffmpeg import CountingFfmpeg, ffmpeg_children
from tests.support.peaks import reference_peaks, stretches_wav
from tests.support.rows import insert_raw_recording, object_exists, stored_key
from tests.support.stack import ServerThread, make_settings
from tests.support.wavs import chunk, fmt_pcm, riff

FULL = 32767


@pytest.fixture
def counted_server(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, counting_ffmpeg: CountingFfmpeg
) -> Iterator[ServerThread]:
    with ServerThread(make_settings(postgres, s3, ffmpeg=str(counting_ffmpeg.path))) as running:
        yield running


@pytest.fixture
def http(counted_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=counted_server.base_url, timeout=60) as client:
        yield client


def peaks_paths(account: Account, sid: str) -> list[str]:
    return [
        f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json",
        f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json",
    ]


def test_loud_and_silent_stretches_are_at_their_pixels_on_both_faces(
    http: httpx.Client, account: Account, counting_ffmpeg: CountingFfmpeg
) -> None:
    # 2 s silent, 3 s at full scale, 2 s silent, 3 s at a quarter: 10 s at 8 kHz.
    wav, samples = stretches_wav([(2, [0]), (3, [FULL]), (2, [0]), (3, [FULL // 4])])
    sid = uploaded_sid(http, account, wav)
    first, second = (http.get(path) for path in peaks_paths(account, sid))
    assert first.status_code == second.status_code == 200, first.text
    assert first.content == second.content
    assert first.headers["content-type"] == "application/json"
    doc = first.json()
    assert list(doc) == [
        "version",
        "channels",
        "sample_rate",
        "samples_per_pixel",
        "bits",
        "length",
        "data",
    ]
    assert (doc["version"], doc["channels"], doc["sample_rate"], doc["bits"]) == (2, 1, 8000, 16)
    spp = doc["samples_per_pixel"]
    assert doc["length"] == math.ceil(80_000 / spp) and doc["length"] * spp >= 80_000
    assert doc["data"] == reference_peaks(samples, 1, spp)
    per_second = 8000 / spp
    pairs = list(zip(doc["data"][::2], doc["data"][1::2], strict=True))
    assert set(pairs[: int(2 * per_second)]) == {(0, 0)}
    assert set(pairs[int(2 * per_second) : int(5 * per_second)]) == {(-FULL, FULL)}
    assert set(pairs[int(5 * per_second) : int(7 * per_second)]) == {(0, 0)}
    assert set(pairs[int(7 * per_second) :]) == {(-(FULL // 4), FULL // 4)}
    assert counting_ffmpeg.peaks_runs() == 1, "computed once, then read from storage"


def test_stereo_channels_are_interleaved(http: httpx.Client, account: Account) -> None:
    wav, samples = stretches_wav([(1, [20000, 0]), (1, [0, 10000])], rate=16000)
    sid = uploaded_sid(http, account, wav)
    doc = http.get(peaks_paths(account, sid)[0]).json()
    assert (doc["channels"], doc["sample_rate"]) == (2, 16000)
    assert doc["data"] == reference_peaks(samples, 2, doc["samples_per_pixel"])
    assert doc["data"][:4] == [-20000, 20000, 0, 0]
    assert doc["data"][-4:] == [0, 0, -10000, 10000]
    assert len(doc["data"]) == 4 * doc["length"]


def test_eight_bits_on_request(http: httpx.Client, account: Account) -> None:
    wav, _ = stretches_wav([(1, [0]), (1, [FULL]), (1, [300])])
    sid = uploaded_sid(http, account, wav)
    path = peaks_paths(account, sid)[1]
    wide, narrow = http.get(path), http.get(path + "?bits=8")
    assert narrow.status_code == 200
    doc = narrow.json()
    assert doc["bits"] == 8
    assert doc["data"] == [int(v / 256) for v in wide.json()["data"]]
    assert set(doc["data"]) == {-127, 127, -1, 1, 0}
    assert wide.headers["etag"] != narrow.headers["etag"]
    bad = http.get(path + "?bits=12")
    assert bad.status_code == 400
    assert bad.json()["code"] == 20001  # the 2010 face's error


def test_other_sample_formats_are_read_as_16_bits(http: httpx.Client, account: Account) -> None:
    # A 24-bit PCM WAV is stored byte for byte; its peaks are its samples' top 16 bits.
    frames = [0] * 4000 + [0x7FFF00, -0x800000] * 2000
    body = b"".join(v.to_bytes(3, "little", signed=True) for v in frames)
    wav = riff(chunk(b"fmt ", fmt_pcm(8000, 1, 24)), chunk(b"data", body))
    sid = uploaded_sid(http, account, wav)
    doc = http.get(peaks_paths(account, sid)[0]).json()
    pairs = set(zip(doc["data"][::2], doc["data"][1::2], strict=True))
    assert pairs == {(0, 0), (-32768, 32767)}


def test_validators_caching_and_cors(http: httpx.Client, account: Account) -> None:
    wav, _ = stretches_wav([(2, [1000])])
    sid = uploaded_sid(http, account, wav)
    path = peaks_paths(account, sid)[0]
    response = http.get(path)
    etag = response.headers["etag"]
    assert etag.startswith('"') and len(etag) == 42
    assert response.headers["cache-control"] == "public, max-age=86400, immutable"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["last-modified"]
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert http.get(path, headers={"If-Match": '"other"'}).status_code == 412
    assert http.head(path).status_code == 200
    preflight = http.options(
        path,
        headers={"Origin": "http://player.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "Authorization" in preflight.headers["access-control-allow-headers"]
    assert http.post(path).status_code == 405


def test_same_access_rule_as_the_media(
    http: httpx.Client, account: Account, other_account: Account, settings: Settings
) -> None:
    wav, _ = stretches_wav([(1, [1000])])
    sid = uploaded_sid(http, account, wav)
    old, new = peaks_paths(account, sid)
    set_media_auth(settings.database_url, account.sid, True)
    for path in (old, new):
        refused = http.get(path)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="Recordings"'
        assert http.get(path, auth=other_account.auth).status_code == 403
        allowed = http.get(path, auth=account.auth)
        assert allowed.status_code == 200
        assert allowed.headers["cache-control"].startswith("private")
    # Another account's path, or an unknown or malformed SID: 404, on both faces.
    for path in (
        old.replace(account.sid, other_account.sid),
        new.replace(sid, "RE" + "0" * 32),
        new.replace(sid, "RE..%2F..%2Fetc"),
    ):
        assert http.get(path, auth=account.auth).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 40,
        b"",
        # A header that claims a minute over one second of samples.
        riff(chunk(b"fmt ", fmt_pcm(8000, 1, 16)), chunk(b"data", b"\x00\x10" * 8000))[:44],
    ],
    ids=["garbage", "empty", "truncated"],
)
def test_undecodable_audio_is_a_422_remembered(
    http: httpx.Client,
    account: Account,
    settings: Settings,
    counting_ffmpeg: CountingFfmpeg,
    body: bytes,
) -> None:
    sid = insert_raw_recording(settings, account.sid, body, 60)
    old, new = peaks_paths(account, sid)
    first = http.get(old)
    assert first.status_code == 422, first.text
    assert "decoded" in first.json()["message"]
    runs = counting_ffmpeg.peaks_runs()
    assert runs == 1
    second = http.get(new)
    assert second.status_code == 422
    assert second.json()["code"] == 20422
    assert counting_ffmpeg.peaks_runs() == runs, "a failure is remembered, not retried"
    assert ffmpeg_children() == []
    assert not object_exists(settings, stored_key(settings, account.sid, sid, "peaks"))


def test_concurrent_first_requests_in_one_process_decode_once(
    http: httpx.Client, account: Account, counting_ffmpeg: CountingFfmpeg
) -> None:
    wav, _ = stretches_wav([(120, [5000])])
    sid = uploaded_sid(http, account, wav)
    paths = peaks_paths(account, sid) * 8
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(http.get, paths))
    assert {a.status_code for a in answers} == {200}
    assert len({a.content for a in answers}) == 1
    assert counting_ffmpeg.peaks_runs() == 1


def test_the_peaks_object_goes_with_its_recording(
    http: httpx.Client, account: Account, settings: Settings
) -> None:
    wav, _ = stretches_wav([(1, [1000])])
    sid = uploaded_sid(http, account, wav)
    path = peaks_paths(account, sid)[0]
    assert http.get(path).status_code == 200
    key = stored_key(settings, account.sid, sid, "peaks")
    assert object_exists(settings, key)
    assert http.delete(f"{account.base}/{sid}", auth=account.auth).status_code == 204
    assert http.get(path).status_code == 404
    assert not object_exists(settings, key)
