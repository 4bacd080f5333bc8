"""The 2010 face's OpenAPI answers and parameters, and its own document.

The face publishes its own document (GET /2010-04-01/openapi.json), as twilio-oai keeps one file
per API version; the service's /openapi.json stays the 2008 API's.
"""

from __future__ import annotations

from typing import Any

from service import errors as e
from service.http.openapi import BINARY, Responses, error_responses, query_parameter

_SID = {"type": "string", "minLength": 34, "maxLength": 34}
_NULLABLE_STRING = {"type": ["string", "null"]}
_DATE = {"type": "string", "description": "RFC 2822, +0000"}
_FIELDS: dict[str, Any] = {
    "account_sid": {**_SID, "pattern": "^AC[0-9a-f]{32}$"},
    "api_version": {"type": "string", "enum": ["2010-04-01"]},
    "call_sid": {**_SID, "pattern": "^CA[0-9a-f]{32}$"},
    "conference_sid": {"type": ["string", "null"], "pattern": "^CF[0-9a-f]{32}$"},
    "date_created": _DATE,
    "date_updated": _DATE,
    "start_time": {"type": ["string", "null"], "description": "RFC 2822, +0000"},
    "duration": {"type": "string", "pattern": "^[0-9]+$"},
    "sid": {**_SID, "pattern": "^RE[0-9a-f]{32}$"},
    "price": _NULLABLE_STRING,
    "price_unit": _NULLABLE_STRING,
    "status": {"type": "string", "enum": ["completed", "deleted"]},
    "channels": {"type": "integer", "minimum": 1},
    "source": {
        "type": "string",
        "enum": [
            "DialVerb",
            "Conference",
            "OutboundAPI",
            "Trunking",
            "RecordVerb",
            "StartCallRecordingAPI",
            "StartConferenceRecordingAPI",
        ],
    },
    "error_code": {"type": ["integer", "null"]},
    "uri": {"type": "string"},
    "encryption_details": {"type": ["object", "null"]},
}
RECORDING: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_FIELDS, "subresource_uris", "media_url"],
    "properties": {
        **_FIELDS,
        "subresource_uris": {
            "type": "object",
            "required": ["add_on_results", "transcriptions"],
            "properties": {
                "add_on_results": {"type": "string"},
                "transcriptions": {"type": "string"},
            },
        },
        "media_url": {"type": "string", "format": "uri"},
    },
}
CALL_RECORDING: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_FIELDS, "track"],
    "properties": {**_FIELDS, "track": {"type": "string"}},
}

CONFERENCE_RECORDING: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [*_FIELDS],
    "properties": {**_FIELDS, "conference_sid": {**_SID, "pattern": "^CF[0-9a-f]{32}$"}},
}


def list_schema(key: str, items: dict[str, Any]) -> dict[str, Any]:
    """A list page: exactly the envelope's keys (an extra one breaks the SDKs)."""
    envelope = ["end", "first_page_uri", "next_page_uri", "page", "page_size"]
    envelope += ["previous_page_uri", "start", "uri"]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [key, *envelope],
        "properties": {
            key: {"type": "array", "items": items},
            "end": {"type": "integer", "minimum": 0},
            "first_page_uri": {"type": "string"},
            "next_page_uri": _NULLABLE_STRING,
            "page": {"type": "integer", "minimum": 0},
            "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
            "previous_page_uri": _NULLABLE_STRING,
            "start": {"type": "integer", "minimum": 0},
            "uri": {"type": "string"},
        },
    }


ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message", "more_info", "status"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "more_info": {"type": "string"},
                "status": {"type": "integer"},
            },
        }
    }
}


def errors(*more: tuple[type[e.ServiceError], str]) -> Responses:
    """Error answers as Twilio's JSON errors, plus the ones any request may get."""
    return error_responses(
        ERROR,
        (e.BadRequest, "Malformed filter, PageSize, Page, PageToken or IncludeSoftDeleted"),
        (e.Unauthorized, "Missing or wrong credentials"),
        (e.Forbidden, "Valid credentials of another account"),
        (e.NotFound, "No such recording (of this account, of this call)"),
        (e.MethodNotAllowed, "Method not allowed"),
        (e.ServiceUnavailable, "PostgreSQL, storage or the transcoder is unavailable"),
        *more,
    )


def _json(description: str, schema: dict[str, Any]) -> Responses:
    return {200: {"description": description, "content": {"application/json": {"schema": schema}}}}


FETCH: Responses = {**_json("The recording", RECORDING), **errors()}
CALL_FETCH: Responses = {**_json("The call's recording", CALL_RECORDING), **errors()}
LIST: Responses = {
    **_json("One page of recordings, newest first", list_schema("recordings", RECORDING)),
    **errors(),
}
CALL_LIST: Responses = {
    **_json("One page of the call's recordings", list_schema("recordings", CALL_RECORDING)),
    **errors(),
}
CONFERENCE_FETCH: Responses = {
    **_json("The conference's recording", CONFERENCE_RECORDING),
    **errors(),
}
CONFERENCE_LIST: Responses = {
    **_json(
        "One page of the conference's recordings",
        list_schema("recordings", CONFERENCE_RECORDING),
    ),
    **errors(),
}
DELETE: Responses = {204: {"description": "Deleted (its metadata stays, soft-deleted)"}, **errors()}
_AUDIO = {
    "audio/x-wav": {"schema": BINARY},
    "audio/mpeg": {"schema": BINARY},
    # An encrypted recording's media: its ciphertext (encryption_details decrypts it).
    "application/octet-stream": {"schema": BINARY},
}
MEDIA: Responses = {
    200: {
        "description": "The audio: WAV (no extension or .wav) or MP3; an encrypted recording's"
        " ciphertext",
        "content": _AUDIO,
    },
    206: {"description": "One byte range of the audio", "content": _AUDIO},
    304: {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    307: {"description": "Redirect to a presigned storage URL (redirect delivery mode)"},
    **errors(
        (e.PreconditionFailed, "If-Match or If-Unmodified-Since failed"),
        (e.RangeNotSatisfiable, "Range not satisfiable"),
        (e.UnprocessableAudio, "The audio cannot be transcoded to MP3"),
        (e.TooManyRequests, "This address has its share of media streams open"),
        (e.BadGateway, "The recording's audio is missing from storage"),
        (e.RecordingEncrypted, "The .mp3 of an encrypted recording"),
    ),
}


def empty_list(key: str) -> Responses:
    return {**_json(f"No {key} (this service makes none)", list_schema(key, {})), **errors()}


_STRING = {"type": "string"}
_PAGING = [
    query_parameter("PageSize", "1-1000, default 50", {"type": "integer"}),
    query_parameter("Page", "The page number: client state, echoed", {"type": "integer"}),
    query_parameter("PageToken", "From next_page_uri or previous_page_uri", _STRING),
]
_DATES = [
    query_parameter("DateCreated", "YYYY-MM-DD (that UTC day) or an ISO-8601 instant", _STRING),
    query_parameter("DateCreated<", "On or before (DateCreated<=): a day or an instant", _STRING),
    query_parameter("DateCreated>", "On or after (DateCreated>=): a day or an instant", _STRING),
]
_SOFT_DELETED = query_parameter(
    "IncludeSoftDeleted", "true: deleted recordings' metadata too", {"type": "boolean"}
)
LIST_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter("CallSid", "Only this call's recordings", _STRING),
        query_parameter("ConferenceSid", "Only this conference's recordings", _STRING),
        *_DATES,
        _SOFT_DELETED,
        *_PAGING,
    ]
}
CALL_LIST_PARAMETERS: dict[str, Any] = {"parameters": [*_DATES, _SOFT_DELETED, *_PAGING]}
CONFERENCE_LIST_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter("CallSid", "Only this call's recordings", _STRING),
        *_DATES,
        _SOFT_DELETED,
        *_PAGING,
    ]
}
FETCH_PARAMETERS: dict[str, Any] = {"parameters": [_SOFT_DELETED]}
MEDIA_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter(
            "RequestedChannels",
            "1: a mono mix; 2: both channels (a 400, code 16113, of a mono recording)."
            " Default: a Conference recording's mono mix, any other as stored",
            {"type": "integer", "enum": [1, 2]},
        )
    ]
}
