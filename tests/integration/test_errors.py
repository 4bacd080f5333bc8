"""Error answers: RestExceptions in the requested format (401, 403, 404, 405, 400 ...), and
none of them shows internals: tracebacks, library names, addresses, SQL or secrets."""

from __future__ import annotations

import json

import httpx
import pytest
import xmltodict

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import INGEST_TOKEN, Account, Ingest, Tenants
from tests.support.internals import assert_no_internals
from tests.support.rawhttp import RawResponse, raw_request
from tests.support.rows import insert_recordings, recording_row
from tests.support.stack import ServerThread


def rest_exception(response: httpx.Response) -> dict[str, str]:
    exception: dict[str, str] = xmltodict.parse(response.content)["TwilioResponse"]["RestException"]
    assert exception["Status"] == str(response.status_code)
    assert exception["Message"]
    return exception


def test_list_without_credentials_is_401_with_a_challenge(
    client: httpx.Client, account: Account
) -> None:
    response = client.get(account.base)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic realm=")
    rest_exception(response)


@pytest.mark.parametrize(
    "auth",
    [("AC" + "0" * 32, "whatever"), ("not-a-sid", "x"), ("", "")],
)
def test_wrong_credentials_are_401(
    client: httpx.Client, account: Account, auth: tuple[str, str]
) -> None:
    response = client.get(account.base, auth=auth)
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


def test_wrong_token_is_401_and_garbled_headers_too(client: httpx.Client, account: Account) -> None:
    assert client.get(account.base, auth=(account.sid, "bad")).status_code == 401
    for header in ["Basic !!!", "Bearer x", "Basic " + "A" * 5000, "Basic"]:
        assert client.get(account.base, headers={"Authorization": header}).status_code == 401


def test_unknown_account_looks_like_a_known_one(client: httpx.Client, account: Account) -> None:
    unknown = "/2008-08-01/Accounts/AC" + "f" * 32 + "/Recordings"
    known, missing = client.get(account.base), client.get(unknown)
    assert known.status_code == missing.status_code == 401
    assert known.content == missing.content


def test_another_accounts_credentials_are_403(
    client: httpx.Client, account: Account, other_account: Account
) -> None:
    response = client.get(account.base, auth=other_account.auth)
    assert response.status_code == 403
    rest_exception(response)
    unknown = "/2008-08-01/Accounts/AC" + "f" * 32 + "/Recordings"
    assert client.get(unknown, auth=other_account.auth).status_code == 403


def test_json_errors(client: httpx.Client, account: Account) -> None:
    response = client.get(account.base + ".json")
    assert response.status_code == 401
    assert response.json() == {"status": 401, "message": response.json()["message"]}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_instance_rejects_writes_with_405(
    client: httpx.Client, account: Account, ingest: Ingest, method: str
) -> None:
    sid = ingest(account).json()["sid"]
    response = client.request(method, f"{account.base}/{sid}")
    assert response.status_code == 405
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert {"GET", "HEAD", "DELETE"} <= allowed
    assert method not in allowed
    rest_exception(response)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_list_rejects_writes_with_405(client: httpx.Client, account: Account, method: str) -> None:
    response = client.request(method, account.base, auth=account.auth)
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    rest_exception(response)


@pytest.mark.parametrize(
    "query",
    [
        "DateCreated=2009-13-01",
        "DateCreated=yesterday",
        "DateCreated>=2009-7-6",
        "CallSid=CA123",
        "num=0",
        "num=1001",
        "num=ten",
        "page=-1",
        "Page=x",
        "PageSize=5000",
        "DateCreated%3E%3D=bad",
        "DateCreated!=2009-07-06",
        "DateCreated=%ff",
    ],
)
def test_bad_list_queries_are_400(client: httpx.Client, account: Account, query: str) -> None:
    response = client.get(f"{account.base}?{query}", auth=account.auth)
    assert response.status_code == 400, query
    rest_exception(response)


def test_unknown_paths_are_404_rest_exceptions(client: httpx.Client, account: Account) -> None:
    for path in [
        "/nope",
        "/2008-08-01/Accounts/" + account.sid + "/Recordingz",
        account.base + ".yaml",
    ]:
        response = client.get(path, auth=account.auth)
        assert response.status_code == 404
        rest_exception(response)


def test_error_bodies_show_no_internals(
    client: httpx.Client,
    server: ServerThread,
    settings: Settings,
    tenants: Tenants,
    scratch: Account,
    demo_wav: bytes,
) -> None:
    a = tenants.a
    # A row whose object was never stored.
    (missing,) = insert_recordings(settings.database_url, [recording_row(scratch.sid, settings)])
    bearer = {"Authorization": f"Bearer {INGEST_TOKEN}"}
    cases: list[tuple[int, httpx.Response | RawResponse | None]] = [
        (400, client.get(f"{a.base}?DateCreated=2009-13-45", auth=a.auth)),
        (400, client.get(f"{a.base}.json?CallSid=x'%20OR%201=1--", auth=a.auth)),
        (400, client.get(f"{a.base}?num=99999999999999999999", auth=a.auth)),
        (400, client.get(f"{a.base}?DateCreated=%ff", auth=a.auth)),
        (401, client.get(f"{a.base}.json", auth=(a.sid, "x"))),
        (403, client.get(f"{a.base}.json", auth=tenants.b.auth)),
        (404, client.get(f"{a.base}/RE{'0' * 32}.json")),
        (404, client.get(f"{a.base}/..%2F..%2Fetc%2Fpasswd")),
        (404, client.get(f"{a.base}.json?page=999999", auth=a.auth)),
        (404, client.get("/2008-08-01/nothing/here")),
        (405, client.put(f"{a.base}/{tenants.a_sid}", content=b"x")),
        (405, client.post(f"{a.base}.json", auth=a.auth)),
        (416, client.get(f"{a.base}/{tenants.a_sid}", headers={"Range": "bytes=999999999-"})),
        (412, client.get(f"{a.base}/{tenants.a_sid}", headers={"If-Match": '"nope"'})),
        (502, client.get(f"{scratch.base}/{missing.sid}.wav")),
        (
            400,
            client.post(f"/internal/Accounts/{a.sid}/Recordings", content=demo_wav, headers=bearer),
        ),
        (
            422,
            client.post(
                f"/internal/Accounts/{scratch.sid}/Recordings.json?CallSid={new_sid('CA')}",
                content=b"definitely not audio " * 500,
                headers=bearer,
            ),
        ),
        (
            413,
            raw_request(
                server.base_url,
                "POST",
                f"/internal/Accounts/{scratch.sid}/Recordings?CallSid={new_sid('CA')}",
                [("Authorization", f"Bearer {INGEST_TOKEN}")],
                b"RIFF",
                content_length=settings.max_upload_bytes + 1,
            ),
        ),
        (401, client.post(f"/internal/Accounts/{a.sid}/Recordings", content=b"x")),
    ]
    for expected, response in cases:
        assert response is not None
        status = response.status if isinstance(response, RawResponse) else response.status_code
        assert status == expected, (expected, status, response)
        assert_no_internals(response, settings)


def test_hostile_ingest_timestamps_are_400_not_500(
    client: httpx.Client, settings: Settings, scratch: Account, demo_wav: bytes
) -> None:
    # Valid ISO-8601 with offsets that push the instant past datetime's range once in UTC.
    for stamp in (
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "Fri, 31 Dec 9999 23:59:59 -0500",
        "%00",
        "2020-02-30T00:00:00Z",
    ):
        response = client.post(
            f"/internal/Accounts/{scratch.sid}/Recordings.json",
            params={"CallSid": new_sid("CA"), "DateCreated": stamp},
            content=demo_wav,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
        assert response.status_code == 400, (stamp, response.status_code, response.text[:300])
        assert json.loads(response.content)["status"] == 400
        assert_no_internals(response, settings)
