"""Raw query strings, decoded in order, keeping the keys old clients send (``DateCreated>``),
and the list parameters both API versions share."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import unquote_to_bytes

from service.errors import BadRequest
from service.sids import is_call_sid


def parse_query_string(raw: bytes) -> list[tuple[str, str]]:
    """Decode ``a=b&c=d`` keeping order and blank values; undecodable text is a 400."""
    pairs = []
    for piece in raw.split(b"&"):
        if not piece:
            continue
        key, sep, value = piece.partition(b"=")
        try:
            k = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8")
            v = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("The query string is not valid UTF-8") from exc
        if not sep and "=" in k:
            # "DateCreated%3E%3D2009-07-06": the whole pair was percent-encoded.
            k, _, v = k.partition("=")
        pairs.append((k, v))
    return pairs


# What the list parameters of both API versions share: the DateCreated keys (a raw
# "DateCreated>=D" arrives as key "DateCreated>" and value "D"; encoded forms may keep the "="),
# whole numbers within bounds, a UTC day as the instants it covers, and bounds that narrow.
DATE_FILTERS = {
    "DateCreated": "=",
    "DateCreated>": ">=",
    "DateCreated>=": ">=",
    "DateCreated<": "<=",
    "DateCreated<=": "<=",
}
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE = re.compile(r"[0-9]{1,12}")


def parse_int(name: str, value: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; anything else is a 400 that names ``name``."""
    if not _WHOLE.fullmatch(value):
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return number


def parse_day(name: str, value: str) -> date | None:
    """A ``YYYY-MM-DD`` day; None for a value of another shape, a 400 for an impossible day."""
    if not _DAY.fullmatch(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{name} is not a valid date: {value!r}") from exc


def day_span(day: date) -> tuple[datetime, datetime | None]:
    """The UTC day's first instant and the next day's (None past the calendar's end)."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    try:
        return start, start + timedelta(days=1)
    except OverflowError:
        return start, None


def narrow(
    low: datetime | None,
    high: datetime | None,
    op: str,
    start: datetime | None,
    end: datetime | None,
) -> tuple[datetime | None, datetime | None]:
    """Bounds (inclusive ``low``, exclusive ``high``) narrowed by one DateCreated filter ``op``
    of DATE_FILTERS whose value covers ``start`` up to ``end``."""
    if op in ("=", ">=") and start is not None:
        low = start if low is None else max(low, start)
    if op in ("=", "<=") and end is not None:
        high = end if high is None else min(high, end)
    return low, high


def parse_call_sid(value: str) -> str:
    if not is_call_sid(value):
        raise BadRequest(f"CallSid is not a valid Call SID: {value!r}")
    return value
