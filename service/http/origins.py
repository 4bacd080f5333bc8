"""State-changing requests from browsers are taken only from the service's own pages.

A browser sends cached Basic credentials with a cross-site form POST, which needs no CORS
preflight, so ``POST ...?_method=DELETE`` from any web page could delete recordings. Browsers say
where a request comes from (``Sec-Fetch-Site``, ``Origin``); clients that are not browsers send
neither and are let through.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Forbidden

_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_OWN = frozenset({b"same-origin", b"none"})


class CrossSiteRequestRefused(Forbidden):
    message = "State-changing requests from another site's pages are refused"


def _origin_host(origin: bytes) -> bytes | None:
    scheme, sep, rest = origin.partition(b"://")
    if not sep or scheme not in (b"http", b"https"):
        return None
    return rest.rstrip(b"/").lower()


def is_cross_site(method: str, headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a browser sent this state-changing request from another site's page."""
    if method in _SAFE:
        return False
    fetch_site = origin = host = None
    for name, value in headers:
        if name == b"sec-fetch-site":
            fetch_site = value.strip().lower()
        elif name == b"origin":
            origin = value.strip()
        elif name == b"host":
            host = value.strip().lower()
    if fetch_site is not None:
        return fetch_site not in _OWN
    if origin is None:
        return False
    # An older browser without Sec-Fetch-*: its Origin must name this host ("null" never does).
    return _origin_host(origin) != host


class OriginGuardMiddleware:
    """Refuses (403) what ``is_cross_site`` says a browser sent from another site."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_cross_site(scope["method"], scope["headers"]):
            raise CrossSiteRequestRefused()
        await self.app(scope, receive, send)
