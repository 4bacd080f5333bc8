"""Credentials: Basic headers parsed strictly, and verify() doing the same work for every caller."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime

import pytest

import service.accounts.auth
from db.accounts import Account as StoredAccount
from service.accounts.auth import Credentials, hash_token, parse_basic, token_matches, verify
from service.sids import new_sid
from tests.support.hmacs import CountingHmac


def test_verify_does_one_hmac_and_two_digest_compares_whoever_asks(
    counting_hmac: CountingHmac,
) -> None:
    salt = b"s" * 16
    known = StoredAccount(
        sid=new_sid("AC"),
        friendly_name="",
        token_salt=salt,
        token_hash=service.accounts.auth.hash_token("right-token", salt),
        enforce_media_auth=False,
        date_created=datetime.now(UTC),
    )
    rotating = replace(
        known, secondary_token_hash=service.accounts.auth.hash_token("second-token", salt)
    )
    cases = [
        ("unknown AccountSid", Credentials(new_sid("AC"), "some-token"), None, False),
        ("known AccountSid, wrong token", Credentials(known.sid, "wrong-token"), known, False),
        ("known AccountSid, empty token", Credentials(known.sid, ""), known, False),
        ("known AccountSid, 10 KB token", Credentials(known.sid, "x" * 10_000), known, False),
        ("unknown AccountSid, empty token", Credentials(new_sid("AC"), ""), None, False),
        ("known AccountSid, right token", Credentials(known.sid, "right-token"), known, True),
        ("secondary token", Credentials(known.sid, "second-token"), rotating, True),
        ("primary beside a secondary", Credentials(known.sid, "right-token"), rotating, True),
        ("secondary token, none set", Credentials(known.sid, "second-token"), known, False),
        ("neither token", Credentials(known.sid, "third-token"), rotating, False),
    ]
    for label, credentials, account, expected in cases:
        counting_hmac.reset()
        assert verify(credentials, account) is expected, label
        assert counting_hmac.new_calls == 1, f"{label}: {counting_hmac.new_calls} HMACs"
        # Two comparisons (primary, secondary or a dummy), always of 32-byte digests: the same
        # work whatever was presented and whatever is stored.
        assert counting_hmac.compares == [(32, 32)] * 2, f"{label}: {counting_hmac.compares}"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("AC1:secret"), Credentials("AC1", "secret")),
        (basic("AC1:"), Credentials("AC1", "")),
        (basic("AC1:a:b"), Credentials("AC1", "a:b")),  # the password may hold colons
        ("  bAsIc " + base64.b64encode(b"u:p").decode() + " ", Credentials("u", "p")),
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic !!!", None),
        ("Bearer " + base64.b64encode(b"u:p").decode(), None),
        (basic("no-colon"), None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),  # not UTF-8
        ("Basic " + "A" * 5000, None),
    ],
)
def test_parse_basic(header: str | None, expected: Credentials | None) -> None:
    assert parse_basic(header) == expected


def test_tokens_are_stored_salted_and_compared_by_hash() -> None:
    salt, other_salt = b"a" * 16, b"b" * 16
    stored = hash_token("right", salt)
    assert len(stored) == 32 and b"right" not in stored
    assert hash_token("right", other_salt) != stored
    assert token_matches("right", salt, stored)
    assert not token_matches("wrong", salt, stored)
    assert not token_matches("right", other_salt, stored)
