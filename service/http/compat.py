"""Forgiveness for old clients, as pure ASGI middleware (it never touches bodies)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from service.http.query import parse_query_string

_SINGULAR = re.compile(r"^/2008-08-01/Account/")
INTERNAL_PREFIX = "/internal/"
# Paths for the operator's side only, answered at their exact spelling: an edge that blocks
# one spelling must not see another one normalised back to it here.
EXACT_ONLY = frozenset({"/metrics"})


def normalise_path(path: str) -> str:
    """``//2008-08-01/Account/.../`` -> ``/2008-08-01/Accounts/...``."""
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    # A trailing slash is served as if absent, rather than redirected: a redirect would have to
    # name a host, and the request's Host is the client's to make up.
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return _SINGULAR.sub("/2008-08-01/Accounts/", path)


def _override(query_string: bytes) -> str | None:
    if b"_method" not in query_string:
        return None
    try:
        pairs = parse_query_string(query_string)
    except Exception:
        return None
    for key, value in pairs:
        if key == "_method" and value.upper() == "DELETE":
            return "DELETE"
    return None


class CompatibilityMiddleware:
    """Rewrites the doubled slash, the singular ``/Account/`` and ``POST ?_method=DELETE``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            fixed = normalise_path(path)
            if fixed in EXACT_ONLY and fixed != path:
                fixed = path  # served as written, which no route matches: a 404
            method = scope["method"]
            # Never on the ingest route: a POST there is an upload, whatever its query says.
            if (
                method == "POST"
                and not fixed.startswith(INTERNAL_PREFIX)
                and _override(scope.get("query_string", b""))
            ):
                method = "DELETE"
            if fixed != path or method != scope["method"]:
                scope = dict(scope, path=fixed, raw_path=fixed.encode(), method=method)
        await self.app(scope, receive, send)
