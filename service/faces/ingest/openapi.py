"""The ingest route's OpenAPI answers and parameters."""

from __future__ import annotations

from typing import Any

from service import errors as e
from service.faces.v2008.openapi import RECORDING_JSON, rest_errors
from service.http.openapi import BINARY, Responses, query_parameter

INGEST_POST: Responses = {
    201: {
        "description": "Stored: the recording's representation",
        "content": {
            "application/json": {"schema": RECORDING_JSON},
            "application/xml": {"schema": {"type": "string"}},
        },
    },
    **rest_errors(
        (e.PayloadTooLarge, "The upload exceeds RECORDINGS_MAX_UPLOAD_BYTES"),
        (e.UnsupportedMediaType, "The body is a form, not the audio itself"),
        (e.UnprocessableAudio, "The body is not decodable audio"),
        (e.InsufficientStorage, "The server's temporary disk is full"),
    ),
}

INGEST_PARAMETERS: dict[str, Any] = {
    "parameters": [
        query_parameter("CallSid", "The call's SID (required)", {"type": "string"}),
        query_parameter("DateCreated", "ISO-8601 or RFC 2822; default now", {"type": "string"}),
        query_parameter(
            "Source",
            "How it was recorded (2010 API values); default RecordVerb",
            {"type": "string"},
        ),
        query_parameter(
            "StartTime", "When recording began: ISO-8601 or RFC 2822", {"type": "string"}
        ),
        query_parameter("ConferenceSid", "The conference's SID (CF...)", {"type": "string"}),
        query_parameter(
            "RecordingStatusCallback",
            "URL called once the recording is stored (default: the account's)",
            {"type": "string"},
        ),
        query_parameter(
            "RecordingStatusCallbackMethod",
            "POST (default) or GET",
            {"type": "string", "enum": ["POST", "GET"]},
        ),
    ],
    "requestBody": {"required": True, "content": {"application/octet-stream": {"schema": BINARY}}},
}
