"""GETs served without FastAPI's routing, middleware stack and dependency resolution.

A metadata GET does one query and renders a few hundred bytes; walking FastAPI's route list,
its exception middlewares and ``solve_dependencies`` cost more than that work itself (bench/,
benchmark 4). An endpoint marked ``@fast_path`` is called directly instead, with the same
arguments FastAPI would have given it, and its errors are rendered by the same handler: the
route's logic exists once, in the endpoint.

Only endpoints whose parameters are path parameters, the ``Request`` and plain ``async``
dependencies of the ``Request`` alone can be marked; anything else is refused when the app is
built. A request is taken only when the router itself would have chosen the marked route: the
GET routes registered before it that could match the same path are checked first, and a match
there sends the request down the full stack. Only GET is taken: the origin guard passes every
safe method, so skipping it changes nothing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.http.errors import ErrorGuardMiddleware, ErrorHandler
from service.http.routes import routes_in_order

E = TypeVar("E", bound=Callable[..., Awaitable[Response]])
_MARK = "__fast_path__"
_CHOSEN = "recordings.fast_route"
_GROUP_NAME = re.compile(r"\(\?P<\w+>")


def fast_path(endpoint: E) -> E:
    """Mark an endpoint the fast path may call directly for its GET routes."""
    setattr(endpoint, _MARK, True)
    return endpoint


class NotFastPathable(TypeError):
    """An endpoint marked ``@fast_path`` needs something only FastAPI's resolution gives."""


@dataclass(frozen=True)
class _FastRoute:
    route: APIRoute
    # Earlier GET routes that could also match: where one does, the router would choose it.
    shadows: tuple[Route, ...]
    request_param: str | None
    dependencies: tuple[tuple[str, Callable[[Request], Awaitable[Any]]], ...]

    @cached_property
    def prefix(self) -> str:
        return _literal_prefix(self.route.path)

    @cached_property
    def shadowed(self) -> re.Pattern[str] | None:
        """One pattern for all the shadows (their groups unnamed: names repeat across them)."""
        if not self.shadows:
            return None
        patterns = (_GROUP_NAME.sub("(?:", s.path_regex.pattern) for s in self.shadows)
        return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


def _literal_prefix(path: str) -> str:
    return path.split("{", 1)[0]


def _may_overlap(a: str, b: str) -> bool:
    """False only when no path can match both route paths (their literal heads differ)."""
    x, y = _literal_prefix(a), _literal_prefix(b)
    return x.startswith(y) or y.startswith(x)


def _request_dependency(dependant: Dependant, where: str) -> Callable[[Request], Awaitable[Any]]:
    call = dependant.call
    if (
        call is None
        or not inspect.iscoroutinefunction(call)
        or dependant.dependencies
        or _declared_params(dependant)
        or dependant.request_param_name is None
        or len(inspect.signature(call).parameters) != 1
    ):
        raise NotFastPathable(f"{where}: {call!r} is not an async function of the Request")
    return call


def _declared_params(dependant: Dependant) -> list[str]:
    params = (
        dependant.query_params
        + dependant.header_params
        + dependant.cookie_params
        + dependant.body_params
    )
    names = [field.name for field in params]
    for special in (
        "websocket_param_name",
        "http_connection_param_name",
        "response_param_name",
        "background_tasks_param_name",
        "security_scopes_param_name",
    ):
        if getattr(dependant, special) is not None:
            names.append(special)
    return names


def _fast_route(route: APIRoute, earlier: Sequence[Route]) -> _FastRoute:
    where = f"{route.path} ({route.endpoint.__qualname__})"
    dependant = route.dependant
    if extra := _declared_params(dependant):
        raise NotFastPathable(f"{where}: takes {', '.join(extra)}")
    if route.dependencies:
        raise NotFastPathable(f"{where}: the route has dependencies of its own")
    dependencies = []
    for sub in dependant.dependencies:
        if sub.name is None:
            raise NotFastPathable(f"{where}: a dependency without a parameter")
        dependencies.append((sub.name, _request_dependency(sub, where)))
    shadows = tuple(
        other
        for other in earlier
        if other.methods and "GET" in other.methods and _may_overlap(other.path, route.path)
    )
    return _FastRoute(route, shadows, dependant.request_param_name, tuple(dependencies))


def fast_routes(routes: Iterable[BaseRoute]) -> tuple[_FastRoute, ...]:
    """The marked GET routes among ``routes``, each with the earlier routes that shadow it."""
    ordered = list(routes_in_order(routes))
    table = []
    for index, route in enumerate(ordered):
        if (
            isinstance(route, APIRoute)
            and getattr(route.endpoint, _MARK, False)
            and route.methods == {"GET"}
        ):
            table.append(_fast_route(route, ordered[:index]))
    return tuple(table)


class FastPathMiddleware:
    """Serves the GETs of marked routes directly; everything else goes on to ``app``."""

    def __init__(self, app: ASGIApp, *, routes: Iterable[BaseRoute], handle: ErrorHandler) -> None:
        self.app = app
        self.table = fast_routes(routes)
        # Errors are answered as on the full stack, by the same guard and handler.
        self._guarded = ErrorGuardMiddleware(self._serve, handle)

    def choose(self, path: str) -> tuple[_FastRoute, dict[str, Any]] | None:
        """The marked route the router would choose for a GET of ``path``, and its params."""
        for fast in self.table:
            if not path.startswith(fast.prefix):
                continue
            match = fast.route.path_regex.match(path)
            if match is None:
                continue
            if fast.shadowed is not None and fast.shadowed.match(path):
                return None
            convertors = fast.route.param_convertors
            params = {name: convertors[name].convert(v) for name, v in match.groupdict().items()}
            return fast, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chosen = None
        if scope["type"] == "http" and scope["method"] == "GET":
            chosen = self.choose(scope["path"])
        if chosen is None:
            await self.app(scope, receive, send)
            return
        fast, params = chosen
        # What the router leaves in the scope (the access log and metrics read "route").
        scope["path_params"] = params
        scope["route"] = fast.route
        scope["endpoint"] = fast.route.endpoint
        scope[_CHOSEN] = fast
        await self._guarded(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast: _FastRoute = scope[_CHOSEN]
        request = Request(scope, receive)
        arguments = dict(scope["path_params"])
        if fast.request_param is not None:
            arguments[fast.request_param] = request
        for name, dependency in fast.dependencies:
            arguments[name] = await dependency(request)
        response = await fast.route.endpoint(**arguments)
        await response(scope, receive, send)
