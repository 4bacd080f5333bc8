"""401, 403, 404, 405 and 400 bodies: RestExceptions in the requested format."""

from __future__ import annotations

import httpx
import pytest
import xmltodict

from tests.conftest import Account, Ingest


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
