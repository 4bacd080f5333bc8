"""Recordings of an account with an encryption key, against the real server, PostgreSQL,
SeaweedFS and ffmpeg: what is stored is ciphertext only, Twilio's published decryption sample
turns the media back into the uploaded WAV, and nothing derived from the audio is made."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.recordings import Recording
from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedS3
from service.ingest.pipeline import Measured, Upload, store_recording
from service.mp3.queue import job_payload
from service.services import open_services, storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import open_storage
from tests.support.callbacks import dispatching, one_callback
from tests.support.clients import Account, new_account, upload
from tests.support.encryption import (
    decodable_audio,
    decrypt_as_sample,
    decrypt_verified,
    key_pair,
    register_key,
    use_key,
)
from tests.support.ffmpeg import generate
from tests.support.receivers import Receiver, wait_until
from tests.support.rows import fetch_rows
from tests.support.stack import run_recordings, serving

V2010 = "/2010-04-01/Accounts/{account}/Recordings/{sid}"


@pytest.fixture
def encrypted(client: httpx.Client, settings: Settings) -> Iterator[tuple[Account, str]]:
    """An account whose new recordings are encrypted under its key; the key's SID."""
    account = new_account(settings.database_url)
    _, public_pem = key_pair()
    key_sid = register_key(client, account, public_pem, "recordings")
    use_key(settings.database_url, account.sid, key_sid)
    yield account, key_sid


def unique_wav(tmp_path: Path, seconds: float = 2.0) -> bytes:
    """A WAV no other test stores: its line noise comes from a seed of its own."""
    seed = random.SystemRandom().randrange(2**31)
    return write_demo_wav(tmp_path / f"unique-{seed}.wav", seconds, seed=seed).read_bytes()


def resource(client: httpx.Client, account: Account, sid: str) -> dict[str, Any]:
    response = client.get(V2010.format(account=account.sid, sid=sid) + ".json", auth=account.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_twilios_sample_decrypts_the_media(
    client: httpx.Client, encrypted: tuple[Account, str], tmp_path: Path
) -> None:
    account, key_sid = encrypted
    private_pem, _ = key_pair()
    wav = unique_wav(tmp_path, 3.0)
    sid = upload(client, account, wav).json()["sid"]
    body = resource(client, account, sid)
    details = body["encryption_details"]
    assert set(details) == {"type", "public_key_sid", "encrypted_cek", "iv"}
    assert details["type"] == "rsa-aes"
    assert details["public_key_sid"] == key_sid
    assert len(base64.b64decode(details["iv"])) == 12
    # Measured from the plaintext during ingest.
    assert body["duration"] == "3"
    assert body["channels"] == 1

    media = client.get(body["media_url"])
    assert media.status_code == 200
    ciphertext = media.content
    assert len(ciphertext) == len(wav) + 16
    assert int(media.headers["content-length"]) == len(ciphertext)
    assert media.headers["content-type"] == "application/octet-stream"
    assert f'filename="{sid}.wav.enc"' in media.headers["content-disposition"]
    assert not ciphertext.startswith(b"RIFF")
    assert decrypt_as_sample(private_pem, details, ciphertext) == wav
    assert decrypt_verified(private_pem, details, ciphertext) == wav
    # The same bytes under every media path of both API versions.
    for path in (
        V2010.format(account=account.sid, sid=sid) + ".wav",
        f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}",
        f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}.wav",
    ):
        assert client.get(path).content == ciphertext


def test_range_etag_and_head_are_on_the_ciphertext(
    client: httpx.Client, encrypted: tuple[Account, str], demo_wav: bytes
) -> None:
    account, _ = encrypted
    sid = upload(client, account, demo_wav).json()["sid"]
    path = V2010.format(account=account.sid, sid=sid)
    whole = client.get(path)
    ciphertext = whole.content
    etag = whole.headers["etag"]
    head = client.head(path)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(ciphertext))
    assert head.headers["etag"] == etag
    part = client.get(path, headers={"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == ciphertext[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(ciphertext)}"
    tail = client.get(path, headers={"Range": "bytes=-16"})
    assert tail.content == ciphertext[-16:]
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(path, headers={"Range": f"bytes={len(ciphertext)}-"}).status_code == 416


def test_mp3_and_peaks_are_400s_with_code_16109(
    client: httpx.Client, encrypted: tuple[Account, str], demo_wav: bytes
) -> None:
    account, _ = encrypted
    sid = upload(client, account, demo_wav).json()["sid"]
    path = V2010.format(account=account.sid, sid=sid)
    mp3 = client.get(path + ".mp3")
    assert mp3.status_code == 400
    assert mp3.json()["code"] == 16109
    assert "encrypted" in mp3.json()["message"]
    assert client.head(path + ".mp3").status_code == 400
    old = client.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}.mp3")
    assert old.status_code == 400
    assert b"<RestException>" in old.content and b"encrypted" in old.content
    peaks = client.get(path + "/Peaks.json")
    assert peaks.status_code == 400
    assert peaks.json()["code"] == 16109
    assert "no waveform" in peaks.json()["message"]
    assert (
        client.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}/Peaks.json").status_code
        == 400
    )


def test_the_pages_say_the_recording_is_encrypted(
    client: httpx.Client, encrypted: tuple[Account, str], demo_wav: bytes
) -> None:
    account, key_sid = encrypted
    sid = upload(client, account, demo_wav).json()["sid"]
    page = client.get(V2010.format(account=account.sid, sid=sid) + ".html")
    assert page.status_code == 200
    assert "This recording is encrypted" in page.text
    assert key_sid in page.text
    assert 'id="download-encrypted"' in page.text
    assert "<audio" not in page.text and "Peaks.json" not in page.text
    listing = client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings.html", auth=account.auth)
    assert listing.status_code == 200
    assert "Encrypted WAV" in listing.text
    assert f"{sid}.mp3" not in listing.text


def test_no_mp3_or_peaks_job_is_queued(
    settings: Settings, encrypted: tuple[Account, str], demo_wav: bytes
) -> None:
    account, _ = encrypted
    clear = new_account(settings.database_url)
    eager = settings.model_copy(update={"transcode_on_ingest": True})
    with serving(eager) as http:
        sealed = upload(http, account, demo_wav).json()["sid"]
        plain = upload(http, clear, demo_wav).json()["sid"]
    payloads = [job_payload(account.sid, sealed), job_payload(clear.sid, plain)]
    try:
        queued = fetch_rows(
            settings.database_url,
            "SELECT split_part(convert_from(payload, 'UTF8'), '/', 2) AS sid, entrypoint"
            " FROM pgqueuer WHERE payload = ANY($1::bytea[])",
            payloads,
        )
    finally:
        fetch_rows(
            settings.database_url, "DELETE FROM pgqueuer WHERE payload = ANY($1::bytea[])", payloads
        )
    assert sorted(row["entrypoint"] for row in queued if row["sid"] == plain) == [
        "recordings.mp3",
        "recordings.peaks",
    ]
    assert [row for row in queued if row["sid"] == sealed] == []


async def _stored_objects(settings: Settings, prefix: str) -> dict[str, bytes]:
    async with open_storage(storage_config(settings)) as storage:
        found = {}
        async for item in storage.list_objects(storage.key(prefix)):
            found[item.key] = b"".join([c async for c in storage.iter_object(item.key)])
        return found


def _files_under(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_nothing_in_the_clear_at_rest(
    settings: Settings, s3: EmbeddedS3, client: httpx.Client, tmp_path: Path
) -> None:
    """Every object of the encrypted account, read straight from storage, every file on the
    storage server's disk and everything left in the ingest's temp directory: no audio."""
    private_pem, public_pem = key_pair()
    account = new_account(settings.database_url)
    use_key(settings.database_url, account.sid, register_key(client, account, public_pem))
    spool = tmp_path / "ingest-tmp"
    spool.mkdir()
    wav = unique_wav(tmp_path)
    # Not a WAV: ingest decodes it to a PCM WAV of its own in the temp directory first.
    flac = generate(
        settings.ffmpeg_path,
        tmp_path / "noise.flac",
        "-f",
        "lavfi",
        "-i",
        f"anoisesrc=d=2:c=pink:r=8000:a=0.5:s={random.randrange(2**31)}",
    ).read_bytes()
    # A control: the same kind of audio, stored in the clear, is found by the same checks.
    clear_account = new_account(settings.database_url)
    clear_wav = unique_wav(tmp_path)
    with serving(settings.model_copy(update={"tmp_dir": str(spool)})) as http:
        sids = [upload(http, account, body).json()["sid"] for body in (wav, flac)]
        details = [resource(http, account, sid)["encryption_details"] for sid in sids]
        upload(http, clear_account, clear_wav)
        left = _files_under(spool)

    stored = asyncio.run(_stored_objects(settings, f"{account.sid}/"))
    assert len(stored) == 2
    by_sid = {key.rsplit("/", 1)[1].split(".")[0]: data for key, data in stored.items()}
    plaintexts = [
        decrypt_verified(private_pem, d, by_sid[sid]) for sid, d in zip(sids, details, strict=True)
    ]
    assert plaintexts[0] == wav
    assert plaintexts[1].startswith(b"RIFF")  # the normalised WAV, never stored as such
    # Chunks from the middle of each plaintext (the audio samples, past the headers).
    needles = [p[len(p) // 2 : len(p) // 2 + 4096] for p in (wav, flac, *plaintexts)]
    for data in stored.values():
        assert not data.startswith(b"RIFF")
        assert not decodable_audio(settings.ffmpeg_path, data)
        assert not any(n in data for n in needles)
    assert left == {}, f"files left in the ingest's temp directory: {sorted(left)}"

    disk = _files_under(s3.data_dir)
    assert not any(n in data for data in disk.values() for n in needles)
    control = clear_wav[len(clear_wav) // 2 : len(clear_wav) // 2 + 4096]
    assert any(control in data for data in disk.values()), "the disk scan finds clear audio"
    clear_objects = asyncio.run(_stored_objects(settings, f"{clear_account.sid}/"))
    assert [decodable_audio(settings.ffmpeg_path, d) for d in clear_objects.values()] == [True]


def test_turning_encryption_off_leaves_old_recordings_encrypted(
    client: httpx.Client, settings: Settings, encrypted: tuple[Account, str], demo_wav: bytes
) -> None:
    account, _ = encrypted
    private_pem, _ = key_pair()
    before = upload(client, account, demo_wav).json()["sid"]
    use_key(settings.database_url, account.sid, None)
    after = upload(client, account, demo_wav).json()["sid"]
    assert resource(client, account, after)["encryption_details"] is None
    assert client.get(V2010.format(account=account.sid, sid=after)).content == demo_wav
    old = resource(client, account, before)
    ciphertext = client.get(old["media_url"]).content
    assert decrypt_verified(private_pem, old["encryption_details"], ciphertext) == demo_wav


def test_a_ciphertext_with_its_details_is_stored_as_it_is(
    client: httpx.Client, settings: Settings, encrypted: tuple[Account, str], tmp_path: Path
) -> None:
    """What an import of a Twilio-encrypted recording does: its bytes and details kept, even for
    an account that encrypts its own recordings under another key."""
    account, _ = encrypted
    ciphertext = os.urandom(50_000)
    source = tmp_path / "twilio.enc"
    source.write_bytes(ciphertext)
    details = {
        "type": "rsa-aes",
        "public_key_sid": new_sid("CR"),
        "encrypted_cek": base64.b64encode(os.urandom(256)).decode(),
        "iv": base64.b64encode(os.urandom(12)).decode(),
    }

    async def go() -> Recording:
        async with open_services(settings) as services:
            upload_ = Upload(account_sid=account.sid, call_sid=new_sid("CA"))
            measured = Measured(duration=42, sample_rate=8000, channels=2)
            return await store_recording(
                services, upload_, source, measured, encryption_details=details
            )

    recording = asyncio.run(go())
    body = resource(client, account, recording.sid)
    assert body["encryption_details"] == details
    assert body["duration"] == "42" and body["channels"] == 2
    media = client.get(body["media_url"])
    assert media.content == ciphertext
    assert media.headers["content-type"] == "application/octet-stream"
    assert client.get(body["media_url"] + ".mp3").json()["code"] == 16109


def test_the_status_callback_carries_encryption_details(
    cb_settings: Settings, demo_wav: bytes
) -> None:
    """Delivered by the worker's dispatcher to a receiver, signed as Twilio signs: the app gets
    EncryptionDetails as Twilio sends it, a JSON string, the same as the resource's."""
    private_pem, public_pem = key_pair()
    account = new_account(cb_settings.database_url)
    with Receiver() as receiver, serving(cb_settings) as http:
        key_sid = register_key(http, account, public_pem)
        use_key(cb_settings.database_url, account.sid, key_sid)
        sid = upload(
            http, account, demo_wav, query={"RecordingStatusCallback": receiver.url}
        ).json()["sid"]
        with dispatching(cb_settings):
            wait_until(
                lambda: one_callback(cb_settings.database_url, sid)["status"] == "delivered",
                what="delivery",
            )
        [got] = receiver.received
        body = resource(http, account, sid)
        ciphertext = http.get(got.params["RecordingUrl"]).content
    assert got.signed_by(account.token)
    details = json.loads(got.params["EncryptionDetails"])
    assert details == body["encryption_details"]
    assert details["public_key_sid"] == key_sid
    assert decrypt_as_sample(private_pem, details, ciphertext) == demo_wav


def test_recordings_import_encrypts_too(
    client: httpx.Client, settings: Settings, encrypted: tuple[Account, str], tmp_path: Path
) -> None:
    """The operator's `recordings import` is an ingest like the endpoint's: the files of an
    encrypting account are stored as ciphertext, and nothing is left in its temp directory."""
    account, key_sid = encrypted
    private_pem, _ = key_pair()
    wavs = [unique_wav(tmp_path), unique_wav(tmp_path)]
    files = []
    for i, wav in enumerate(wavs):
        files.append(tmp_path / f"call-{i}.wav")
        files[-1].write_bytes(wav)
    spool = tmp_path / "import-tmp"
    spool.mkdir()
    done = run_recordings(
        settings,
        "import",
        "--account",
        account.sid,
        "--json",
        *map(str, files),
        RECORDINGS_TMP_DIR=str(spool),
    )
    made = {item["file"]: item["sid"] for item in json.loads(done.stdout)}
    for path, wav in zip(files, wavs, strict=True):
        body = resource(client, account, made[str(path)])
        assert body["encryption_details"]["public_key_sid"] == key_sid
        ciphertext = client.get(body["media_url"]).content
        assert wav not in ciphertext
        assert decrypt_verified(private_pem, body["encryption_details"], ciphertext) == wav
    assert _files_under(spool) == {}
