"""The list's query string: filters (raw ``DateCreated>=`` keys included), paging, page URIs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote

from db.recordings import ListFilter
from service.errors import BadRequest
from service.http.query import parse_query_string
from service.recordings.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE
from service.sids import is_call_sid

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT = re.compile(r"[0-9]{1,12}")
# Raw "DateCreated>=D" arrives as key "DateCreated>" and value "D"; encoded forms may keep "=".
_DATE_KEYS = {
    "DateCreated": "=",
    "DateCreated>": ">=",
    "DateCreated>=": ">=",
    "DateCreated<": "<=",
    "DateCreated<=": "<=",
}


@dataclass(frozen=True)
class ListQuery:
    filters: ListFilter
    page: int
    page_size: int
    # What the page URIs carry forward, in the order the client gave it.
    echoed: list[tuple[str, str]] = field(default_factory=list)


def _parse_day(value: str) -> date:
    if not _DATE.fullmatch(value):
        raise BadRequest(f"DateCreated must be formatted as YYYY-MM-DD, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"DateCreated is not a valid date: {value!r}") from exc


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _day_after(day: date) -> datetime | None:
    try:
        return _midnight(day + timedelta(days=1))
    except OverflowError:
        return None


def _parse_int(name: str, value: str, low: int, high: int) -> int:
    if not _INT.fullmatch(value):
        raise BadRequest(f"{name} must be a whole number, not {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return number


def parse_list_query(raw: bytes) -> ListQuery:
    """The filters and paging a list request asks for."""
    call_sid = None
    created_from: datetime | None = None
    created_before: datetime | None = None
    page = 0
    page_size = DEFAULT_PAGE_SIZE
    echoed: list[tuple[str, str]] = []
    for key, value in parse_query_string(raw):
        if key == "CallSid":
            if not is_call_sid(value):
                raise BadRequest(f"CallSid is not a valid Call SID: {value!r}")
            call_sid = value
            echoed.append((key, value))
        elif key in _DATE_KEYS:
            op = _DATE_KEYS[key]
            day = _parse_day(value)
            if op in ("=", ">="):
                start = _midnight(day)
                created_from = start if created_from is None else max(created_from, start)
            if op in ("=", "<="):
                end = _day_after(day)
                if end is not None:
                    created_before = end if created_before is None else min(created_before, end)
            echoed.append(("DateCreated" + (op if op != "=" else ""), value))
        elif key.startswith("DateCreated"):
            raise BadRequest(f"Unsupported DateCreated filter: {key!r}")
        elif key in ("page", "Page"):
            page = _parse_int(key, value, 0, MAX_PAGE)
        elif key in ("num", "PageSize"):
            page_size = _parse_int(key, value, 1, MAX_PAGE_SIZE)
    filters = ListFilter(
        call_sid=call_sid, created_from=created_from, created_before=created_before
    )
    return ListQuery(filters=filters, page=page, page_size=page_size, echoed=echoed)


def page_uri(base: str, query: ListQuery, page: int) -> str:
    """The relative URI of another page of the same list."""
    parts = []
    for key, value in query.echoed:
        # "DateCreated>=" as "DateCreated%3E=": a URI can't hold a bare ">", and it reads back.
        name, op = (key[:11], key[11:]) if key.startswith("DateCreated") else (key, "")
        parts.append(f"{name}{quote(op.rstrip('='), safe='')}={quote(value, safe='')}")
    parts.append(f"num={query.page_size}")
    parts.append(f"page={page}")
    return f"{base}?{'&'.join(parts)}"
