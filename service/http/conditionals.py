"""Conditional requests on media: ETag and Last-Modified validators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from enum import Enum


class Outcome(Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not_modified"
    PRECONDITION_FAILED = "precondition_failed"


@dataclass(frozen=True)
class Validators:
    etag: str  # quoted, strong
    last_modified: datetime

    @property
    def last_modified_header(self) -> str:
        return format_datetime(self.last_modified.astimezone(UTC), usegmt=True)

    @property
    def last_modified_seconds(self) -> datetime:
        return self.last_modified.astimezone(UTC).replace(microsecond=0)


def _parse_date(value: str) -> datetime | None:
    # A date a client makes up (year 99999999999999999999, say) is no date: the header is
    # ignored, as RFC 9110 says of an invalid one.
    try:
        parsed = parsedate_to_datetime(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed


def _etags(value: str) -> list[str]:
    return [tag.strip() for tag in value.split(",") if tag.strip()]


def _strong_match(tags: list[str], etag: str) -> bool:
    return any(tag == etag for tag in tags if not tag.startswith("W/"))


def _weak_match(tags: list[str], etag: str) -> bool:
    return any(tag.removeprefix("W/") == etag for tag in tags)


def evaluate(headers: dict[str, str], validators: Validators) -> Outcome:
    """RFC 9110 section 13.2.2's order of If-Match, If-Unmodified-Since, If-None-Match, IMS."""
    etag = validators.etag
    modified = validators.last_modified_seconds
    if_match = headers.get("if-match")
    if if_match is not None:
        if if_match.strip() != "*" and not _strong_match(_etags(if_match), etag):
            return Outcome.PRECONDITION_FAILED
    else:
        since = headers.get("if-unmodified-since")
        date = _parse_date(since) if since else None
        if date is not None and modified > date:
            return Outcome.PRECONDITION_FAILED
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*" or _weak_match(_etags(if_none_match), etag):
            return Outcome.NOT_MODIFIED
        return Outcome.PROCEED
    since = headers.get("if-modified-since")
    date = _parse_date(since) if since else None
    if date is not None and modified <= date:
        return Outcome.NOT_MODIFIED
    return Outcome.PROCEED


def if_range_allows(value: str | None, validators: Validators) -> bool:
    """Whether a Range may be honoured under this If-Range (absent: yes)."""
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == validators.etag
    date = _parse_date(value)
    return date is not None and date == validators.last_modified_seconds
