"""The XML, JSON and CSV bodies of recordings, lists and errors."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from db.recordings import Recording
from service.http.representations import rfc2822, xml_attr, xml_text
from service.recordings.paging import NumberedPage

API_PREFIX = "/2008-08-01"
CSV_HEADER = ("Sid", "AccountSid", "CallSid", "Duration", "DateCreated", "DateUpdated")


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
class PageUris:
    """The relative URIs of a list page and of its neighbours (None where there is none)."""

    uri: str
    first: str
    previous: str | None
    next: str | None
    last: str | None


def list_xml(page: NumberedPage, uris: PageUris) -> bytes:
    """``<TwilioResponse><Recordings page=.. ...>`` of one page."""
    window = page.window
    attrs = {
        "page": window.page,
        "numpages": window.num_pages,
        "pagesize": window.page_size,
        "total": window.total,
        "start": page.start,
        "end": page.end,
        "uri": uris.uri,
        "firstpageuri": uris.first,
        "previouspageuri": uris.previous or "",
        "nextpageuri": uris.next or "",
        "lastpageuri": uris.last or "",
    }
    head = " ".join(f"{name}={xml_attr(value)}" for name, value in attrs.items())
    items = "".join(_recording_xml(r) for r in page.recordings)
    return f"<TwilioResponse><Recordings {head}>{items}</Recordings></TwilioResponse>".encode()


def list_json(page: NumberedPage, uris: PageUris) -> bytes:
    """The later API's JSON list: paging facts, page URIs and ``recordings``."""
    window = page.window
    return json.dumps(
        {
            "page": window.page,
            "num_pages": window.num_pages,
            "page_size": window.page_size,
            "total": window.total,
            "start": page.start,
            "end": page.end,
            "uri": uris.uri,
            "first_page_uri": uris.first,
            "previous_page_uri": uris.previous,
            "next_page_uri": uris.next,
            "last_page_uri": uris.last,
            "recordings": [_recording_dict(r) for r in page.recordings],
        }
    ).encode()


def list_csv(page: NumberedPage) -> bytes:
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
