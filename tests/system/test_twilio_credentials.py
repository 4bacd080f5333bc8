"""twilio-python 9.13.0, unmodified, with every credential Twilio has: an API key
(``Client(api_key, api_secret, account_sid)``), a subaccount's token and its parent's, and the
secondary AuthToken's rotation on the accounts domain (``client.accounts.base_url``)."""

from __future__ import annotations

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from service.settings import Settings
from tests.support.api2010 import upload
from tests.support.clients import Account


def twilio_client(
    base_url: str, username: str, password: str, account_sid: str | None = None
) -> Client:
    # An empty environment: TWILIO_EDGE/TWILIO_REGION, if set, would rewrite the hosts.
    client = Client(username, password, account_sid, environment={})
    client.api.base_url = base_url
    client.accounts.base_url = base_url
    return client


def test_an_api_key_made_and_used_by_the_library(
    server,  # type: ignore[no-untyped-def]
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
) -> None:
    owner = twilio_client(server.base_url, account.sid, account.token)
    made = owner.new_keys.create(friendly_name="production")
    assert made.sid.startswith("SK") and len(made.secret) == 32
    assert made.friendly_name == "production" and made.date_created is not None
    sid = upload(client, settings, account, demo_wav).json()["sid"]

    # Twilio's own advice: the key's SID and secret, and the account they act for.
    app = twilio_client(server.base_url, made.sid, made.secret, account.sid)
    assert [r.sid for r in app.recordings.list()] == [sid]
    assert app.recordings(sid).fetch().account_sid == account.sid
    # A standard key manages no keys.
    with pytest.raises(TwilioRestException) as refused:
        app.new_keys.create(friendly_name="mine")
    assert refused.value.status == 403
    assert app.recordings(sid).delete() is True

    # Keys through the library: list, fetch (no secret), rename, delete.
    assert [k.sid for k in owner.keys.list()] == [made.sid]
    fetched = owner.keys(made.sid).fetch()
    assert fetched.friendly_name == "production" and not hasattr(fetched, "secret")
    assert owner.keys(made.sid).update(friendly_name="retired").friendly_name == "retired"
    assert owner.keys(made.sid).delete() is True
    with pytest.raises(TwilioException):
        app.recordings.list()


def test_a_subaccount_with_its_own_token_and_its_parents(
    server,  # type: ignore[no-untyped-def]
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
) -> None:
    parent = twilio_client(server.base_url, account.sid, account.token)
    sub = parent.api.v2010.accounts.create(friendly_name="customer 42")
    assert sub.owner_account_sid == account.sid and sub.status == "active"
    assert sub.auth_token and sub.friendly_name == "customer 42"
    in_sub = upload(client, settings, Account(sub.sid, sub.auth_token), demo_wav).json()["sid"]
    in_parent = upload(client, settings, account, demo_wav).json()["sid"]

    own = twilio_client(server.base_url, sub.sid, sub.auth_token)
    assert [r.sid for r in own.recordings.list()] == [in_sub]
    # The parent's credentials, acting for the subaccount (Twilio's documented way) ...
    acting = twilio_client(server.base_url, account.sid, account.token, sub.sid)
    assert [r.sid for r in acting.recordings.list()] == [in_sub]
    assert [r.sid for r in parent.api.v2010.accounts(sub.sid).recordings.list()] == [in_sub]
    # ... never the other way.
    with pytest.raises(TwilioException):
        own.api.v2010.accounts(account.sid).recordings.list()
    with pytest.raises(TwilioRestException) as refused:
        own.api.v2010.accounts(account.sid).recordings(in_parent).fetch()
    assert refused.value.status == 403

    # The Accounts resource: list with filters, fetch, rename, suspend, close.
    assert [a.sid for a in parent.api.v2010.accounts.list()] == [account.sid, sub.sid]
    assert [a.sid for a in parent.api.v2010.accounts.list(friendly_name="customer 42")] == [sub.sid]
    renamed = parent.api.v2010.accounts(sub.sid).update(friendly_name="customer 43")
    assert renamed.friendly_name == "customer 43"
    parent.api.v2010.accounts(sub.sid).update(status="suspended")
    assert [a.sid for a in parent.api.v2010.accounts.list(status="suspended")] == [sub.sid]
    with pytest.raises(TwilioException):
        own.recordings.list()
    with pytest.raises(TwilioRestException) as suspended:
        own.recordings(in_sub).fetch()
    assert (suspended.value.status, suspended.value.code) == (401, 20005)
    parent.api.v2010.accounts(sub.sid).update(status="active")
    assert [r.sid for r in own.recordings.list()] == [in_sub]
    assert parent.api.v2010.accounts(sub.sid).update(status="closed").status == "closed"
    with pytest.raises(TwilioRestException) as closed:
        parent.api.v2010.accounts(sub.sid).update(status="active")
    assert closed.value.status == 400


def test_the_secondary_token_rotation_end_to_end(
    server,  # type: ignore[no-untyped-def]
    account: Account,
) -> None:
    old = twilio_client(server.base_url, account.sid, account.token)
    secondary = old.accounts.v1.secondary_auth_token().create()
    assert secondary.account_sid == account.sid and secondary.date_created is not None
    new = twilio_client(server.base_url, account.sid, secondary.secondary_auth_token)
    # Both work while the apps move over ...
    assert old.recordings.list() == [] and new.recordings.list() == []
    promoted = new.accounts.v1.auth_token_promotion().update()
    assert promoted.auth_token == secondary.secondary_auth_token
    # ... then the old one stops at once.
    with pytest.raises(TwilioException):
        old.recordings.list()
    assert new.recordings.list() == []
    another = new.accounts.v1.secondary_auth_token().create()
    assert new.accounts.v1.secondary_auth_token().delete() is True
    with pytest.raises(TwilioException):
        twilio_client(server.base_url, account.sid, another.secondary_auth_token).recordings.list()
