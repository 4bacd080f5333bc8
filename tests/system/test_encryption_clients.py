"""Voice Recording Encryption as its users drive it: twilio-python 9.13.0, unmodified, on the
accounts domain (only its base URL changed), the operator's `recordings accounts set`, and the
key holder decrypting the downloaded media with the steps of Twilio's published sample."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from service.settings import Settings
from tests.support.clients import Account, new_account, upload
from tests.support.encryption import TAG_BYTES, decrypt_verified, key_pair, sample_decrypt
from tests.support.stack import ServerThread, run_recordings


def twilio_client(base_url: str, account: Account) -> Client:
    # An empty environment: TWILIO_EDGE/TWILIO_REGION, if set, would rewrite the host.
    client = Client(account.sid, account.token, environment={})
    client.api.base_url = base_url
    client.accounts.base_url = base_url
    return client


def test_public_keys_through_twilio_python(server: ServerThread, account: Account) -> None:
    twilio = twilio_client(server.base_url, account)
    public_keys = twilio.accounts.v1.credentials.public_key
    _, public_pem = key_pair()
    made = public_keys.create(public_key=public_pem, friendly_name="recordings 2026")
    assert made.sid is not None and made.sid.startswith("CR")
    assert made.account_sid == account.sid
    assert made.friendly_name == "recordings 2026"
    assert made.date_created is not None and made.date_created.tzinfo is not None
    assert made.url == f"{server.base_url}/v1/Credentials/PublicKeys/{made.sid}"

    others = [public_keys.create(public_key=public_pem, friendly_name=f"k{i}") for i in range(3)]
    listed = [k.sid for k in public_keys.list(page_size=2)]
    assert listed == [made.sid, *(k.sid for k in others)]
    assert [k.sid for k in public_keys.stream(limit=3, page_size=2)] == listed[:3]

    fetched = public_keys(made.sid).fetch()
    assert (fetched.sid, fetched.friendly_name) == (made.sid, "recordings 2026")
    assert public_keys(made.sid).update(friendly_name="renamed").friendly_name == "renamed"
    assert made.fetch().friendly_name == "renamed"
    assert public_keys(made.sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        public_keys(made.sid).fetch()
    assert gone.value.status == 404
    assert gone.value.code == 20404


def test_bad_keys_raise_twilios_400s(server: ServerThread, account: Account) -> None:
    public_keys = twilio_client(server.base_url, account).accounts.v1.credentials.public_key
    _, short = key_pair(1024)
    for bad, says in (("not a key", "not a PEM"), (short, "1024 bits")):
        with pytest.raises(TwilioRestException) as refused:
            public_keys.create(public_key=bad)
        assert refused.value.status == 400
        assert refused.value.code == 20001
        assert says in refused.value.msg


def test_an_encrypted_recording_from_ingest_to_the_sample_decryptor(
    server: ServerThread,
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
    tmp_path: Path,
) -> None:
    private_pem, public_pem = key_pair()
    twilio = twilio_client(server.base_url, account)
    key = twilio.accounts.v1.credentials.public_key.create(public_key=public_pem)
    assert key.sid is not None

    # The operator turns it on; a key of another account is refused in one line.
    theirs = twilio_client(server.base_url, other_account).accounts.v1.credentials.public_key
    their_key = theirs.create(public_key=public_pem).sid
    assert their_key is not None
    refused = run_recordings(
        settings, "accounts", "set", "--encryption-key", their_key, account.sid, check=False
    )
    assert refused.returncode == 2
    assert f"{their_key} is not a public key of {account.sid}" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = run_recordings(settings, "accounts", "set", "--encryption-key", key.sid, account.sid)
    assert f"encrypted under public key {key.sid}" in done.stdout
    listed = json.loads(run_recordings(settings, "accounts", "list", "--json").stdout)
    assert [a["encryption_key_sid"] for a in listed if a["account_sid"] == account.sid] == [key.sid]
    # Deleting the key it encrypts with is refused, as Twilio's library reports it.
    with pytest.raises(TwilioRestException) as in_use:
        twilio.accounts.v1.credentials.public_key(key.sid).delete()
    assert in_use.value.status == 400

    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        sid = upload(http, account, demo_wav).json()["sid"]
        recording = twilio.recordings(sid).fetch()
        details = recording.encryption_details
        assert details is not None and details["public_key_sid"] == key.sid
        assert recording.media_url is not None
        encrypted = tmp_path / f"{sid}.wav.enc"
        encrypted.write_bytes(http.get(recording.media_url).content)

    # The sample's steps, on files as it runs them.
    decrypted = tmp_path / f"{sid}.wav"
    with encrypted.open("rb") as f, decrypted.open("wb") as out:
        sample_decrypt(private_pem, details, f, out)
    assert decrypted.read_bytes()[:-TAG_BYTES] == demo_wav
    assert decrypt_verified(private_pem, details, encrypted.read_bytes()) == demo_wav

    off = run_recordings(settings, "accounts", "set", "--no-encryption", account.sid)
    assert "stored in the clear" in off.stdout
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        clear = upload(http, account, demo_wav).json()["sid"]
    assert twilio.recordings(clear).fetch().encryption_details is None


def test_the_cli_refuses_what_is_not_a_key(settings: Settings) -> None:
    account = new_account(settings.database_url)
    bad = run_recordings(
        settings, "accounts", "set", "--encryption-key", "CRnope", account.sid, check=False
    )
    assert bad.returncode == 2 and "not a public key SID" in bad.stderr
    both = run_recordings(
        settings,
        "accounts",
        "set",
        "--encryption-key",
        "CR" + "0" * 32,
        "--no-encryption",
        account.sid,
        check=False,
    )
    assert both.returncode == 2 and "contradict" in both.stderr
    unknown = run_recordings(
        settings, "accounts", "set", "--encryption-key", "CR" + "0" * 32, account.sid, check=False
    )
    assert unknown.returncode == 2 and "is not a public key of" in unknown.stderr
