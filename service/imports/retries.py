"""How a call to the source is tried again: Retry-After honoured, capped exponential backoff,
and the answers that are never retried."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

T = TypeVar("T")

# Eight attempts over about a minute of backoff: long enough for a restarting source or a
# short outage, short enough that one bad recording does not hold a weekend's run.
MAX_ATTEMPTS = 8
BASE_DELAY = 0.5
MAX_DELAY = 30.0
# A Retry-After longer than this is a source telling us to go away; we wait this long at most.
MAX_RETRY_AFTER = 300.0
# 429 (Twilio's code 20429) and 503 say when to come back; other 5xx and 408 are transient.
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_TRANSIENT_STATUSES = frozenset({408, 500, 502, 504})


class SourceError(Exception):
    """A call to the source failed for good; ``reason`` is one line for the operator."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        # The source's HTTP status, when it answered one.
        self.status = status


class Retryable(SourceError):
    """A call to the source failed in a way worth trying again (after ``delay``, if it said)."""

    def __init__(self, reason: str, delay: float | None = None, status: int | None = None) -> None:
        super().__init__(reason, status)
        self.delay = delay


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER)


def check_status(status: int, headers: Mapping[str, str], what: str) -> None:
    """Raise for an answer that is not a success: Retryable for what passes, else SourceError."""
    if status < 400:
        return
    if status in _RETRY_AFTER_STATUSES:
        delay = parse_retry_after(headers.get("Retry-After"))
        raise Retryable(f"{what}: {status}", delay, status)
    if status in _TRANSIENT_STATUSES or status >= 500:
        raise Retryable(f"{what}: {status}", status=status)
    # 401, 403, 404 and the rest of 4xx: asking again gets the same answer.
    raise SourceError(f"{what}: {status}", status)


def backoff(attempt: int) -> float:
    """The wait before attempt ``attempt + 1``: doubling from BASE_DELAY up to MAX_DELAY, with
    jitter so that many workers refused at once do not come back at once."""
    ceiling = min(MAX_DELAY, BASE_DELAY * (1 << min(attempt, 16)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def with_retries(call: Callable[[], Awaitable[T]], *, attempts: int = MAX_ATTEMPTS) -> T:
    """``call()``, tried again on Retryable failures; the last failure is raised as it is."""
    for attempt in range(attempts):
        try:
            return await call()
        except Retryable as exc:
            if attempt + 1 >= attempts:
                raise
            await asyncio.sleep(exc.delay if exc.delay is not None else backoff(attempt))
    raise AssertionError("unreachable")
