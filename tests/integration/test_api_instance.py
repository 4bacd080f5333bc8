"""The public instance resource: representations, WAV bytes, isolation."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

import httpx
import pytest
import xmltodict

from tests.support.clients import Account, Ingest

RFC2822_UTC = re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000")


def test_xml_instance_has_the_seed_shape(
    client: httpx.Client, account: Account, ingest: Ingest
) -> None:
    call_sid = "CA" + "cd420fcb3c4b86e360ea0cc27ebc8698"
    made = ingest(account, call_sid=call_sid, date_created="2008-04-01T05:07:15Z").json()
    response = client.get(f"{account.base}/{made['sid']}.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(("application/xml", "text/xml"))
    doc = xmltodict.parse(response.content)
    recording = doc["TwilioResponse"]["Recording"]
    assert list(recording) == [
        "Sid",
        "AccountSid",
        "CallSid",
        "Duration",
        "DateCreated",
        "DateUpdated",
    ]
    assert recording["Sid"] == made["sid"]
    assert re.fullmatch(r"RE[0-9a-f]{32}", recording["Sid"])
    assert recording["AccountSid"] == account.sid
    assert recording["CallSid"] == call_sid
    assert recording["Duration"] == "3"
    assert recording["DateCreated"] == "Tue, 01 Apr 2008 05:07:15 +0000"
    assert recording["DateUpdated"] == "Tue, 01 Apr 2008 05:07:15 +0000"


def test_json_instance_is_the_later_api_shape(
    client: httpx.Client, account: Account, ingest: Ingest
) -> None:
    made = ingest(account).json()
    body = client.get(f"{account.base}/{made['sid']}.json").json()
    assert body["sid"] == made["sid"]
    assert body["account_sid"] == account.sid
    assert body["duration"] == "3"
    assert RFC2822_UTC.fullmatch(body["date_created"])
    assert body["uri"] == f"{account.base}/{made['sid']}.json"
    assert set(body) >= {
        "sid",
        "account_sid",
        "call_sid",
        "duration",
        "date_created",
        "date_updated",
        "uri",
    }


@pytest.mark.parametrize("suffix", ["", ".wav"])
def test_wav_is_byte_identical(
    client: httpx.Client, account: Account, ingest: Ingest, demo_wav: bytes, suffix: str
) -> None:
    sid = ingest(account).json()["sid"]
    response = client.get(f"{account.base}/{sid}{suffix}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/x-wav"
    assert response.content == demo_wav
    assert response.headers["content-length"] == str(len(demo_wav))
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-disposition"] == f'inline; filename="{sid}.wav"'
    assert response.headers["access-control-allow-origin"] == "*"
    assert "immutable" in response.headers["cache-control"]
    assert re.fullmatch(r'"[0-9a-f]{40}"', response.headers["etag"])
    assert email.utils.parsedate_to_datetime(response.headers["last-modified"]) <= datetime.now(UTC)


def test_head_has_headers_and_no_body(
    client: httpx.Client, account: Account, ingest: Ingest, demo_wav: bytes
) -> None:
    sid = ingest(account).json()["sid"]
    response = client.head(f"{account.base}/{sid}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(demo_wav))
    assert response.headers["content-type"] == "audio/x-wav"


def test_media_is_public(client: httpx.Client, account: Account, ingest: Ingest) -> None:
    sid = ingest(account).json()["sid"]
    assert client.get(f"{account.base}/{sid}.xml").status_code == 200
    assert client.get(f"{account.base}/{sid}", auth=("ACnobody", "wrong")).status_code == 200


@pytest.mark.parametrize("suffix", ["", ".wav", ".xml", ".json", ".mp3"])
def test_another_accounts_sid_is_404_on_every_path(
    client: httpx.Client, account: Account, other_account: Account, ingest: Ingest, suffix: str
) -> None:
    sid = ingest(account).json()["sid"]
    response = client.get(f"{other_account.base}/{sid}{suffix}")
    assert response.status_code == 404
    assert b"<RestException>" in response.content or b'"status": 404' in response.content
    # Even with the other account's own credentials, a SID of another account stays hidden.
    assert client.delete(f"{other_account.base}/{sid}", auth=other_account.auth).status_code == 404
    assert client.get(f"{account.base}/{sid}{suffix or '.xml'}").status_code in (200, 501)


@pytest.mark.parametrize(
    "name",
    [
        "RE123",
        "re" + "0" * 32,
        "RE" + "A" * 32,
        "RE" + "0" * 32 + ".ogg",
        "CA" + "0" * 32,
        "..%2f..%2fetc",
    ],
)
def test_malformed_or_unknown_sids_are_404(
    client: httpx.Client, account: Account, name: str
) -> None:
    response = client.get(f"{account.base}/{name}")
    assert response.status_code == 404
    assert xmltodict.parse(response.content)["TwilioResponse"]["RestException"]["Status"] == "404"


def test_old_client_paths(
    client: httpx.Client, account: Account, ingest: Ingest, demo_wav: bytes
) -> None:
    sid = ingest(account).json()["sid"]
    singular = f"/2008-08-01/Account/{account.sid}/Recordings/{sid}"
    assert client.get(singular).content == demo_wav
    doubled = httpx.URL(client.base_url.join("/")).copy_with(
        raw_path=f"//2008-08-01/Accounts/{account.sid}/Recordings/{sid}.xml".encode()
    )
    response = client.get(doubled)
    assert response.status_code == 200
    assert sid in response.text
    bare_question = client.get(f"{account.base}/{sid}.json?")
    assert bare_question.json()["sid"] == sid
