"""Conditional requests: the outcome of every validator header, alone and in RFC 9110's order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from service.http.conditionals import Outcome, Validators, evaluate, if_range_allows

ETAG = '"0123456789abcdef0123456789abcdef01234567"'
# Microseconds on the stored time: HTTP dates have whole seconds, and compare as such.
MODIFIED = datetime(2024, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
VALIDATORS = Validators(ETAG, MODIFIED)
SAME = "Tue, 02 Jan 2024 03:04:05 GMT"
EARLIER = "Tue, 02 Jan 2024 03:04:04 GMT"
LATER = "Tue, 02 Jan 2024 03:04:06 GMT"

PROCEED, NOT_MODIFIED, FAILED = (
    Outcome.PROCEED,
    Outcome.NOT_MODIFIED,
    Outcome.PRECONDITION_FAILED,
)


def test_last_modified_header_is_an_http_date_in_gmt() -> None:
    assert VALIDATORS.last_modified_header == SAME
    elsewhere = Validators(ETAG, MODIFIED.astimezone(timezone(timedelta(hours=-5))))
    assert elsewhere.last_modified_header == SAME
    assert elsewhere.last_modified_seconds == MODIFIED.replace(microsecond=0)


def test_no_conditional_headers_proceed() -> None:
    assert evaluate({}, VALIDATORS) is PROCEED
    assert evaluate({"range": "bytes=0-1", "if-range": ETAG}, VALIDATORS) is PROCEED


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (ETAG, NOT_MODIFIED),
        (f'"other", {ETAG}', NOT_MODIFIED),
        (f"W/{ETAG}", NOT_MODIFIED),  # If-None-Match compares weakly
        (f'"other", W/{ETAG}', NOT_MODIFIED),
        ("*", NOT_MODIFIED),
        (" * ", NOT_MODIFIED),
        ('"other"', PROCEED),
        ('W/"other"', PROCEED),
        (ETAG[:-2] + '"', PROCEED),
        ("", PROCEED),
        (",,", PROCEED),
    ],
)
def test_if_none_match(value: str, outcome: Outcome) -> None:
    assert evaluate({"if-none-match": value}, VALIDATORS) is outcome


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (SAME, NOT_MODIFIED),  # the stored microseconds do not make it newer
        (LATER, NOT_MODIFIED),
        (EARLIER, PROCEED),
        ("Tue, 02 Jan 2024 03:04:05 -0000", NOT_MODIFIED),  # no zone: taken as UTC
        ("Mon, 01 Jan 2024 22:04:05 -0500", NOT_MODIFIED),  # the same instant
        ("Sat, 01 Jan 2000 00:00:00 GMT", PROCEED),
        ("garbage", PROCEED),
        ("", PROCEED),
    ],
)
def test_if_modified_since(value: str, outcome: Outcome) -> None:
    assert evaluate({"if-modified-since": value}, VALIDATORS) is outcome


def test_if_none_match_wins_over_if_modified_since() -> None:
    both = {"if-none-match": '"other"', "if-modified-since": LATER}
    assert evaluate(both, VALIDATORS) is PROCEED
    both = {"if-none-match": ETAG, "if-modified-since": EARLIER}
    assert evaluate(both, VALIDATORS) is NOT_MODIFIED


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (ETAG, PROCEED),
        (f'"other", {ETAG}', PROCEED),
        ("*", PROCEED),
        ('"nope"', FAILED),
        (f"W/{ETAG}", FAILED),  # If-Match compares strongly
        ("", FAILED),
    ],
)
def test_if_match(value: str, outcome: Outcome) -> None:
    assert evaluate({"if-match": value}, VALIDATORS) is outcome


@pytest.mark.parametrize(
    ("value", "outcome"),
    [
        (EARLIER, FAILED),
        ("Sat, 01 Jan 2000 00:00:00 GMT", FAILED),
        (SAME, PROCEED),
        (LATER, PROCEED),
        ("garbage", PROCEED),  # an invalid date is ignored
    ],
)
def test_if_unmodified_since(value: str, outcome: Outcome) -> None:
    assert evaluate({"if-unmodified-since": value}, VALIDATORS) is outcome


def test_if_match_replaces_if_unmodified_since() -> None:
    assert evaluate({"if-match": "*", "if-unmodified-since": EARLIER}, VALIDATORS) is PROCEED
    assert evaluate({"if-match": '"x"', "if-unmodified-since": LATER}, VALIDATORS) is FAILED


def test_preconditions_come_before_cache_validation() -> None:
    # A failed precondition is a 412 even where the cache would have been told 304 ...
    assert evaluate({"if-match": '"nope"', "if-none-match": ETAG}, VALIDATORS) is FAILED
    assert evaluate({"if-unmodified-since": EARLIER, "if-none-match": "*"}, VALIDATORS) is FAILED
    # ... and a passed one lets If-None-Match decide.
    assert evaluate({"if-match": ETAG, "if-none-match": ETAG}, VALIDATORS) is NOT_MODIFIED
    assert evaluate({"if-match": ETAG, "if-modified-since": SAME}, VALIDATORS) is NOT_MODIFIED


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        (None, True),
        (ETAG, True),
        (f" {ETAG} ", True),
        ('"stale"', False),
        (f"W/{ETAG}", False),  # a weak validator never allows a range
        (SAME, True),
        ("Mon, 01 Jan 2024 22:04:05 -0500", True),
        (LATER, False),  # If-Range dates must match exactly
        (EARLIER, False),
        ("garbage", False),
        ("", False),
    ],
)
def test_if_range(value: str | None, allowed: bool) -> None:
    assert if_range_allows(value, VALIDATORS) is allowed
