"""Credentials made through the API as a client makes them: subaccounts, API keys, secondary
AuthTokens; and the paths of every face a credential is tried on."""

from __future__ import annotations

import httpx

from tests.support.clients import Account

Auth = tuple[str, str]


def create_subaccount(client: httpx.Client, parent: Auth, name: str = "") -> Account:
    """POST /2010-04-01/Accounts.json with the parent's credentials: the new subaccount."""
    data = {"FriendlyName": name} if name else {}
    response = client.post("/2010-04-01/Accounts.json", auth=parent, data=data)
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(body["sid"], body["auth_token"])


def create_key(client: httpx.Client, auth: Auth, account_sid: str, name: str = "k") -> Auth:
    """POST Keys.json: the key's (SID, secret), usable as Basic credentials."""
    response = client.post(
        f"/2010-04-01/Accounts/{account_sid}/Keys.json", auth=auth, data={"FriendlyName": name}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["sid"], body["secret"]


def set_status(client: httpx.Client, auth: Auth, account_sid: str, status: str) -> httpx.Response:
    return client.post(
        f"/2010-04-01/Accounts/{account_sid}.json", auth=auth, data={"Status": status}
    )


def face_paths(account_sid: str, recording_sid: str) -> dict[str, str]:
    """A GET on every face that checks credentials (media: when the account enforces them)."""
    v08 = f"/2008-08-01/Accounts/{account_sid}/Recordings"
    v10 = f"/2010-04-01/Accounts/{account_sid}/Recordings"
    return {
        "2008 list": v08,
        "2008 list .json": v08 + ".json",
        "2008 media": f"{v08}/{recording_sid}.wav",
        "2010 list": v10 + ".json",
        "2010 fetch (fast path)": f"{v10}/{recording_sid}.json",
        "2010 media (fast path)": f"{v10}/{recording_sid}",
        "list page": v08 + ".html",
        "recording page": f"{v10}/{recording_sid}.html",
        "Peaks.json": f"{v08}/{recording_sid}/Peaks.json",
    }


def statuses(client: httpx.Client, auth: Auth | None, account_sid: str, sid: str) -> dict[str, int]:
    """The status of every face's GET with these credentials, by face."""
    return {
        name: client.get(path, auth=auth).status_code
        for name, path in face_paths(account_sid, sid).items()
    }


def everywhere(status: int) -> dict[str, int]:
    """What ``statuses`` gives when every face answers ``status``."""
    return dict.fromkeys(face_paths("AC", "RE"), status)
