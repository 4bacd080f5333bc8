"""Credentials without servers: key SIDs and secrets, who reaches whom, account status, and the
small lists' pages."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from db.accounts import Account
from service.accounts.auth import SECRET_LENGTH, is_key_sid, new_key_secret, reaches
from service.errors import BadRequest
from service.faces.v2010.listing import page_json, parse_page_query
from service.sids import new_sid


def _account(parent_sid: str | None = None, **changes: object) -> Account:
    account = Account(
        sid=new_sid("AC"),
        friendly_name="",
        token_salt=b"s" * 16,
        token_hash=b"h" * 32,
        enforce_media_auth=False,
        date_created=datetime.now(UTC),
        parent_sid=parent_sid,
    )
    return replace(account, **changes)


def test_key_secrets_are_32_letters_and_digits_and_never_repeat() -> None:
    secrets = {new_key_secret() for _ in range(200)}
    assert len(secrets) == 200
    alphabet = set(string.ascii_letters + string.digits)
    assert all(len(s) == SECRET_LENGTH == 32 and set(s) <= alphabet for s in secrets)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (new_sid("SK"), True),
        ("SK" + "A" * 32, False),
        ("SK" + "0" * 31, False),
        (new_sid("AC"), False),
        ("", False),
    ],
)
def test_key_sids(value: str, expected: bool) -> None:
    assert is_key_sid(value) is expected


def test_a_credential_reaches_its_account_and_its_subaccounts_only() -> None:
    parent = _account()
    child, sibling = _account(parent.sid), _account(parent.sid)
    stranger = _account()
    assert reaches(parent, parent) and reaches(parent, child) and reaches(child, child)
    assert not reaches(child, parent)
    assert not reaches(child, sibling)
    assert not reaches(stranger, child) and not reaches(parent, stranger)


@pytest.mark.parametrize(
    ("status", "parent_status", "active"),
    [
        ("active", None, True),
        ("active", "active", True),
        ("suspended", None, False),
        ("closed", None, False),
        ("active", "suspended", False),
        ("active", "closed", False),
    ],
)
def test_an_account_is_active_only_with_its_parent(
    status: str, parent_status: str | None, active: bool
) -> None:
    assert _account(status=status, parent_status=parent_status).active is active


def test_owner_account_sid_is_the_parent_or_itself() -> None:
    parent = _account()
    assert parent.owner_sid == parent.sid
    assert _account(parent.sid).owner_sid == parent.sid


def test_small_list_pages_carry_their_filters_and_size() -> None:
    query = parse_page_query(b"Status=active&PageSize=2&Page=1&Other=x", ("Status",))
    assert (query.page, query.page_size, query.filters) == (1, 2, (("Status", "active"),))
    body = page_json("accounts", [{"sid": "a"}, {"sid": "b"}], query, "/A.json", more=True)
    assert body["next_page_uri"] == "/A.json?Status=active&PageSize=2&Page=2"
    assert body["previous_page_uri"] == "/A.json?Status=active&PageSize=2&Page=0"
    assert (body["start"], body["end"]) == (2, 3)
    last = page_json("accounts", [], parse_page_query(b""), "/A.json", more=False)
    assert last["next_page_uri"] is None and last["previous_page_uri"] is None
    assert (last["start"], last["end"], last["page_size"]) == (0, 0, 50)


@pytest.mark.parametrize("raw", [b"PageSize=0", b"PageSize=1001", b"Page=-1", b"PageSize=x"])
def test_small_list_page_numbers_are_checked(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_page_query(raw)
