"""The one parser of timestamps a client gives: ISO-8601 or RFC 2822, kept within 1970-9999."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class InvalidTimestamp(ValueError):
    """Not a timestamp this service accepts; the message says why and may be shown."""


def parse_timestamp(value: str) -> datetime:
    """An aware UTC datetime; one given without a zone is taken as UTC."""
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError) as exc:
            raise InvalidTimestamp(f"not an ISO-8601 or RFC 2822 timestamp: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidTimestamp(f"timestamp out of range: {value!r}") from exc
    if not EARLIEST <= moment <= LATEST:
        raise InvalidTimestamp(f"timestamp outside 1970-9999: {value!r}")
    return moment
