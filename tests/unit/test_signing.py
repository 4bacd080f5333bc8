"""The callback signature against twilio-python's own RequestValidator, and the AuthToken's
sealed copy."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from service.accounts.sealing import SealError, TokenSealer, sealer_for
from service.callbacks.signing import twilio_signature, wire_url, with_query

TOKEN = "12345678901234567890123456789012"
PARAMS = {
    "RecordingSid": "RE" + "a" * 32,
    "CallSid": "CA" + "b" * 32,
    "RecordingStartTime": "Fri, 27 Nov 2026 10:11:12 +0000",
    "RecordingUrl": "https://x.example/2010-04-01/Accounts/AC1/Recordings/RE1",
    "Odd": "a&b=c ü+%",
}


@pytest.mark.parametrize(
    "url",
    [
        "https://app.example.com/hooks/recording",
        "https://app.example.com:8443/hooks/recording?tenant=7&x=%20y",
        "http://127.0.0.1:5000/",
    ],
)
def test_post_signatures_validate_with_twilio_python(url: str) -> None:
    signature = twilio_signature(TOKEN, url, PARAMS)
    validator = RequestValidator(TOKEN)
    assert signature == validator.compute_signature(url, PARAMS)
    assert validator.validate(url, PARAMS, signature)
    assert not RequestValidator("x" * 32).validate(url, PARAMS, signature)
    assert not validator.validate(url, {**PARAMS, "CallSid": "CA" + "c" * 32}, signature)
    assert not validator.validate(url + "x", PARAMS, signature)


def test_get_signatures_cover_the_query_string() -> None:
    url = with_query("https://app.example.com/hook?tenant=7", PARAMS)
    assert url.startswith("https://app.example.com/hook?tenant=7&RecordingSid=RE")
    signature = twilio_signature(TOKEN, url, {})
    assert RequestValidator(TOKEN).validate(url, {}, signature)
    assert with_query("https://a.example/h", {"A": "1"}) == "https://a.example/h?A=1"
    assert with_query("https://a.example/h?", {"A": "1"}) == "https://a.example/h?A=1"


KEY = "k" * 32


def test_a_sealed_token_opens_only_with_its_key_and_account() -> None:
    sealer = TokenSealer(KEY)
    sealed = sealer.seal("AC1", TOKEN)
    assert TOKEN.encode() not in sealed
    assert sealer.open("AC1", sealed) == TOKEN
    assert TokenSealer(KEY).open("AC1", sealed) == TOKEN  # the key is derived, not random
    assert sealer.seal("AC1", TOKEN) != sealed  # a fresh nonce each time
    for other_key, account, blob in [
        ("j" * 32, "AC1", sealed),
        (KEY, "AC2", sealed),
        (KEY, "AC1", sealed[:-1] + bytes([sealed[-1] ^ 1])),
        (KEY, "AC1", b"\x02" + sealed[1:]),
        (KEY, "AC1", sealed[:20]),
    ]:
        with pytest.raises(SealError):
            TokenSealer(other_key).open(account, blob)


def test_the_secret_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="32 characters"):
        TokenSealer("short")
    assert sealer_for(None) is None and sealer_for("") is None
    assert isinstance(sealer_for(KEY), TokenSealer)


@pytest.mark.parametrize(
    ("written", "sent"),
    [
        ("http://LOCALHOST:5000/cb", "http://localhost:5000/cb"),
        ("http://h.example/a/./b/../cb", "http://h.example/a/cb"),
        ("http://h.example:80/cb", "http://h.example/cb"),
        ("http://h.example/cb?", "http://h.example/cb"),
        ('http://h.example/cb?q="x"', "http://h.example/cb?q=%22x%22"),
        ("http://h.example/cb?a=1&", "http://h.example/cb?a=1&"),
    ],
)
def test_the_wire_url_is_what_a_receiver_rebuilds(written: str, sent: str) -> None:
    assert str(wire_url(written)) == sent
    signature = twilio_signature(TOKEN, str(wire_url(written)), PARAMS)
    assert RequestValidator(TOKEN).validate(sent, PARAMS, signature)
