"""The Range parser: every form, and properties over all of them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.http.ranges import UNSATISFIABLE, ByteRange, parse_range


def test_forms() -> None:
    assert parse_range("bytes=0-99", 1000) == ByteRange(0, 99, 1000)
    assert parse_range("bytes=-100", 1000) == ByteRange(900, 999, 1000)
    assert parse_range("bytes=500-", 1000) == ByteRange(500, 999, 1000)
    assert parse_range("bytes=990-5000", 1000) == ByteRange(990, 999, 1000)
    assert parse_range("bytes=-5000", 1000) == ByteRange(0, 999, 1000)
    assert parse_range("BYTES = 1-2", 1000) == ByteRange(1, 2, 1000)


def test_unsatisfiable() -> None:
    assert parse_range("bytes=1000-", 1000) is UNSATISFIABLE
    assert parse_range("bytes=1000-1001", 1000) is UNSATISFIABLE
    assert parse_range("bytes=-0", 1000) is UNSATISFIABLE
    assert parse_range("bytes=0-", 0) is UNSATISFIABLE


def test_ignored() -> None:
    for header in [
        None,
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=5-1",
        "items=0-1",
        "bytes=a-b",
        "bytes=0-1,5-9",
        "bytes=0-1, -5",
        "bytes=1-2-3",
        "bytes=" + "9" * 30 + "-",
        "bytes=0-1," * 1000,
    ]:
        assert parse_range(header, 1000) is None, header


@given(size=st.integers(0, 10**12), first=st.integers(0, 10**13), last=st.integers(0, 10**13))
def test_closed_ranges_stay_inside(size: int, first: int, last: int) -> None:
    result = parse_range(f"bytes={first}-{last}", size)
    if last < first:
        assert result is None
    elif first >= size:
        assert result is UNSATISFIABLE
    else:
        assert isinstance(result, ByteRange)
        assert result.first == first
        assert result.last == min(last, size - 1)
        assert 1 <= result.length <= size
        assert result.content_range == f"bytes {first}-{result.last}/{size}"


@given(size=st.integers(0, 10**12), suffix=st.integers(0, 10**13))
def test_suffix_ranges_end_at_the_end(size: int, suffix: int) -> None:
    result = parse_range(f"bytes=-{suffix}", size)
    if suffix == 0 or size == 0:
        assert result is UNSATISFIABLE
    else:
        assert isinstance(result, ByteRange)
        assert result.last == size - 1
        assert result.length == min(suffix, size)


@given(st.text(max_size=60), st.integers(0, 10**9))
def test_never_raises_and_never_exceeds(header: str, size: int) -> None:
    result = parse_range(header, size)
    if isinstance(result, ByteRange):
        assert 0 <= result.first <= result.last < size
