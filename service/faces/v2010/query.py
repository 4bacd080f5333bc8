"""The 2010 list's query string: filters, IncludeSoftDeleted, paging, and the page URIs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
from service.sids import is_conference_sid
from service.timestamps import InvalidTimestamp, parse_timestamp

_MICROSECOND = timedelta(microseconds=1)
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


def _covers(key: str, value: str) -> tuple[datetime | None, datetime | None]:
    """What one DateCreated value covers: a ``YYYY-MM-DD`` is its whole UTC day, anything else
    must be a timestamp, which covers that instant alone (compared inclusively)."""
    day = parse_day(key, value)
    if day is not None:
        return day_span(day)
    try:
        moment = parse_timestamp(value)
    except InvalidTimestamp as exc:
        raise BadRequest(
            f"{key} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp, not {value!r}"
        ) from exc
    return moment, moment + _MICROSECOND


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
            call_sid = parse_call_sid(value)
            echoed.append((key, value))
        elif key == "ConferenceSid":
            if not is_conference_sid(value):
                raise BadRequest(f"ConferenceSid is not a valid Conference SID: {value!r}")
            conference_sid = value
            echoed.append((key, value))
        elif key in DATE_FILTERS:
            op = DATE_FILTERS[key]
            low, high = narrow(low, high, op, *_covers(key, value))
            # Spelled as the SDKs send them (DateCreated< and DateCreated>).
            echoed.append(("DateCreated" + ("" if op == "=" else op[0]), value))
        elif key.startswith("DateCreated"):
            raise BadRequest(f"Unsupported DateCreated filter: {key!r}")
        elif key == "IncludeSoftDeleted":
            include_deleted = _parse_bool(key, value)
            echoed.append((key, value.lower()))
        elif key == "PageSize":
            page_size = parse_int(key, value, 1, MAX_PAGE_SIZE)
        elif key == "Page":
            page = parse_int(key, value, 0, MAX_PAGE)
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
