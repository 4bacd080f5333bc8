"""Object keys: made and read in one place, under the configured prefix, and nothing else taken
for a recording's object."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.recordings.objects import (
    KINDS,
    Kind,
    ObjectName,
    file_etag,
    object_key,
    parse_key,
    recording_keys,
)
from service.sids import new_sid
from storage.client import Storage, StorageConfig
from tests.support.rows import recording_row

ACCOUNT = "AC" + "0123456789abcdef" * 2
SID = "RE" + "fedcba9876543210" * 2
PREFIXES = ["", "faults-1a2b/", "a/b/", "tenant-7-"]


def storage(prefix: str = "") -> Storage:
    # No client: keys are pure arithmetic on the configuration.
    return Storage(None, StorageConfig(bucket="recordings", key_prefix=prefix))


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("kind", KINDS)
def test_keys_are_account_then_recording_under_the_prefix(prefix: str, kind: Kind) -> None:
    key = object_key(storage(prefix), ACCOUNT, SID, kind)
    assert key == f"{prefix}{ACCOUNT}/{SID}.{kind}"
    assert parse_key(storage(prefix), key) == ObjectName(ACCOUNT, SID, kind)


@given(
    prefix=st.sampled_from(PREFIXES),
    account=st.from_regex(r"AC[0-9a-f]{32}", fullmatch=True),
    sid=st.from_regex(r"RE[0-9a-f]{32}", fullmatch=True),
    kind=st.sampled_from(KINDS),
)
def test_every_key_made_reads_back(prefix: str, account: str, sid: str, kind: Kind) -> None:
    name = parse_key(storage(prefix), object_key(storage(prefix), account, sid, kind))
    assert name == ObjectName(account, sid, kind)


@pytest.mark.parametrize(
    "key",
    [
        "",
        f"{ACCOUNT}/notes.txt",
        f"{ACCOUNT}/{SID}.ogg",
        f"{ACCOUNT}/{SID}.WAV",
        f"{ACCOUNT}/{SID}.wav.part",
        f"{ACCOUNT}/{SID}.peaks.json",
        f"{ACCOUNT}/{SID}.PEAKS",
        f"{ACCOUNT}/{SID}",
        f"{ACCOUNT}/{SID[:-1]}.wav",
        f"{ACCOUNT}/{SID}0.wav",
        f"{ACCOUNT}/{SID.upper()}.wav",
        f"{ACCOUNT.lower().replace('ac', 'xx', 1)}/{SID}.wav",
        f"{ACCOUNT}/sub/{SID}.wav",
        f"/{ACCOUNT}/{SID}.wav",
        f"{ACCOUNT}/{'CA' + SID[2:]}.wav",
        f"{SID}.wav",
    ],
)
def test_foreign_keys_are_not_recordings(key: str) -> None:
    assert parse_key(storage(), key) is None


def test_keys_outside_the_prefix_are_not_ours() -> None:
    plain = object_key(storage(), ACCOUNT, SID, "wav")
    assert parse_key(storage("faults-1a2b/"), plain) is None
    other = object_key(storage("faults-9999/"), ACCOUNT, SID, "wav")
    assert parse_key(storage("faults-1a2b/"), other) is None
    assert parse_key(storage(), other) is None  # the prefix is no part of an account SID


def test_recording_keys_are_the_derived_and_the_named_ones() -> None:
    keys = storage("p/")
    wav = object_key(keys, ACCOUNT, SID, "wav")
    mp3 = object_key(keys, ACCOUNT, SID, "mp3")
    peaks = object_key(keys, ACCOUNT, SID, "peaks")
    mixes = [object_key(keys, ACCOUNT, SID, kind) for kind in ("mono.wav", "mono.mp3")]
    assert mixes == [f"p/{ACCOUNT}/{SID}.mono.wav", f"p/{ACCOUNT}/{SID}.mono.mp3"]
    plain = recording_row(ACCOUNT, sid=SID, wav_key=wav)
    # The MP3's, the peaks' and the mono mixes' keys too: made racing a DELETE, they may exist
    # before (or without) the row saying so, and the mixes have no row at all.
    assert recording_keys(keys, plain) == sorted([wav, mp3, peaks, *mixes])
    cached = recording_row(ACCOUNT, sid=SID, wav_key=wav, mp3_key=mp3)
    assert recording_keys(keys, cached) == sorted([wav, mp3, peaks, *mixes])
    # Keys a row names otherwise (written under an earlier prefix, say) are kept as well.
    legacy = recording_row(ACCOUNT, sid=SID, wav_key=f"old/{ACCOUNT}/{SID}.wav", mp3_key="x.mp3")
    assert recording_keys(keys, legacy) == sorted(
        [wav, mp3, peaks, *mixes, f"old/{ACCOUNT}/{SID}.wav", "x.mp3"]
    )


def test_recording_keys_of_different_recordings_do_not_meet() -> None:
    keys = storage()
    first, second = recording_row(ACCOUNT), recording_row(ACCOUNT, sid=new_sid("RE"))
    assert not set(recording_keys(keys, first)) & set(recording_keys(keys, second))


def test_file_etag_is_a_strong_quoted_digest(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    data = bytes(range(256)) * 5000  # more than one read's worth
    path.write_bytes(data)
    etag = file_etag(path)
    assert etag == '"' + hashlib.sha256(data).hexdigest()[:40] + '"'
    path.write_bytes(data[:-1] + b"\x00")
    assert file_etag(path) != etag
