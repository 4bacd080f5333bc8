"""CORS for media: any page may play public media; only an account's listed origins may read
its media with credentials (a cached Basic login must not open private media to every site)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Response

from db.accounts import fetch_cors_origins
from db.pool import Pool
from service.sids import is_account_sid

_EXPOSED = "Accept-Ranges, Content-Length, Content-Range, Content-Disposition, ETag, Last-Modified"
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": _EXPOSED}
MEDIA_ALLOW_HEADERS = "Authorization, Range, If-Range, If-None-Match, If-Modified-Since"


def cors_headers(origin: str | None, allowed: Sequence[str]) -> dict[str, str]:
    """What a media answer says to a page of ``origin`` under an account allowing ``allowed``."""
    if origin is not None and origin in allowed:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Access-Control-Expose-Headers": _EXPOSED,
            "Vary": "Origin",
        }
    if allowed:
        # The answer differs by origin for this account: shared caches must keep them apart.
        return {**CORS_HEADERS, "Vary": "Origin"}
    return CORS_HEADERS


async def preflight_response(pool: Pool, account_sid: str, origin: str | None) -> Response:
    """The answer to a media OPTIONS: a listed origin may send credentials, any may read."""
    allowed: list[str] = []
    if origin is not None and is_account_sid(account_sid):
        allowed = await fetch_cors_origins(pool, account_sid)
    return Response(
        status_code=204,
        headers={
            **cors_headers(origin, allowed),
            "Allow": "GET, HEAD, DELETE, OPTIONS",
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": MEDIA_ALLOW_HEADERS,
            "Access-Control-Max-Age": "86400",
        },
    )
