"""``/v1/Credentials/PublicKeys`` over HTTP against the real server: the shapes twilio-python
reads, the account's credentials, and each bad input a clear 400 in Twilio's error shape."""

from __future__ import annotations

import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, Ingest, new_account
from tests.support.encryption import PUBLIC_KEYS, ec_public_pem, key_pair, register_key, use_key
from tests.support.rows import fetch_rows
from tests.support.stack import run_recordings

FIELDS = {"sid", "account_sid", "friendly_name", "date_created", "date_updated", "url"}


def twilio_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["status"] == status
    return body


def test_create_fetch_rename_list_delete(client: httpx.Client, account: Account) -> None:
    _, public_pem = key_pair()
    made = client.post(
        PUBLIC_KEYS, data={"PublicKey": public_pem, "FriendlyName": "ops"}, auth=account.auth
    )
    assert made.status_code == 201, made.text
    key = made.json()
    assert set(key) == FIELDS
    assert key["sid"].startswith("CR") and len(key["sid"]) == 34
    assert key["account_sid"] == account.sid
    assert key["friendly_name"] == "ops"
    assert key["url"] == f"{client.base_url}{PUBLIC_KEYS}/{key['sid']}"
    assert key["date_created"].endswith("Z") and "T" in key["date_created"]
    # The PEM is never echoed: a key is known by its SID.
    assert "BEGIN" not in made.text

    fetched = client.get(f"{PUBLIC_KEYS}/{key['sid']}", auth=account.auth)
    assert fetched.status_code == 200
    assert fetched.json() == key

    renamed = client.post(
        f"{PUBLIC_KEYS}/{key['sid']}", data={"FriendlyName": "rotated"}, auth=account.auth
    )
    assert renamed.status_code == 200
    assert renamed.json()["friendly_name"] == "rotated"

    listed = client.get(PUBLIC_KEYS, auth=account.auth).json()
    assert set(listed) == {"credentials", "meta"}
    assert [k["sid"] for k in listed["credentials"]] == [key["sid"]]
    assert listed["meta"]["key"] == "credentials"
    assert listed["meta"]["next_page_url"] is None
    assert listed["meta"]["previous_page_url"] is None
    assert listed["meta"]["page"] == 0 and listed["meta"]["page_size"] == 50

    assert client.delete(f"{PUBLIC_KEYS}/{key['sid']}", auth=account.auth).status_code == 204
    twilio_error(client.get(f"{PUBLIC_KEYS}/{key['sid']}", auth=account.auth), 404)
    twilio_error(client.delete(f"{PUBLIC_KEYS}/{key['sid']}", auth=account.auth), 404)


def test_the_list_pages_by_page_size_oldest_first(client: httpx.Client, account: Account) -> None:
    _, public_pem = key_pair()
    sids = [register_key(client, account, public_pem, f"k{i}") for i in range(5)]
    seen: list[str] = []
    url: str | None = f"{PUBLIC_KEYS}?PageSize=2"
    pages = 0
    while url:
        page = client.get(url, auth=account.auth).json()
        seen += [k["sid"] for k in page["credentials"]]
        assert page["meta"]["page"] == pages
        url = page["meta"]["next_page_url"]
        pages += 1
    assert seen == sids
    assert pages == 3
    twilio_error(client.get(f"{PUBLIC_KEYS}?PageSize=0", auth=account.auth), 400)
    twilio_error(client.get(f"{PUBLIC_KEYS}?PageSize=1001", auth=account.auth), 400)
    twilio_error(client.get(f"{PUBLIC_KEYS}?Page=x", auth=account.auth), 400)


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        ("", "PublicKey is required"),
        ("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----", "not a PEM"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ", "not a PEM"),
    ],
)
def test_malformed_pem_is_a_400(
    client: httpx.Client, account: Account, pem: str, says: str
) -> None:
    body = twilio_error(client.post(PUBLIC_KEYS, data={"PublicKey": pem}, auth=account.auth), 400)
    assert says in str(body["message"])
    assert body["code"] == 20001


def test_short_and_non_rsa_and_private_keys_are_400s(
    client: httpx.Client, account: Account
) -> None:
    _, short = key_pair(1024)
    body = twilio_error(client.post(PUBLIC_KEYS, data={"PublicKey": short}, auth=account.auth), 400)
    assert "1024 bits" in str(body["message"])
    body = twilio_error(
        client.post(PUBLIC_KEYS, data={"PublicKey": ec_public_pem()}, auth=account.auth), 400
    )
    assert "RSA" in str(body["message"])
    private_pem, _ = key_pair()
    body = twilio_error(
        client.post(PUBLIC_KEYS, data={"PublicKey": private_pem.decode()}, auth=account.auth), 400
    )
    assert "private key" in str(body["message"])
    assert "PRIVATE" not in str(body["message"])
    assert client.get(PUBLIC_KEYS, auth=account.auth).json()["credentials"] == []


def test_a_key_for_another_account_is_a_400(
    client: httpx.Client, account: Account, other_account: Account
) -> None:
    _, public_pem = key_pair()
    body = twilio_error(
        client.post(
            PUBLIC_KEYS,
            data={"PublicKey": public_pem, "AccountSid": other_account.sid},
            auth=account.auth,
        ),
        400,
    )
    assert other_account.sid in str(body["message"])
    assert client.get(PUBLIC_KEYS, auth=other_account.auth).json()["credentials"] == []


def test_another_accounts_key_is_not_found(
    client: httpx.Client, account: Account, other_account: Account
) -> None:
    _, public_pem = key_pair()
    theirs = register_key(client, other_account, public_pem)
    for method in ("GET", "DELETE"):
        twilio_error(client.request(method, f"{PUBLIC_KEYS}/{theirs}", auth=account.auth), 404)
    twilio_error(
        client.post(f"{PUBLIC_KEYS}/{theirs}", data={"FriendlyName": "x"}, auth=account.auth), 404
    )
    assert client.get(f"{PUBLIC_KEYS}/{theirs}", auth=other_account.auth).status_code == 200
    twilio_error(client.get(f"{PUBLIC_KEYS}/{new_sid('CR')}", auth=account.auth), 404)
    twilio_error(client.get(f"{PUBLIC_KEYS}/not-a-sid", auth=account.auth), 404)


def test_credentials_are_required(client: httpx.Client, account: Account) -> None:
    body = twilio_error(client.get(PUBLIC_KEYS), 401)
    assert body["code"] == 20003
    twilio_error(client.get(PUBLIC_KEYS, auth=(account.sid, "wrong")), 401)
    twilio_error(client.post(PUBLIC_KEYS, data={"PublicKey": "x"}), 401)


def test_a_friendly_name_over_64_characters_is_a_400(
    client: httpx.Client, account: Account
) -> None:
    _, public_pem = key_pair()
    twilio_error(
        client.post(
            PUBLIC_KEYS, data={"PublicKey": public_pem, "FriendlyName": "x" * 65}, auth=account.auth
        ),
        400,
    )


def test_an_oversized_body_is_a_413(client: httpx.Client, account: Account) -> None:
    twilio_error(
        client.post(PUBLIC_KEYS, content=b"PublicKey=" + b"A" * 100_000, auth=account.auth), 413
    )


def test_a_key_in_use_cannot_be_deleted(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest
) -> None:
    _, public_pem = key_pair()
    old = register_key(client, account, public_pem, "old")
    new = register_key(client, account, public_pem, "new")
    use_key(settings.database_url, account.sid, old)
    body = twilio_error(client.delete(f"{PUBLIC_KEYS}/{old}", auth=account.auth), 400)
    assert "encrypts this account's new recordings" in str(body["message"])

    sid = ingest(account).json()["sid"]
    # Rotated: new recordings go under the new key; the old one still decrypts the first.
    use_key(settings.database_url, account.sid, new)
    body = twilio_error(client.delete(f"{PUBLIC_KEYS}/{old}", auth=account.auth), 400)
    assert "needed by 1 recording" in str(body["message"])

    deleted = client.delete(
        f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.json", auth=account.auth
    )
    assert deleted.status_code == 204
    assert client.delete(f"{PUBLIC_KEYS}/{old}", auth=account.auth).status_code == 204
    use_key(settings.database_url, account.sid, None)
    assert client.delete(f"{PUBLIC_KEYS}/{new}", auth=account.auth).status_code == 204


def test_an_account_with_keys_and_encrypted_recordings_can_be_deleted(
    client: httpx.Client, settings: Settings, ingest: Ingest
) -> None:
    account = new_account(settings.database_url)
    _, public_pem = key_pair()
    key = register_key(client, account, public_pem)
    use_key(settings.database_url, account.sid, key)
    sid = ingest(account).json()["sid"]
    done = run_recordings(settings, "accounts", "delete", "--yes", account.sid)
    assert "and 1 recordings" in done.stdout
    assert (
        fetch_rows(settings.database_url, "SELECT sid FROM public_keys WHERE sid = $1", key) == []
    )
    assert client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}").status_code == 404


def test_a_pem_posted_without_url_encoding_is_registered(
    client: httpx.Client, account: Account
) -> None:
    """``curl -d "PublicKey=$(cat public_key.pem)"``: the PEM's '+' arrive as spaces."""
    public_pem = next(pem for seed in range(20) if "+" in (pem := key_pair(seed=seed)[1]))
    made = client.post(
        PUBLIC_KEYS,
        content=b"FriendlyName=raw&PublicKey=" + public_pem.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        auth=account.auth,
    )
    assert made.status_code == 201, made.text
