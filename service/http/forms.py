"""Form bodies (``application/x-www-form-urlencoded``), as the Twilio libraries send a create or
an update: read whole under a small limit, decoded as the query string is."""

from __future__ import annotations

from starlette.requests import Request

from service.errors import PayloadTooLarge, UnsupportedMediaType
from service.http.query import parse_query_string

# A create or an update of a credential carries a few short parameters.
MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form's parameters (the last of a repeated name wins); an empty body is no
    parameters, another content type a 415, a body over MAX_FORM_BYTES a 413."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"A form body is at most {MAX_FORM_BYTES} bytes")
    if not body:
        return {}
    if kind not in ("", FORM_TYPE):
        raise UnsupportedMediaType(f"Send the parameters as {FORM_TYPE}")
    return dict(parse_query_string(bytes(body)))
