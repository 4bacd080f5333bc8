"""What the OpenAPI schema says about 2008 answers FastAPI cannot see: XML, CSV, audio, errors."""

from __future__ import annotations

from typing import Any

from service import errors as e
from service.http.openapi import (
    BINARY,
    REST_EXCEPTION,
    Responses,
    error_responses,
    query_parameter,
)

RECORDING_JSON = {
    "type": "object",
    "required": [
        "sid",
        "account_sid",
        "call_sid",
        "duration",
        "date_created",
        "date_updated",
        "uri",
    ],
    "properties": {
        "sid": {"type": "string", "pattern": "^RE[0-9a-f]{32}$"},
        "account_sid": {"type": "string", "pattern": "^AC[0-9a-f]{32}$"},
        "call_sid": {"type": "string", "pattern": "^CA[0-9a-f]{32}$"},
        "duration": {"type": "string", "pattern": "^[0-9]+$"},
        "date_created": {"type": "string"},
        "date_updated": {"type": "string"},
        "api_version": {"type": "string"},
        "uri": {"type": "string"},
    },
}
_PAGE_URI = {"type": ["string", "null"]}
_LIST_JSON = {
    "type": "object",
    "required": ["page", "num_pages", "page_size", "total", "start", "end", "recordings"],
    "properties": {
        "page": {"type": "integer", "minimum": 0},
        "num_pages": {"type": "integer", "minimum": 0},
        "page_size": {"type": "integer", "minimum": 1, "maximum": 1000},
        "total": {"type": "integer", "minimum": 0},
        "start": {"type": "integer", "minimum": 0},
        "end": {"type": "integer", "minimum": 0},
        "uri": {"type": "string"},
        "first_page_uri": {"type": "string"},
        "previous_page_uri": _PAGE_URI,
        "next_page_uri": _PAGE_URI,
        "last_page_uri": _PAGE_URI,
        "recordings": {"type": "array", "items": RECORDING_JSON},
    },
}


def rest_errors(*errors: tuple[type[e.ServiceError], str]) -> Responses:
    """Error answers as RestExceptions, plus the ones any request may get."""
    return error_responses(
        REST_EXCEPTION,
        (e.BadRequest, "Malformed filter, SID, page or upload parameter"),
        (e.Unauthorized, "Missing or wrong credentials"),
        (e.Forbidden, "Valid credentials of another account"),
        (e.NotFound, "No such recording, page or representation"),
        (e.MethodNotAllowed, "Method not allowed"),
        (e.ServiceUnavailable, "PostgreSQL, storage or the transcoder is unavailable"),
        *errors,
    )


INSTANCE_GET: Responses = {
    200: {
        "description": "The recording: WAV (no suffix or .wav), MP3, XML or JSON",
        "content": {
            "audio/x-wav": {"schema": BINARY},
            "audio/mpeg": {"schema": BINARY},
            # An encrypted recording's media: its ciphertext.
            "application/octet-stream": {"schema": BINARY},
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": RECORDING_JSON},
        },
    },
    206: {
        "description": "One byte range of the audio",
        "content": {
            "audio/x-wav": {"schema": BINARY},
            "audio/mpeg": {"schema": BINARY},
            "application/octet-stream": {"schema": BINARY},
        },
    },
    304: {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    307: {"description": "Redirect to a presigned storage URL (redirect delivery mode)"},
    **rest_errors(
        (e.PreconditionFailed, "If-Match or If-Unmodified-Since failed"),
        (e.RangeNotSatisfiable, "Range not satisfiable"),
        (e.UnprocessableAudio, "The audio cannot be transcoded to MP3"),
        (e.TooManyRequests, "This address has its share of media streams open"),
        (e.BadGateway, "The recording's audio is missing from storage"),
    ),
}

INSTANCE_DELETE: Responses = {204: {"description": "Deleted"}, **rest_errors()}

LIST_GET: Responses = {
    200: {
        "description": "One page of recordings, newest first",
        "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": _LIST_JSON},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    **rest_errors(),
}

LIST_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter("CallSid", "Only this call's recordings", {"type": "string"}),
        query_parameter("DateCreated", "That UTC day, YYYY-MM-DD", {"type": "string"}),
        query_parameter(
            "DateCreated>", "From that day on (the raw form of DateCreated>=)", {"type": "string"}
        ),
        query_parameter(
            "DateCreated<", "Up to that day (the raw form of DateCreated<=)", {"type": "string"}
        ),
        query_parameter("page", "Zero-based page number (or Page)", {"type": "integer"}),
        query_parameter("num", "Page size, 1-1000 (or PageSize)", {"type": "integer"}),
    ]
}
