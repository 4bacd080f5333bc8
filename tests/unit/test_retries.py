"""When the importer asks its source again (service/imports/retries.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from service.imports.retries import (
    MAX_DELAY,
    MAX_RETRY_AFTER,
    Retryable,
    SourceError,
    backoff,
    check_status,
    parse_retry_after,
    with_retries,
)


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("999999") == MAX_RETRY_AFTER
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    delay = parse_retry_after(later)
    assert delay is not None and 25 <= delay <= 30
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(past) == 0.0


@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_say_when(status: int) -> None:
    with pytest.raises(Retryable) as caught:
        check_status(status, {"Retry-After": "2"}, "listing")
    assert caught.value.delay == 2.0
    assert caught.value.status == status


@pytest.mark.parametrize("status", [500, 502, 504, 408])
def test_other_server_failures_are_retried_with_backoff(status: int) -> None:
    with pytest.raises(Retryable) as caught:
        check_status(status, {}, "media")
    assert caught.value.delay is None


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_refusals_are_final(status: int) -> None:
    with pytest.raises(SourceError) as caught:
        check_status(status, {"Retry-After": "1"}, "media")
    assert not isinstance(caught.value, Retryable)
    assert caught.value.reason == f"media: {status}"


def test_success_passes() -> None:
    check_status(200, {}, "media")
    check_status(302, {}, "media")


def test_backoff_doubles_up_to_its_cap() -> None:
    for attempt in range(40):
        ceiling = min(MAX_DELAY, 0.5 * 2**attempt)
        assert ceiling / 2 <= backoff(attempt) <= ceiling


def test_with_retries_gives_up_after_its_attempts() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise Retryable("reset", delay=0)
        return "ok"

    assert asyncio.run(with_retries(flaky)) == "ok"
    assert calls == 3

    async def always() -> str:
        nonlocal calls
        calls += 1
        raise Retryable("reset", delay=0)

    calls = 0
    with pytest.raises(Retryable):
        asyncio.run(with_retries(always, attempts=4))
    assert calls == 4

    async def final() -> str:
        nonlocal calls
        calls += 1
        raise SourceError("media: 404", 404)

    calls = 0
    with pytest.raises(SourceError):
        asyncio.run(with_retries(final))
    assert calls == 1
