"""DELETE: authenticated, removes the row and every object, and a second DELETE is 404."""

from __future__ import annotations

import httpx
import pytest

from service.settings import Settings
from tests.support.clients import Account, Ingest
from tests.support.rows import object_exists, stored_key


def test_delete_removes_row_and_objects(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest
) -> None:
    sid = ingest(account).json()["sid"]
    key = stored_key(settings, account.sid, sid)
    assert object_exists(settings, key)
    response = client.delete(f"{account.base}/{sid}", auth=account.auth)
    assert response.status_code == 204
    assert response.content == b""
    for suffix in ("", ".wav", ".xml", ".json", ".mp3"):
        assert client.get(f"{account.base}/{sid}{suffix}").status_code == 404
    assert sid not in client.get(account.base + ".json", auth=account.auth).text
    assert not object_exists(settings, key)
    again = client.delete(f"{account.base}/{sid}", auth=account.auth)
    assert again.status_code == 404
    assert b"<RestException>" in again.content


def test_delete_needs_the_accounts_credentials(
    client: httpx.Client, account: Account, other_account: Account, ingest: Ingest
) -> None:
    sid = ingest(account).json()["sid"]
    url = f"{account.base}/{sid}"
    anonymous = client.delete(url)
    assert anonymous.status_code == 401
    assert "www-authenticate" in anonymous.headers
    assert client.delete(url, auth=other_account.auth).status_code == 403
    assert client.delete(url, auth=(account.sid, "wrong")).status_code == 401
    assert client.get(url + ".xml").status_code == 200


@pytest.mark.parametrize("style", ["method-override", "empty-form-body", "json-suffix"])
def test_old_client_deletes(
    client: httpx.Client, account: Account, ingest: Ingest, style: str
) -> None:
    sid = ingest(account).json()["sid"]
    url = f"{account.base}/{sid}"
    if style == "method-override":
        response = client.post(url + "?_method=DELETE", auth=account.auth)
    elif style == "empty-form-body":
        response = client.request(
            "DELETE",
            url,
            auth=account.auth,
            content=b"",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    else:
        response = client.delete(url + ".json", auth=account.auth)
    assert response.status_code == 204
    assert client.get(url + ".xml").status_code == 404


class ChallengeAuth(httpx.Auth):
    """Sends credentials only after a 401 that asks for Basic, as old clients do."""

    def __init__(self, username: str, password: str) -> None:
        self.basic = httpx.BasicAuth(username, password)
        self.challenged = False

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        response = yield request
        if response.status_code == 401 and response.headers.get(
            "www-authenticate", ""
        ).lower().startswith("basic"):
            self.challenged = True
            yield from self.basic.auth_flow(request)


def test_credentials_after_a_challenge(client: httpx.Client, account: Account) -> None:
    auth = ChallengeAuth(account.sid, account.token)
    response = client.get(account.base, auth=auth)
    assert auth.challenged
    assert response.status_code == 200
