"""Errors as Twilio's 2010 API gives them: ``{"code", "message", "more_info", "status"}``."""

from __future__ import annotations

import json

from fastapi import Request, Response

from service.errors import ServiceError
from service.http.representations import JSON_TYPE

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"


def error_body(error: ServiceError) -> dict[str, object]:
    """The JSON object of an error.

    No ``type`` or ``title``: twilio-python takes a body with both (beside ``status`` and
    ``code``) for an RFC 9457 problem and raises another exception class than its users catch.
    """
    return {
        "code": error.code,
        "message": error.message,
        "more_info": MORE_INFO.format(code=error.code),
        "status": error.status,
    }


def render_error(error: ServiceError, request: Request) -> Response:
    """Every error under /2010-04-01/, media paths included, as Twilio's JSON error."""
    body = json.dumps(error_body(error)).encode()
    return Response(body, error.status, headers=error.headers, media_type=JSON_TYPE)
