"""The one parser of client timestamps: ISO-8601 or RFC 2822, UTC when no zone is given, and
anything outside 1970-9999 (however absurd) an InvalidTimestamp, never an OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.timestamps import EARLIEST, LATEST, InvalidTimestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2008-04-01T05:07:15Z", datetime(2008, 4, 1, 5, 7, 15, tzinfo=UTC)),
        ("2020-02-29T23:59:59+01:00", datetime(2020, 2, 29, 22, 59, 59, tzinfo=UTC)),
        ("2011-05-04T03:02:01.250-07:30", datetime(2011, 5, 4, 10, 32, 1, 250_000, tzinfo=UTC)),
        ("2011-05-04T03:02:01", datetime(2011, 5, 4, 3, 2, 1, tzinfo=UTC)),  # no zone: UTC
        ("2011-05-04", datetime(2011, 5, 4, tzinfo=UTC)),
        ("  2011-05-04T03:02:01Z\n", datetime(2011, 5, 4, 3, 2, 1, tzinfo=UTC)),
        ("Tue, 01 Apr 2008 05:07:15 +0000", datetime(2008, 4, 1, 5, 7, 15, tzinfo=UTC)),
        ("Fri, 31 Dec 2010 23:59:59 -0500", datetime(2011, 1, 1, 4, 59, 59, tzinfo=UTC)),
        ("Tue, 01 Apr 2008 05:07:15 GMT", datetime(2008, 4, 1, 5, 7, 15, tzinfo=UTC)),
        ("Tue, 01 Apr 2008 05:07:15 -0000", datetime(2008, 4, 1, 5, 7, 15, tzinfo=UTC)),
        ("1970-01-01T00:00:00Z", EARLIEST),
        ("9999-12-31T23:59:59Z", LATEST),
        ("1970-01-01T01:00:00+01:00", EARLIEST),
    ],
)
def test_accepted(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "",
        "soon",
        "%00",
        "\x00",
        "2020-02-30T00:00:00Z",
        "2020-13-01",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:59:59+01:00",
        "0001-01-01T00:00:00Z",
        # Valid ISO-8601 whose instant is past datetime's range once in UTC.
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "Fri, 31 Dec 9999 23:59:59 -0500",
        "Mon, 01 Jan 1900 00:00:00 +0000",
        # Absurd years, in both syntaxes.
        "10000-01-01T00:00:00Z",
        "Mon, 01 Jan 10000 00:00:00 +0000",
        "Mon, 01 Jan 99999999999999999999 00:00:00 +0000",
        "Mon, 01 Jan 2008 99:00:00 +0000",
        "Mon, 01 Jan 2008 00:00:00 +9999",
    ],
)
def test_rejected(text: str) -> None:
    with pytest.raises(InvalidTimestamp) as raised:
        parse_timestamp(text)
    assert repr(text) in str(raised.value)


rfc2822_like = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Xyz"]),
    st.integers(0, 99),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    st.integers(-(10**25), 10**25),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["+0000", "-0500", "+9999", "-9999", "GMT", "", "+14", "EST"]),
)
iso_like = st.builds(
    "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
    st.integers(0, 99999),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.integers(0, 60),
    st.sampled_from(["Z", "+23:59", "-23:59", "+00:00", "", "+24:00"]),
)


@given(st.one_of(st.text(max_size=40), rfc2822_like, iso_like))
def test_never_anything_but_a_utc_moment_in_range_or_invalid_timestamp(text: str) -> None:
    try:
        parsed = parse_timestamp(text)
    except InvalidTimestamp:
        return
    assert parsed.tzinfo is UTC
    assert EARLIEST <= parsed <= LATEST
