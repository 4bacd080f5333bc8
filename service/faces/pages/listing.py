"""The list page's query: the API's own filter and paging names, so a page's address is its
API list's with ``.html``. Blank fields (an unfilled form) are no filter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from db.listing import ListFilter
from service.errors import BadRequest
from service.http.query import day_span, parse_day, parse_int, parse_query_string
from service.recordings.paging import MAX_PAGE, MAX_PAGE_SIZE
from service.sids import is_call_sid

DEFAULT_PAGE_SIZE = 20
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
        start = day_span(_day(self.date_from))[0] if self.date_from else None
        end = day_span(_day(self.date_to))[1] if self.date_to else None
        return ListFilter(call_sid=self.call_sid or None, created_from=start, created_before=end)

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
    day = parse_day("The date", value)
    if day is None:
        raise BadRequest(f"A date must be written YYYY-MM-DD, not {value!r}")
    return day


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
    page = parse_int("Page", values["Page"], 0, MAX_PAGE) if values.get("Page") else 0
    size = values.get("PageSize")
    page_size = parse_int("PageSize", size, 1, MAX_PAGE_SIZE) if size else DEFAULT_PAGE_SIZE
    return PageQuery(query.call_sid, query.date_from, query.date_to, page, page_size)


def echo_query(raw: bytes) -> PageQuery:
    """The query as typed, for refilling the form after an error (nothing checked)."""
    values = dict(parse_query_string(raw))
    return PageQuery(
        call_sid=values.get("CallSid", ""),
        date_from=values.get("DateCreated>", values.get("DateCreated>=", "")),
        date_to=values.get("DateCreated<", values.get("DateCreated<=", "")),
    )
