"""HEAD answers as GET does, for every GET route (RFC 9110 9.3.2), as pure ASGI middleware.

FastAPI adds no HEAD to a GET route, and a HEAD route of its own can be the wrong one: the
2010 media route ``Recordings/{name}`` takes HEAD, so a HEAD of ``Recordings/RE....json`` went
there and was a 404 while its GET, matched earlier by the ``{sid}.json`` route, was a 200. Here
a HEAD is routed as its GET would be: when the route the router chooses for the GET does not
take HEAD itself, the request goes on as that GET and its body is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.routes import routes_in_order


def answers_head_itself(routes: Iterable[BaseRoute], scope: Scope) -> bool:
    """Whether the route chosen for a GET of this path, or a HEAD route of the same path beside
    it, takes HEAD (or no route takes the GET)."""
    as_get = dict(scope, method="GET")
    ordered = list(routes_in_order(routes))
    for route in ordered:
        match, _ = route.matches(as_get)
        if match is Match.FULL:
            path = getattr(route, "path", None)
            # A HEAD route of the GET's own path answers differently on purpose (media in
            # accel mode: the headers without sending nginx to storage).
            return any(
                getattr(other, "path", None) == path and "HEAD" in (other.methods or ())
                for other in ordered
                if isinstance(other, (APIRoute, Route))
            )
    return True


class HeadAsGetMiddleware:
    """Serves a HEAD as its GET, without the body, where the GET's route has no HEAD."""

    def __init__(self, app: ASGIApp, routes: Callable[[], Iterable[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "HEAD"
            or answers_head_itself(self.routes(), scope)
        ):
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = dict(message, body=b"")
            await send(message)

        await self.app(dict(scope, method="GET"), receive, without_body)
