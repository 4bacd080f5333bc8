"""Credentials as Twilio has them (design section 15), against the real server and database:
API keys, subaccounts and their status, the secondary AuthToken, on every face."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from db.accounts import Account as StoredAccount
from db.accounts import fetch_account
from service.accounts.sealing import TokenSealer
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import (
    SECRET_KEY,
    Account,
    Ingest,
    comparable_answer,
    new_account,
    set_media_auth,
)
from tests.support.credentials import (
    create_key,
    create_subaccount,
    everywhere,
    set_status,
    statuses,
)


@pytest.fixture
def tree(client: httpx.Client, settings: Settings) -> tuple[Account, Account, Account]:
    """A parent and two subaccounts (siblings), each enforcing media auth."""
    parent = new_account(settings.database_url)
    first = create_subaccount(client, parent.auth, "first")
    second = create_subaccount(client, parent.auth, "second")
    for account in (parent, first, second):
        set_media_auth(settings.database_url, account.sid, True)
    return parent, first, second


def _recording(ingest: Ingest, account: Account) -> str:
    return str(ingest(account).json()["sid"])


def test_an_api_key_reaches_its_account_on_every_face(
    client: httpx.Client, settings: Settings, ingest: Ingest, account: Account
) -> None:
    set_media_auth(settings.database_url, account.sid, True)
    sid = _recording(ingest, account)
    key = create_key(client, account.auth, account.sid)
    assert key[0].startswith("SK") and len(key[0]) == 34 and len(key[1]) == 32
    assert statuses(client, key, account.sid, sid) == everywhere(200)
    assert statuses(client, account.auth, account.sid, sid) == everywhere(200)
    assert statuses(client, (key[0], "x" * 32), account.sid, sid) == everywhere(401)
    # DELETE with the key, on the 2010 face, the 2008 face, and through the old method override.
    deleted = client.delete(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.json", auth=key)
    assert deleted.status_code == 204
    second, third = _recording(ingest, account), _recording(ingest, account)
    assert client.delete(f"{account.base}/{second}", auth=key).status_code == 204
    overridden = client.post(f"{account.base}/{third}?_method=DELETE", auth=key)
    assert overridden.status_code == 204


def test_the_key_resources_in_the_libraries_shapes(client: httpx.Client, account: Account) -> None:
    base = f"/2010-04-01/Accounts/{account.sid}/Keys"
    made = client.post(base + ".json", auth=account.auth, data={"FriendlyName": "ci"})
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {"sid", "friendly_name", "date_created", "date_updated", "secret"}
    assert body["date_created"].endswith("+0000")
    fetched = client.get(f"{base}/{body['sid']}.json", auth=account.auth).json()
    assert "secret" not in fetched and fetched["friendly_name"] == "ci"
    renamed = client.post(
        f"{base}/{body['sid']}.json", auth=account.auth, data={"FriendlyName": "deploys"}
    )
    assert renamed.json()["friendly_name"] == "deploys"
    listed = client.get(base + ".json", auth=account.auth).json()
    assert [k["sid"] for k in listed["keys"]] == [body["sid"]]
    assert set(listed) == {
        "keys",
        "end",
        "first_page_uri",
        "next_page_uri",
        "page",
        "page_size",
        "previous_page_uri",
        "start",
        "uri",
    }
    gone = client.delete(f"{base}/{body['sid']}.json", auth=account.auth)
    assert gone.status_code == 204
    assert client.get(f"{base}/{body['sid']}.json", auth=account.auth).status_code == 404
    assert client.delete(f"{base}/{body['sid']}.json", auth=account.auth).status_code == 404
    # The deleted key no longer authenticates: the same 401 as a key that never was.
    dead = client.get(
        f"/2010-04-01/Accounts/{account.sid}/Recordings.json", auth=(body["sid"], body["secret"])
    )
    assert dead.status_code == 401 and dead.json()["code"] == 20003
    too_long = client.post(base + ".json", auth=account.auth, data={"FriendlyName": "x" * 65})
    assert too_long.status_code == 400


def test_a_standard_key_cannot_manage_keys_accounts_or_tokens(
    client: httpx.Client, account: Account
) -> None:
    key = create_key(client, account.auth, account.sid)
    keys = f"/2010-04-01/Accounts/{account.sid}/Keys"
    refused = [
        client.post(keys + ".json", auth=key, data={"FriendlyName": "mine"}),
        client.get(keys + ".json", auth=key),
        client.get(f"{keys}/{key[0]}.json", auth=key),
        client.delete(f"{keys}/{key[0]}.json", auth=key),
        client.post("/2010-04-01/Accounts.json", auth=key, data={"FriendlyName": "sub"}),
        client.get("/2010-04-01/Accounts.json", auth=key),
        client.get(f"/2010-04-01/Accounts/{account.sid}.json", auth=key),
        client.post(
            f"/2010-04-01/Accounts/{account.sid}.json", auth=key, data={"Status": "closed"}
        ),
        client.post("/v1/AuthTokens/Secondary", auth=key),
        client.delete("/v1/AuthTokens/Secondary", auth=key),
        client.post("/v1/AuthTokens/Promote", auth=key),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert {r.json()["code"] for r in refused} == {20403}
    # The key still works, and nothing was made.
    assert client.get(f"{keys}/{key[0]}.json", auth=account.auth).status_code == 200
    assert len(client.get(keys + ".json", auth=account.auth).json()["keys"]) == 1
    family = client.get("/2010-04-01/Accounts.json", auth=account.auth).json()["accounts"]
    assert [a["sid"] for a in family] == [account.sid]


def test_a_parent_reaches_its_subaccounts_and_no_credential_leaves_its_tree(
    client: httpx.Client,
    settings: Settings,
    ingest: Ingest,
    tree: tuple[Account, Account, Account],
) -> None:
    parent, first, second = tree
    stranger = new_account(settings.database_url)
    parent_key = create_key(client, parent.auth, parent.sid)
    first_key = create_key(client, first.auth, first.sid)
    in_parent, in_first, in_second = (_recording(ingest, a) for a in (parent, first, second))

    # Down the tree: the parent's token and key reach each subaccount on every face.
    for auth in (parent.auth, parent_key):
        assert statuses(client, auth, first.sid, in_first) == everywhere(200)
        assert statuses(client, auth, second.sid, in_second) == everywhere(200)
    assert statuses(client, first.auth, first.sid, in_first) == everywhere(200)
    assert statuses(client, first_key, first.sid, in_first) == everywhere(200)
    # Never up, never sideways, never into another tree.
    for auth in (first.auth, first_key):
        assert statuses(client, auth, parent.sid, in_parent) == everywhere(403)
        assert statuses(client, auth, second.sid, in_second) == everywhere(403)
    assert statuses(client, stranger.auth, first.sid, in_first) == everywhere(403)
    assert statuses(client, parent.auth, stranger.sid, new_sid("RE")) == {
        **everywhere(403),
        # A stranger's media path: the recording is not found before credentials matter.
        "2008 media": 404,
        "2010 media (fast path)": 404,
        "recording page": 404,
        "Peaks.json": 404,
    }
    # DELETE by the parent on a subaccount's recording; a sibling's DELETE is refused.
    v10 = f"/2010-04-01/Accounts/{second.sid}/Recordings/{in_second}.json"
    assert client.delete(v10, auth=first.auth).status_code == 403
    assert client.delete(v10, auth=parent_key).status_code == 204
    # A subaccount sees itself only; the parent sees its tree, filtered as asked.
    mine = client.get("/2010-04-01/Accounts.json", auth=first.auth).json()["accounts"]
    assert [a["sid"] for a in mine] == [first.sid]
    family = client.get("/2010-04-01/Accounts.json", auth=parent.auth).json()["accounts"]
    assert [a["sid"] for a in family] == [parent.sid, first.sid, second.sid]
    assert family[1]["owner_account_sid"] == parent.sid and family[1]["auth_token"] is None
    named = client.get(
        "/2010-04-01/Accounts.json", auth=parent.auth, params={"FriendlyName": "second"}
    ).json()["accounts"]
    assert [a["sid"] for a in named] == [second.sid]
    # A subaccount makes no subaccounts, and fetches neither its parent nor a sibling.
    assert client.post("/2010-04-01/Accounts.json", auth=first.auth).status_code == 403
    assert client.get(f"/2010-04-01/Accounts/{parent.sid}.json", auth=first.auth).status_code == 403
    assert client.get(f"/2010-04-01/Accounts/{second.sid}.json", auth=first.auth).status_code == 403


def test_suspended_and_closed_accounts_are_refused_everywhere(
    client: httpx.Client, settings: Settings, ingest: Ingest, tree: tuple[Account, Account, Account]
) -> None:
    parent, first, second = tree
    in_first = _recording(ingest, first)
    key = create_key(client, first.auth, first.sid)

    assert set_status(client, parent.auth, first.sid, "suspended").json()["status"] == "suspended"
    for auth in (first.auth, key, parent.auth):
        answers = statuses(client, auth, first.sid, in_first)
        assert answers == everywhere(401), auth
    refused = client.get(f"/2010-04-01/Accounts/{first.sid}/Recordings.json", auth=first.auth)
    assert refused.json()["code"] == 20005
    # Its media is no longer served, even when it does not ask for credentials.
    set_media_auth(settings.database_url, first.sid, False)
    media = client.get(f"/2010-04-01/Accounts/{first.sid}/Recordings/{in_first}")
    assert media.status_code == 401 and media.json()["code"] == 20005
    # The parent still sees it, and makes it active again.
    fetched = client.get(f"/2010-04-01/Accounts/{first.sid}.json", auth=parent.auth)
    assert fetched.json()["status"] == "suspended"
    assert set_status(client, parent.auth, first.sid, "active").status_code == 200
    assert client.get(f"/2010-04-01/Accounts/{first.sid}/Recordings/{in_first}").status_code == 200
    # A subaccount does not change its own status.
    assert set_status(client, first.auth, first.sid, "suspended").status_code == 403
    # Closed is final.
    assert set_status(client, parent.auth, second.sid, "closed").json()["status"] == "closed"
    assert set_status(client, parent.auth, second.sid, "active").status_code == 400
    assert (
        client.get(f"/2010-04-01/Accounts/{second.sid}/Recordings.json", auth=second.auth).json()[
            "code"
        ]
        == 20005
    )


def _account_row(settings: Settings, sid: str) -> StoredAccount:
    async def go() -> StoredAccount:
        conn = await asyncpg.connect(settings.database_url)
        try:
            found = await fetch_account(conn, sid)
        finally:
            await conn.close()
        assert found is not None
        return found

    return asyncio.run(go())


def test_the_secondary_token_rotation(
    client: httpx.Client, settings: Settings, account: Account
) -> None:
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings.json"
    assert client.post("/v1/AuthTokens/Promote", auth=account.auth).status_code == 404
    made = client.post("/v1/AuthTokens/Secondary", auth=account.auth)
    assert made.status_code == 201
    body = made.json()
    assert set(body) == {
        "account_sid",
        "date_created",
        "date_updated",
        "secondary_auth_token",
        "url",
    }
    secondary = body["secondary_auth_token"]
    assert body["url"].endswith("/v1/AuthTokens/Secondary")
    # Both tokens work.
    assert client.get(path, auth=account.auth).status_code == 200
    assert client.get(path, auth=(account.sid, secondary)).status_code == 200
    promoted = client.post("/v1/AuthTokens/Promote", auth=(account.sid, secondary))
    assert promoted.status_code == 200
    assert promoted.json()["auth_token"] == secondary
    # Status callbacks are signed with the primary: its sealed copy is now the promoted token.
    promoted_row = _account_row(settings, account.sid)
    assert promoted_row.token_sealed is not None
    assert TokenSealer(SECRET_KEY).open(account.sid, promoted_row.token_sealed) == secondary
    # The old primary stops at once.
    assert client.get(path, auth=account.auth).status_code == 401
    assert client.get(path, auth=(account.sid, secondary)).status_code == 200
    # Another secondary, then deleted: it stops, the primary stays.
    other = client.post("/v1/AuthTokens/Secondary", auth=(account.sid, secondary)).json()
    assert client.get(path, auth=(account.sid, other["secondary_auth_token"])).status_code == 200
    assert (
        client.delete("/v1/AuthTokens/Secondary", auth=(account.sid, secondary)).status_code == 204
    )
    assert client.get(path, auth=(account.sid, other["secondary_auth_token"])).status_code == 401
    assert (
        client.delete("/v1/AuthTokens/Secondary", auth=(account.sid, secondary)).status_code == 404
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/2010-04-01/Accounts.json"),
        ("POST", "/2010-04-01/Accounts.json"),
        ("GET", "/2010-04-01/Accounts/{sid}.json"),
        ("POST", "/2010-04-01/Accounts/{sid}.json"),
        ("GET", "/2010-04-01/Accounts/{sid}/Keys.json"),
        ("POST", "/2010-04-01/Accounts/{sid}/Keys.json"),
        ("DELETE", "/2010-04-01/Accounts/{sid}/Keys/SK" + "0" * 32 + ".json"),
        ("GET", "/2010-04-01/Accounts/{sid}/Recordings.json"),
        ("POST", "/v1/AuthTokens/Secondary"),
        ("DELETE", "/v1/AuthTokens/Secondary"),
        ("POST", "/v1/AuthTokens/Promote"),
    ],
)
def test_every_answer_without_a_valid_credential_is_the_same_401(
    client: httpx.Client, account: Account, method: str, path: str
) -> None:
    key = create_key(client, account.auth, account.sid)
    unknown = new_sid("AC")
    attempts = [
        (account.sid, (account.sid, "not-the-token")),
        (unknown, (unknown, "not-the-token")),
        (account.sid, (unknown, "not-the-token")),
        (account.sid, (key[0], "not-the-secret")),
        (account.sid, (new_sid("SK"), "not-the-secret")),
        (account.sid, ("someone", "anything")),
    ]
    answers = [
        comparable_answer(client.request(method, path.format(sid=sid), auth=auth))
        for sid, auth in attempts
    ]
    assert answers[0][0] == 401
    assert all(answer == answers[0] for answer in answers), answers


def test_bad_input_to_the_credential_resources_is_a_clear_4xx(
    client: httpx.Client, account: Account
) -> None:
    sub = create_subaccount(client, account.auth)
    keys = f"/2010-04-01/Accounts/{account.sid}/Keys"
    cases: list[tuple[str, str, dict[str, object], int]] = [
        ("POST", "/2010-04-01/Accounts.json", {"data": {"FriendlyName": "x" * 65}}, 400),
        ("GET", "/2010-04-01/Accounts.json", {"params": {"Status": "sleeping"}}, 400),
        ("GET", "/2010-04-01/Accounts.json", {"params": {"PageSize": "0"}}, 400),
        ("GET", "/2010-04-01/Accounts.json", {"params": {"Page": "x"}}, 400),
        ("POST", f"/2010-04-01/Accounts/{sub.sid}.json", {"data": {"Status": "gone"}}, 400),
        ("GET", "/2010-04-01/Accounts/nonsense.json", {}, 403),
        ("GET", f"{keys}/nonsense.json", {}, 404),
        ("DELETE", f"{keys}/SK{'0' * 32}.json", {}, 404),
        ("GET", keys + ".json", {"params": {"PageSize": "1001"}}, 400),
        ("POST", keys + ".json", {"content": b"FriendlyName=%ff", "headers": _FORM}, 400),
        ("POST", keys + ".json", {"json": {"FriendlyName": "k"}}, 415),
        ("POST", keys + ".json", {"content": b"x" * 20_000, "headers": _FORM}, 413),
        ("PUT", keys + ".json", {}, 405),
        ("DELETE", "/2010-04-01/Accounts.json", {}, 405),
        ("GET", "/v1/AuthTokens/Secondary", {}, 405),
        ("GET", "/v1/AuthTokens/Elsewhere", {}, 404),
    ]
    for method, path, extra, status in cases:
        answer = client.request(method, path, auth=account.auth, **extra)  # type: ignore[arg-type]
        assert answer.status_code == status, (method, path, extra, answer.text)
        assert set(answer.json()) == {"code", "message", "more_info", "status"}


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
