"""Numbered pages of a list: the one place that does paging arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

from db.recordings import Recording

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE = 10**9


@dataclass(frozen=True)
class PageWindow:
    """Which slice of a result of ``total`` items page ``page`` of size ``page_size`` is."""

    page: int
    page_size: int
    total: int

    @property
    def num_pages(self) -> int:
        return -(-self.total // self.page_size)

    @property
    def exists(self) -> bool:
        """Page 0 of an empty result exists (and is empty); any page past the last does not."""
        return self.page == 0 if self.total == 0 else self.page < self.num_pages

    @property
    def offset(self) -> int:
        return self.page * self.page_size

    @property
    def last_page(self) -> int | None:
        return self.num_pages - 1 if self.num_pages else None

    @property
    def previous_page(self) -> int | None:
        return self.page - 1 if self.page > 0 else None

    @property
    def next_page(self) -> int | None:
        return self.page + 1 if self.page + 1 < self.num_pages else None


@dataclass(frozen=True)
class NumberedPage:
    """One page of recordings, with where it sits in the whole result."""

    recordings: list[Recording]
    window: PageWindow

    @property
    def start(self) -> int:
        """The zero-based index of the page's first item in the whole result (0 when empty)."""
        return self.window.offset if self.recordings else 0

    @property
    def end(self) -> int:
        """The zero-based index of the page's last item (0 when empty)."""
        return self.start + len(self.recordings) - 1 if self.recordings else 0


@dataclass(frozen=True)
class TokenPage:
    """One page of a keyset listing: no total, only tokens of the pages beside it.

    ``page`` is the client's own page number, echoed: it places ``start`` and ``end`` and
    numbers the neighbours, but the rows come from the token.
    """

    recordings: list[Recording]
    page: int
    page_size: int
    next_token: str | None
    previous_token: str | None

    @property
    def start(self) -> int:
        return self.page * self.page_size

    @property
    def end(self) -> int:
        return self.start + max(len(self.recordings) - 1, 0)

    @property
    def next_page(self) -> int:
        return self.page + 1

    @property
    def previous_page(self) -> int:
        return max(self.page - 1, 0)
