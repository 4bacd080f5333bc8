"""What the OpenAPI schema says about Peaks.json, the one route of this face in the API's
document (the pages themselves are HTML for people, not an API)."""

from __future__ import annotations

from typing import Any

from service import errors as e
from service.http.openapi import REST_EXCEPTION, Responses, error_responses, query_parameter

# audiowaveform's JSON format (version 2), as service.peaks.waveform writes it.
WAVEFORM_JSON = {
    "type": "object",
    "required": [
        "version",
        "channels",
        "sample_rate",
        "samples_per_pixel",
        "bits",
        "length",
        "data",
    ],
    "properties": {
        "version": {"const": 2},
        "channels": {"type": "integer", "minimum": 1, "maximum": 2},
        "sample_rate": {"type": "integer", "minimum": 1},
        "samples_per_pixel": {"type": "integer", "minimum": 1},
        "bits": {"enum": [8, 16]},
        "length": {"type": "integer", "minimum": 0},
        "data": {"type": "array", "items": {"type": "integer"}},
    },
}

PEAKS_GET: Responses = {
    200: {
        "description": "The waveform: min/max pairs per pixel per channel (audiowaveform JSON)",
        "content": {"application/json": {"schema": WAVEFORM_JSON}},
    },
    304: {"description": "Not modified (If-None-Match, If-Modified-Since)"},
    **error_responses(
        REST_EXCEPTION,
        (e.BadRequest, "bits is neither 8 nor 16, or a malformed SID"),
        (e.Unauthorized, "The account requires credentials for its media"),
        (e.Forbidden, "Valid credentials of another account"),
        (e.NotFound, "No such recording"),
        (e.MethodNotAllowed, "Method not allowed"),
        (e.PreconditionFailed, "If-Match or If-Unmodified-Since failed"),
        (e.UnprocessableAudio, "The audio cannot be decoded"),
        (e.BadGateway, "The recording's audio is missing from storage"),
        (e.ServiceUnavailable, "PostgreSQL, storage or ffmpeg is unavailable, or too busy"),
    ),
}

PEAKS_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter("bits", "8 or 16 (the default)", {"type": "integer", "enum": [8, 16]}),
    ]
}
