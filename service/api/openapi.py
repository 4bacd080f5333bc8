"""What the OpenAPI schema says about responses FastAPI cannot see: XML, CSV, audio, errors."""

from __future__ import annotations

from typing import Any

_REST_EXCEPTION_XML = {"type": "string", "description": "<TwilioResponse><RestException>..."}
_REST_EXCEPTION_JSON = {
    "type": "object",
    "required": ["status", "message"],
    "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
}
_RECORDING_JSON = {
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
        "recordings": {"type": "array", "items": _RECORDING_JSON},
    },
}
_BINARY = {"type": "string", "format": "binary"}


def _error(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {
            "application/xml": {"schema": _REST_EXCEPTION_XML},
            "application/json": {"schema": _REST_EXCEPTION_JSON},
        },
    }
    if headers:
        answer["headers"] = {
            name: {"schema": {"type": "string"}, "description": text}
            for name, text in headers.items()
        }
    return answer


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Malformed filter, SID, page or upload parameter"),
    401: _error("Missing or wrong credentials", **{"WWW-Authenticate": "Basic challenge"}),
    403: _error("Valid credentials of another account"),
    404: _error("No such recording, page or representation"),
    405: _error("Method not allowed", Allow="The methods the resource supports"),
    503: _error("PostgreSQL, storage or the transcoder is unavailable", **{"Retry-After": "s"}),
}

INSTANCE_GET: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The recording: WAV (no suffix or .wav), MP3, XML or JSON",
        "content": {
            "audio/x-wav": {"schema": _BINARY},
            "audio/mpeg": {"schema": _BINARY},
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": _RECORDING_JSON},
        },
    },
    206: {
        "description": "One byte range of the audio",
        "content": {"audio/x-wav": {"schema": _BINARY}, "audio/mpeg": {"schema": _BINARY}},
    },
    304: {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    307: {"description": "Redirect to a presigned storage URL (redirect delivery mode)"},
    412: _error("If-Match or If-Unmodified-Since failed"),
    416: _error("Range not satisfiable", **{"Content-Range": "bytes */N"}),
    422: _error("The audio cannot be transcoded to MP3"),
    **_ERRORS,
}

INSTANCE_DELETE: dict[int | str, dict[str, Any]] = {
    204: {"description": "Deleted"},
    **_ERRORS,
}

LIST_GET: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page of recordings, newest first",
        "content": {
            "application/xml": {"schema": {"type": "string"}},
            "application/json": {"schema": _LIST_JSON},
            "text/csv": {"schema": {"type": "string"}},
        },
    },
    **_ERRORS,
}

INGEST_POST: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Stored: the recording's representation",
        "content": {
            "application/json": {"schema": _RECORDING_JSON},
            "application/xml": {"schema": {"type": "string"}},
        },
    },
    413: _error("The upload exceeds RECORDINGS_MAX_UPLOAD_BYTES"),
    422: _error("The body is not decodable audio"),
    **_ERRORS,
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


LIST_PARAMETERS = {
    "parameters": [
        _query("CallSid", "Only this call's recordings", {"type": "string"}),
        _query("DateCreated", "That UTC day, YYYY-MM-DD", {"type": "string"}),
        _query(
            "DateCreated>", "From that day on (the raw form of DateCreated>=)", {"type": "string"}
        ),
        _query(
            "DateCreated<", "Up to that day (the raw form of DateCreated<=)", {"type": "string"}
        ),
        _query("page", "Zero-based page number (or Page)", {"type": "integer"}),
        _query("num", "Page size, 1-1000 (or PageSize)", {"type": "integer"}),
    ]
}

INGEST_PARAMETERS = {
    "parameters": [
        _query("CallSid", "The call's SID (required)", {"type": "string"}),
        _query("DateCreated", "ISO-8601 or RFC 2822; default now", {"type": "string"}),
    ],
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": _BINARY}}},
}
