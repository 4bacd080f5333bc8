"""Numbered pages of the 2010 face's small lists (accounts, keys): the envelope the libraries
read, with ``Page`` and ``PageSize`` carried in every page URI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from service.http.query import parse_int, parse_query_string

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class PageQuery:
    page: int
    page_size: int
    # Filters the list keeps in its page URIs, in the order given.
    filters: tuple[tuple[str, str], ...] = ()

    @property
    def offset(self) -> int:
        return self.page * self.page_size

    def uri(self, path: str, page: int) -> str:
        params = [*self.filters, ("PageSize", str(self.page_size)), ("Page", str(page))]
        return f"{path}?{urlencode(params)}"


def parse_page_query(raw: bytes, filters: Sequence[str] = ()) -> PageQuery:
    """Page, PageSize and the named filters of a query string (400s for bad numbers)."""
    page, size, kept = 0, DEFAULT_PAGE_SIZE, []
    for key, value in parse_query_string(raw):
        if key == "Page":
            page = parse_int("Page", value, 0, 10**9)
        elif key == "PageSize":
            size = parse_int("PageSize", value, 1, MAX_PAGE_SIZE)
        elif key in filters:
            kept.append((key, value))
    return PageQuery(page, size, tuple(kept))


def page_json(
    key: str, items: list[dict[str, Any]], query: PageQuery, path: str, *, more: bool
) -> dict[str, Any]:
    """A list page with exactly the envelope's keys (an extra one breaks the libraries)."""
    start = query.offset
    return {
        key: items,
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": query.uri(path, 0),
        "next_page_uri": query.uri(path, query.page + 1) if more else None,
        "page": query.page,
        "page_size": query.page_size,
        "previous_page_uri": query.uri(path, query.page - 1) if query.page > 0 else None,
        "start": start,
        "uri": query.uri(path, query.page),
    }
