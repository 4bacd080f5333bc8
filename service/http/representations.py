"""What every face's bodies share: content types, the RFC 2822 date, XML-safe text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from xml.sax.saxutils import escape, quoteattr

XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

# ElementTree and saxutils escape <>& but pass control characters, which XML 1.0 forbids.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(moment: datetime) -> str:
    """``Tue, 01 Apr 2008 05:07:15 +0000``: Twilio's date format, always in UTC.

    What ``email.utils.format_datetime`` gives, at a third of its cost: every representation
    carries two of these, a page a hundred.
    """
    t = moment.astimezone(UTC)
    return (
        f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d}"
        f" {t.hour:02d}:{t.minute:02d}:{t.second:02d} +0000"
    )


def xml_text(value: object) -> str:
    """Text safe inside an XML element."""
    return escape(_XML_FORBIDDEN.sub("", str(value)))


def xml_attr(value: object) -> str:
    """A quoted value safe as an XML attribute."""
    return quoteattr(_XML_FORBIDDEN.sub("", str(value)))


def rest_exception_xml(status: int, message: str) -> bytes:
    """``<TwilioResponse><RestException>``: the error body of the XML representations."""
    return (
        "<TwilioResponse><RestException>"
        f"<Status>{status}</Status><Message>{xml_text(message)}</Message>"
        "</RestException></TwilioResponse>"
    ).encode()
