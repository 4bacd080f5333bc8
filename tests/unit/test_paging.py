"""Paging arithmetic: which pages exist, their neighbours, and where a page sits in the result."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.recordings.paging import NumberedPage, PageWindow
from tests.support.rows import recording_row


def test_an_empty_result_has_an_empty_page_zero_and_nothing_else() -> None:
    window = PageWindow(page=0, page_size=50, total=0)
    assert (window.num_pages, window.exists, window.offset) == (0, True, 0)
    assert (window.previous_page, window.next_page, window.last_page) == (None, None, None)
    assert not PageWindow(page=1, page_size=50, total=0).exists
    page = NumberedPage([], window)
    assert (page.start, page.end) == (0, 0)


@pytest.mark.parametrize(
    ("page", "exists", "previous", "next_", "start", "end"),
    [
        (0, True, None, 1, 0, 9),
        (1, True, 0, 2, 10, 19),
        (2, True, 1, None, 20, 22),
        (3, False, 2, None, 0, 0),
        (10**9, False, 10**9 - 1, None, 0, 0),
    ],
)
def test_23_items_in_pages_of_10(
    page: int, exists: bool, previous: int | None, next_: int | None, start: int, end: int
) -> None:
    window = PageWindow(page=page, page_size=10, total=23)
    assert window.num_pages == 3 and window.last_page == 2
    assert window.exists is exists
    assert (window.previous_page, window.next_page) == (previous, next_)
    assert window.offset == page * 10
    items = max(0, min(10, 23 - window.offset))
    numbered = NumberedPage([recording_row() for _ in range(items)], window)
    assert (numbered.start, numbered.end) == (start, end)


def test_an_exact_multiple_has_no_extra_page() -> None:
    assert PageWindow(page=0, page_size=10, total=20).num_pages == 2
    assert PageWindow(page=1, page_size=10, total=20).next_page is None
    assert not PageWindow(page=2, page_size=10, total=20).exists
    one = PageWindow(page=0, page_size=1, total=1)
    assert (one.num_pages, one.next_page, one.last_page) == (1, None, 0)


@given(total=st.integers(0, 1000), size=st.integers(1, 300))
def test_the_existing_pages_cover_every_item_exactly_once(total: int, size: int) -> None:
    first = PageWindow(page=0, page_size=size, total=total)
    assert first.num_pages == -(-total // size)
    covered: list[int] = []
    page: int | None = 0
    while page is not None:
        window = PageWindow(page=page, page_size=size, total=total)
        assert window.exists
        length = min(size, total - window.offset)
        numbered = NumberedPage([recording_row() for _ in range(length)], window)
        if length:
            covered += range(numbered.start, numbered.end + 1)
        assert window.last_page == first.last_page
        page = window.next_page
    assert covered == list(range(total))
    assert not PageWindow(page=max(first.num_pages, 1), page_size=size, total=total).exists
