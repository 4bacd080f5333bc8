"""The list's query string: filters (raw ``DateCreated>=`` keys included), paging, page URIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote

from db.listing import ListFilter
from service.errors import BadRequest
from service.http.query import (
    DATE_FILTERS,
    day_span,
    narrow,
    parse_call_sid,
    parse_day,
    parse_int,
    parse_query_string,
)
from service.recordings.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE


@dataclass(frozen=True)
class ListQuery:
    filters: ListFilter
    page: int
    page_size: int
    # What the page URIs carry forward, in the order the client gave it.
    echoed: list[tuple[str, str]] = field(default_factory=list)


def _parse_day(value: str) -> date:
    """The 2008 API filters by whole days only."""
    day = parse_day("DateCreated", value)
    if day is None:
        raise BadRequest(f"DateCreated must be formatted as YYYY-MM-DD, not {value!r}")
    return day


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
            call_sid = parse_call_sid(value)
            echoed.append((key, value))
        elif key in DATE_FILTERS:
            op = DATE_FILTERS[key]
            start, end = day_span(_parse_day(value))
            created_from, created_before = narrow(created_from, created_before, op, start, end)
            echoed.append(("DateCreated" + (op if op != "=" else ""), value))
        elif key.startswith("DateCreated"):
            raise BadRequest(f"Unsupported DateCreated filter: {key!r}")
        elif key in ("page", "Page"):
            page = parse_int(key, value, 0, MAX_PAGE)
        elif key in ("num", "PageSize"):
            page_size = parse_int(key, value, 1, MAX_PAGE_SIZE)
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
