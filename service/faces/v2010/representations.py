"""The 2010 JSON bodies: a recording, a call's or a conference's recording, and list pages."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from db.recordings import Recording
from service.http.representations import rfc2822
from service.recordings.paging import TokenPage

API_VERSION = "2010-04-01"
API_PREFIX = "/" + API_VERSION
# A whole-call recording holds what both legs heard and said.
CALL_TRACK = "both"


def account_path(account_sid: str) -> str:
    return f"{API_PREFIX}/Accounts/{account_sid}"


def recording_path(recording: Recording) -> str:
    """The recording's host-less path without an extension: its media, and its JSON + .json."""
    return f"{account_path(recording.account_sid)}/Recordings/{recording.sid}"


def _fields(recording: Recording, uri: str) -> dict[str, Any]:
    # Every field of twilio-oai's schema, null where this service has nothing to say (the price
    # of a recording not imported from Twilio, encryption, errors of recordings that never
    # were). Dates are RFC 2822 in +0000: the SDKs drop any other offset and label the time UTC.
    return {
        "account_sid": recording.account_sid,
        "api_version": API_VERSION,
        "call_sid": recording.call_sid,
        "conference_sid": recording.conference_sid,
        "date_created": rfc2822(recording.date_created),
        "date_updated": rfc2822(recording.date_updated),
        "start_time": rfc2822(recording.start_time or recording.date_created),
        "duration": str(recording.duration),
        "sid": recording.sid,
        "price": recording.price,
        "price_unit": recording.price_unit,
        "status": "deleted" if recording.deleted_at is not None else "completed",
        "channels": recording.channels,
        "source": recording.source,
        "error_code": None,
        "uri": uri,
        # Twilio's object for an encrypted recording (what decrypts its media), else null.
        "encryption_details": recording.encryption_details,
    }


def recording_dict(recording: Recording, *, media_base: str) -> dict[str, Any]:
    """``api.v2010.account.recording``; ``media_base`` is the scheme and host clients use."""
    path = recording_path(recording)
    return {
        **_fields(recording, path + ".json"),
        "subresource_uris": {
            "add_on_results": path + "/AddOnResults.json",
            "transcriptions": path + "/Transcriptions.json",
        },
        "media_url": media_base + path,
    }


def call_recording_dict(recording: Recording) -> dict[str, Any]:
    """``api.v2010.account.call.call_recording``: no media_url or subresources, a track."""
    uri = (
        f"{account_path(recording.account_sid)}/Calls/{recording.call_sid}"
        f"/Recordings/{recording.sid}.json"
    )
    return {**_fields(recording, uri), "track": CALL_TRACK}


def conference_recording_dict(recording: Recording) -> dict[str, Any]:
    """``api.v2010.account.conference.conference_recording``: the common fields alone."""
    uri = (
        f"{account_path(recording.account_sid)}/Conferences/{recording.conference_sid}"
        f"/Recordings/{recording.sid}.json"
    )
    return _fields(recording, uri)


@dataclass(frozen=True)
class ListUris:
    uri: str
    first: str
    next: str | None
    previous: str | None


def list_json(key: str, items: list[dict[str, Any]], page: TokenPage, uris: ListUris) -> bytes:
    """A list page with exactly the envelope's keys: twilio-python and twilio-node take the one
    key they do not know as the records, and refuse a page with two."""
    return json.dumps(
        {
            key: items,
            "end": page.end,
            "first_page_uri": uris.first,
            "next_page_uri": uris.next,
            "page": page.page,
            "page_size": page.page_size,
            "previous_page_uri": uris.previous,
            "start": page.start,
            "uri": uris.uri,
        }
    ).encode()
