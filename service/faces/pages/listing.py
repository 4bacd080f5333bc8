"""The list page's query: the API's own filter and paging names, so a page's address is its
API list's with ``.html``. Blank fields (an unfilled form) are no filter."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from db.recordings import ListFilter
from service.errors import BadRequest
from service.http.query import parse_query_string
from service.recordings.paging import MAX_PAGE, MAX_PAGE_SIZE
from service.sids import is_call_sid

DEFAULT_PAGE_SIZE = 20
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT = re.compile(r"[0-9]{1,12}")
# A form field named "DateCreated>" is sent as "DateCreated%3E=day", which reads back as the
# key "DateCreated>"; the API's raw "DateCreated>=day" reads the same.
_FROM_KEYS = ("DateCreated>", "DateCreated>=")
_TO_KEYS = ("DateCreated<", "DateCreated<=")


@dataclass(frozen=True)
class PageQuery:
    call_sid: str = ""
    date_from: str = ""
    date_to: str = ""
    page: int = 0
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def filters(self) -> ListFilter:
        start = _day(self.date_from) if self.date_from else None
        end = _day(self.date_to) if self.date_to else None
        return ListFilter(
            call_sid=self.call_sid or None,
            created_from=datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            created_before=_day_after(end) if end else None,
        )

    def uri(self, base: str, page: int) -> str:
        """The address of another page of the same list."""
        pairs = [
            ("CallSid", self.call_sid),
            ("DateCreated>", self.date_from),
            ("DateCreated<", self.date_to),
        ]
        kept = [(k, v) for k, v in pairs if v]
        kept += [("PageSize", str(self.page_size)), ("Page", str(page))]
        return f"{base}?{urlencode(kept)}"


def _day(value: str) -> date:
    if not _DATE.fullmatch(value):
        raise BadRequest(f"A date must be written YYYY-MM-DD, not {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"Not a valid date: {value!r}") from exc


def _day_after(day: date) -> datetime | None:
    try:
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)
    except OverflowError:
        return None


def _number(name: str, value: str, low: int, high: int) -> int:
    if not _INT.fullmatch(value) or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def parse_page_query(raw: bytes) -> PageQuery:
    """The filters and page asked for; a malformed value is a BadRequest naming it."""
    values: dict[str, str] = {}
    for key, value in parse_query_string(raw):
        value = value.strip()
        if key in _FROM_KEYS:
            key = "DateCreated>"
        elif key in _TO_KEYS:
            key = "DateCreated<"
        values[key] = value
    query = PageQuery(
        call_sid=values.get("CallSid", ""),
        date_from=values.get("DateCreated>", ""),
        date_to=values.get("DateCreated<", ""),
    )
    if query.call_sid and not is_call_sid(query.call_sid):
        raise BadRequest(f"CallSid must be CA and 32 hex digits, not {query.call_sid!r}")
    query.filters  # noqa: B018 - the dates are checked here, not when the list is read
    page = _number("Page", values["Page"], 0, MAX_PAGE) if values.get("Page") else 0
    size = values.get("PageSize")
    page_size = _number("PageSize", size, 1, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE
    return PageQuery(query.call_sid, query.date_from, query.date_to, page, page_size)


def echo_query(raw: bytes) -> PageQuery:
    """The query as typed, for refilling the form after an error (nothing checked)."""
    values = dict(parse_query_string(raw))
    return PageQuery(
        call_sid=values.get("CallSid", ""),
        date_from=values.get("DateCreated>", values.get("DateCreated>=", "")),
        date_to=values.get("DateCreated<", values.get("DateCreated<=", "")),
    )
