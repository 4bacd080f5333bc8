"""The 2010 list's query string: filters, IncludeSoftDeleted, paging, and the page URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

from db.recordings import ListFilter
from service.errors import BadRequest
from service.http.query import parse_query_string
from service.recordings.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from service.sids import is_call_sid, is_conference_sid
from service.timestamps import InvalidTimestamp, parse_timestamp

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT = re.compile(r"[0-9]{1,12}")
_MICROSECOND = timedelta(microseconds=1)
# The SDKs send "DateCreated%3C=..." (key "DateCreated<"); a hand-written "DateCreated<=..."
# splits at its first "=" into the same key; an encoded "DateCreated%3C%3D=..." keeps the "=".
_DATE_KEYS = {
    "DateCreated": "=",
    "DateCreated>": ">",
    "DateCreated>=": ">",
    "DateCreated<": "<",
    "DateCreated<=": "<",
}
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class ListQuery:
    filters: ListFilter
    include_deleted: bool = False
    page: int = 0
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str | None = None
    # The filters as the client gave them, in order: every page URI carries them on.
    echoed: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Bounds:
    """An inclusive lower and an exclusive upper bound of DateCreated."""

    start: datetime | None
    end: datetime | None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _bounds(key: str, value: str) -> _Bounds:
    """What one DateCreated value covers: a ``YYYY-MM-DD`` is its whole UTC day, anything else
    must be a timestamp, which covers that instant alone (compared inclusively)."""
    if _DATE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError as exc:
            raise BadRequest(f"{key} is not a valid date: {value!r}") from exc
        try:
            after = _midnight(day + timedelta(days=1))
        except OverflowError:
            after = None
        return _Bounds(_midnight(day), after)
    try:
        moment = parse_timestamp(value)
    except InvalidTimestamp as exc:
        raise BadRequest(
            f"{key} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp, not {value!r}"
        ) from exc
    return _Bounds(moment, moment + _MICROSECOND)


def _narrow(
    low: datetime | None, high: datetime | None, op: str, b: _Bounds
) -> tuple[datetime | None, datetime | None]:
    if op in ("=", ">") and b.start is not None:
        low = b.start if low is None else max(low, b.start)
    if op in ("=", "<") and b.end is not None:
        high = b.end if high is None else min(high, b.end)
    return low, high


def _parse_int(name: str, value: str, low: int, high: int) -> int:
    if not _INT.fullmatch(value):
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return number


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() not in _BOOLEANS:
        raise BadRequest(f"{name} must be true or false, not {value!r}")
    return _BOOLEANS[value.lower()]


def parse_include_deleted(raw: bytes) -> bool:
    """A fetch's one parameter: IncludeSoftDeleted (default false)."""
    include = False
    for key, value in parse_query_string(raw):
        if key == "IncludeSoftDeleted":
            include = _parse_bool(key, value)
    return include


def parse_list_query(raw: bytes) -> ListQuery:
    """The filters and paging a 2010 list request asks for; unknown parameters are ignored."""
    call_sid = conference_sid = page_token = None
    low: datetime | None = None
    high: datetime | None = None
    include_deleted = False
    page, page_size = 0, DEFAULT_PAGE_SIZE
    echoed: list[tuple[str, str]] = []
    for key, value in parse_query_string(raw):
        if key == "CallSid":
            if not is_call_sid(value):
                raise BadRequest(f"CallSid is not a valid Call SID: {value!r}")
            call_sid = value
            echoed.append((key, value))
        elif key == "ConferenceSid":
            if not is_conference_sid(value):
                raise BadRequest(f"ConferenceSid is not a valid Conference SID: {value!r}")
            conference_sid = value
            echoed.append((key, value))
        elif key in _DATE_KEYS:
            op = _DATE_KEYS[key]
            low, high = _narrow(low, high, op, _bounds(key, value))
            echoed.append(("DateCreated" + ("" if op == "=" else op), value))
        elif key.startswith("DateCreated"):
            raise BadRequest(f"Unsupported DateCreated filter: {key!r}")
        elif key == "IncludeSoftDeleted":
            include_deleted = _parse_bool(key, value)
            echoed.append((key, value.lower()))
        elif key == "PageSize":
            page_size = _parse_int(key, value, 1, MAX_PAGE_SIZE)
        elif key == "Page":
            page = _parse_int(key, value, 0, MAX_PAGE)
        elif key == "PageToken":
            page_token = value or None
    filters = ListFilter(
        call_sid=call_sid, conference_sid=conference_sid, created_from=low, created_before=high
    )
    return ListQuery(filters, include_deleted, page, page_size, page_token, echoed)


def list_uri(path: str, query: ListQuery, *, page: int, token: str | None) -> str:
    """A relative list URI with every filter, PageSize, Page and (if any) PageToken: the SDKs
    follow the next and previous page URIs verbatim and add nothing of their own."""
    parts = [f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in query.echoed]
    parts += [f"PageSize={query.page_size}", f"Page={page}"]
    if token:
        parts.append(f"PageToken={quote(token, safe='')}")
    return f"{path}?{'&'.join(parts)}"
