"""The 2008 list's query string: filters (the old API's raw ``DateCreated>=`` keys and their
percent-encoded forms), bad values as 400s, paging bounds, and page URIs that read back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.listing import ListFilter
from service.errors import BadRequest
from service.faces.v2008.query import ListQuery, page_uri, parse_list_query
from service.recordings.paging import DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE

CALL = "CA" + "0123456789abcdef" * 2
JUL_6 = datetime(2009, 7, 6, tzinfo=UTC)
JUL_7 = datetime(2009, 7, 7, tzinfo=UTC)
BASE = "/2008-08-01/Accounts/AC1/Recordings.json"


def parse(query: str) -> ListQuery:
    return parse_list_query(query.encode())


def test_no_query_is_the_first_page_unfiltered() -> None:
    query = parse("")
    assert query.filters == ListFilter()
    assert (query.page, query.page_size, query.echoed) == (0, DEFAULT_PAGE_SIZE, [])


@pytest.mark.parametrize(
    ("query", "created_from", "created_before"),
    [
        ("DateCreated=2009-07-06", JUL_6, JUL_7),
        ("DateCreated>=2009-07-06", JUL_6, None),  # arrives as key "DateCreated>"
        ("DateCreated<=2009-07-06", None, JUL_7),  # the day itself is included
        ("DateCreated%3E%3D2009-07-06", JUL_6, None),  # the whole pair encoded
        ("DateCreated%3E=2009-07-06", JUL_6, None),
        ("DateCreated%3E%3D=2009-07-06", JUL_6, None),
        ("DateCreated>%3D2009-07-06", JUL_6, None),
        ("DateCreated%3C%3D2009-07-06", None, JUL_7),
        ("DateCreated%3C=2009-07-06", None, JUL_7),
        (
            "DateCreated>=2009-07-01&DateCreated<=2009-07-06",
            datetime(2009, 7, 1, tzinfo=UTC),
            JUL_7,
        ),
        # Several bounds narrow each other.
        ("DateCreated>=2009-07-01&DateCreated>=2009-07-06", JUL_6, None),
        ("DateCreated<=2009-07-09&DateCreated<=2009-07-06", None, JUL_7),
        ("DateCreated=2009-07-06&DateCreated>=2009-07-01", JUL_6, JUL_7),
        # The last day there is has no day after it: no upper bound, and no error.
        ("DateCreated<=9999-12-31", None, None),
        ("DateCreated=9999-12-31", datetime(9999, 12, 31, tzinfo=UTC), None),
    ],
)
def test_date_filters(
    query: str, created_from: datetime | None, created_before: datetime | None
) -> None:
    filters = parse(query).filters
    assert (filters.created_from, filters.created_before) == (created_from, created_before)
    assert filters.call_sid is None


def test_call_sid_filter_and_what_is_echoed() -> None:
    query = parse(f"num=5&CallSid={CALL}&x=1&DateCreated%3E%3D2009-07-06&_method=GET&page=2")
    assert query.filters == ListFilter(call_sid=CALL, created_from=JUL_6)
    assert (query.page, query.page_size) == (2, 5)
    # Filters only, in the client's order; paging and unknown parameters are not carried.
    assert query.echoed == [("CallSid", CALL), ("DateCreated>=", "2009-07-06")]


@pytest.mark.parametrize(
    "query",
    [
        "DateCreated=2009-13-01",
        "DateCreated=2009-02-30",
        "DateCreated=yesterday",
        "DateCreated>=2009-7-6",
        "DateCreated=2009-07-06T00:00:00Z",
        "DateCreated=",
        "DateCreated%3E%3D=bad",
        "DateCreated!=2009-07-06",
        "DateCreated%01=2020-01-01",
        "DateCreated>>=2009-07-06",
        "DateCreated=%ff",
        "CallSid=CA123",
        "CallSid=" + CALL.upper(),
        "CallSid=RE" + CALL[2:],
        "CallSid=",
        f"CallSid={CALL}%0A",
        "num=0",
        f"num={MAX_PAGE_SIZE + 1}",
        "num=ten",
        "num=-1",
        "num=+5",
        "num= 5",
        "PageSize=5000",
        "page=-1",
        "Page=x",
        f"page={MAX_PAGE + 1}",
        "page=" + "9" * 13,
        "page=1.5",
    ],
)
def test_bad_queries_are_bad_requests(query: str) -> None:
    with pytest.raises(BadRequest):
        parse(query)


@pytest.mark.parametrize(
    ("query", "page", "size"),
    [
        ("num=1", 0, 1),
        (f"num={MAX_PAGE_SIZE}", 0, MAX_PAGE_SIZE),
        ("PageSize=7&Page=3", 3, 7),
        (f"page={MAX_PAGE}", MAX_PAGE, DEFAULT_PAGE_SIZE),
        ("page=007", 7, DEFAULT_PAGE_SIZE),
        ("num=5&num=9", 0, 9),  # the last one wins
    ],
)
def test_paging_within_bounds(query: str, page: int, size: int) -> None:
    parsed = parse(query)
    assert (parsed.page, parsed.page_size) == (page, size)


def test_page_uri_spells_the_filters_so_that_they_read_back() -> None:
    query = parse(f"CallSid={CALL}&DateCreated>=2009-07-04&DateCreated<=2009-07-06&num=1")
    uri = page_uri(BASE, query, 1)
    assert uri == (
        f"{BASE}?CallSid={CALL}&DateCreated%3E=2009-07-04&DateCreated%3C=2009-07-06&num=1&page=1"
    )
    assert page_uri(BASE, parse(""), 0) == f"{BASE}?num={DEFAULT_PAGE_SIZE}&page=0"
    assert page_uri(BASE, parse("DateCreated=2009-07-06"), 3).startswith(
        f"{BASE}?DateCreated=2009-07-06&"
    )


days = st.dates(min_value=datetime(1970, 1, 1).date(), max_value=datetime(9999, 12, 31).date())
filters = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "DateCreated=",
                "DateCreated>=",
                "DateCreated<=",
                "DateCreated%3E%3D",
                "DateCreated%3C=",
            ]
        ),
        days,
    ),
    max_size=4,
)


@given(
    dates=filters,
    call=st.none() | st.from_regex(r"CA[0-9a-f]{32}", fullmatch=True),
    size=st.integers(1, MAX_PAGE_SIZE),
    page=st.integers(0, MAX_PAGE),
    target=st.integers(0, MAX_PAGE),
)
def test_page_uris_round_trip(
    dates: list[tuple[str, object]], call: str | None, size: int, page: int, target: int
) -> None:
    parts = [f"{spelling}{day}" for spelling, day in dates]
    if call:
        parts.insert(len(parts) // 2, f"CallSid={call}")
    parts += [f"num={size}", f"page={page}"]
    query = parse("&".join(parts))
    uri = page_uri(BASE, query, target)
    path, _, raw = uri.partition("?")
    assert path == BASE
    again = parse(raw)
    assert again.filters == query.filters
    assert again.echoed == query.echoed
    assert (again.page, again.page_size) == (target, size)
    assert page_uri(BASE, again, target) == uri


def test_the_last_day_of_the_calendar_has_no_end() -> None:
    from datetime import date

    from service.http.query import day_span

    assert day_span(date(9999, 12, 31)) == (datetime(9999, 12, 31, tzinfo=UTC), None)
    assert day_span(date(2024, 2, 28))[1] == datetime(2024, 2, 29, tzinfo=UTC)


@given(
    st.lists(
        st.tuples(st.sampled_from(["=", ">=", "<="]), st.integers(0, 400)), min_size=1, max_size=6
    )
)
def test_filters_narrow_to_the_days_every_one_of_them_allows(
    filters: list[tuple[str, int]],
) -> None:
    from datetime import date, timedelta

    from service.http.query import day_span, narrow

    first = date(2024, 1, 1)
    low = high = None
    for op, offset in filters:
        low, high = narrow(low, high, op, *day_span(first + timedelta(days=offset)))
    for offset in range(-2, 403):
        moment = day_span(first + timedelta(days=offset))[0]
        allowed = all(
            (op != "=" or o == offset)
            and (op != ">=" or offset >= o)
            and (op != "<=" or offset <= o)
            for op, o in filters
        )
        inside = (low is None or moment >= low) and (high is None or moment < high)
        assert inside == allowed, (filters, offset)
