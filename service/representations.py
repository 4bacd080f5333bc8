"""The XML, JSON and CSV bodies of recordings, lists and errors."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from db.recordings import Recording

API_PREFIX = "/2008-08-01"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv; charset=utf-8"

# ElementTree and saxutils escape <>& but pass control characters, which XML 1.0 forbids.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
CSV_HEADER = ("Sid", "AccountSid", "CallSid", "Duration", "DateCreated", "DateUpdated")


def rfc2822(moment: datetime) -> str:
    """``Tue, 01 Apr 2008 05:07:15 +0000``: the old API's date format, always in UTC."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def xml_text(value: object) -> str:
    """Text safe inside an XML element."""
    return escape(_XML_FORBIDDEN.sub("", str(value)))


def xml_attr(value: object) -> str:
    """A quoted value safe as an XML attribute."""
    return quoteattr(_XML_FORBIDDEN.sub("", str(value)))


def recording_uri(recording: Recording, suffix: str = "") -> str:
    return f"{API_PREFIX}/Accounts/{recording.account_sid}/Recordings/{recording.sid}{suffix}"


def _recording_xml(recording: Recording) -> str:
    return (
        "<Recording>"
        f"<Sid>{xml_text(recording.sid)}</Sid>"
        f"<AccountSid>{xml_text(recording.account_sid)}</AccountSid>"
        f"<CallSid>{xml_text(recording.call_sid)}</CallSid>"
        f"<Duration>{recording.duration}</Duration>"
        f"<DateCreated>{rfc2822(recording.date_created)}</DateCreated>"
        f"<DateUpdated>{rfc2822(recording.date_updated)}</DateUpdated>"
        "</Recording>"
    )


def _recording_dict(recording: Recording) -> dict[str, object]:
    # The later API's JSON gives the duration as a string; clients of it expect that.
    return {
        "sid": recording.sid,
        "account_sid": recording.account_sid,
        "call_sid": recording.call_sid,
        "duration": str(recording.duration),
        "date_created": rfc2822(recording.date_created),
        "date_updated": rfc2822(recording.date_updated),
        "api_version": "2008-08-01",
        "uri": recording_uri(recording, ".json"),
    }


def recording_xml(recording: Recording) -> bytes:
    """``<TwilioResponse><Recording>`` of one recording."""
    return f"<TwilioResponse>{_recording_xml(recording)}</TwilioResponse>".encode()


def recording_json(recording: Recording) -> bytes:
    """The later API's flat JSON object of one recording."""
    return json.dumps(_recording_dict(recording)).encode()


@dataclass(frozen=True)
class Page:
    """One page of a list, with the paging facts the list element carries."""

    recordings: list[Recording]
    page: int
    page_size: int
    total: int
    uri: str
    first_page_uri: str
    previous_page_uri: str | None
    next_page_uri: str | None
    last_page_uri: str | None

    @property
    def num_pages(self) -> int:
        return -(-self.total // self.page_size)

    @property
    def start(self) -> int:
        return self.page * self.page_size if self.total else 0

    @property
    def end(self) -> int:
        return self.start + len(self.recordings) - 1 if self.recordings else 0


def list_xml(page: Page) -> bytes:
    """``<TwilioResponse><Recordings page=.. ...>`` of one page."""
    attrs = {
        "page": page.page,
        "numpages": page.num_pages,
        "pagesize": page.page_size,
        "total": page.total,
        "start": page.start,
        "end": page.end,
        "uri": page.uri,
        "firstpageuri": page.first_page_uri,
        "previouspageuri": page.previous_page_uri or "",
        "nextpageuri": page.next_page_uri or "",
        "lastpageuri": page.last_page_uri or "",
    }
    head = " ".join(f"{name}={xml_attr(value)}" for name, value in attrs.items())
    items = "".join(_recording_xml(r) for r in page.recordings)
    return f"<TwilioResponse><Recordings {head}>{items}</Recordings></TwilioResponse>".encode()


def list_json(page: Page) -> bytes:
    """The later API's JSON list: paging facts, page URIs and ``recordings``."""
    return json.dumps(
        {
            "page": page.page,
            "num_pages": page.num_pages,
            "page_size": page.page_size,
            "total": page.total,
            "start": page.start,
            "end": page.end,
            "uri": page.uri,
            "first_page_uri": page.first_page_uri,
            "previous_page_uri": page.previous_page_uri,
            "next_page_uri": page.next_page_uri,
            "last_page_uri": page.last_page_uri,
            "recordings": [_recording_dict(r) for r in page.recordings],
        }
    ).encode()


def list_csv(page: Page) -> bytes:
    """A header row and one line per recording of the page."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for r in page.recordings:
        writer.writerow(
            (
                r.sid,
                r.account_sid,
                r.call_sid,
                r.duration,
                rfc2822(r.date_created),
                rfc2822(r.date_updated),
            )
        )
    return out.getvalue().encode()


def error_xml(status: int, message: str) -> bytes:
    return (
        "<TwilioResponse><RestException>"
        f"<Status>{status}</Status><Message>{xml_text(message)}</Message>"
        "</RestException></TwilioResponse>"
    ).encode()


def error_json(status: int, message: str) -> bytes:
    return json.dumps({"status": status, "message": message}).encode()
