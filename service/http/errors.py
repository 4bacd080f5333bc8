"""One handler for every error: the service's family, routing's own, backing services', bugs."""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.errors import is_unavailable
from service.errors import (
    BadRequest,
    InsufficientStorage,
    InternalError,
    MediaMissing,
    MethodNotAllowed,
    ServiceError,
    ServiceUnavailable,
    error_for_status,
)
from service.http.representations import JSON_TYPE, XML_TYPE, rest_exception_xml
from service.http.routes import routes_in_order
from service.logs import request_id
from storage.errors import ObjectNotFound, StorageUnavailable

log = logging.getLogger(__name__)
ErrorRenderer = Callable[[ServiceError, Request], Response]
ErrorHandler = Callable[[Request, Exception], Awaitable[Response]]
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def render_rest_exception(error: ServiceError, request: Request) -> Response:
    """``<RestException>`` in XML, or ``{"status", "message"}`` for ``.json`` paths."""
    if request.url.path.endswith(".json"):
        body = json.dumps({"status": error.status, "message": error.message}).encode()
        return Response(body, error.status, headers=error.headers, media_type=JSON_TYPE)
    body = rest_exception_xml(error.status, error.message)
    return Response(body, error.status, headers=error.headers, media_type=XML_TYPE)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in routes_in_order(app.router.routes):
        if route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def as_service_error(app: FastAPI, request: Request, exc: Exception) -> ServiceError:
    """The family's member a client sees for ``exc``; logs what it hides."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.url.path)
            return MethodNotAllowed(
                allowed, f"Method {request.method} is not allowed on this resource"
            )
        return error_for_status(exc.status_code)()
    if isinstance(exc, RequestValidationError):
        return BadRequest("The request is malformed")
    if isinstance(exc, ObjectNotFound):
        log.error("a row points at a missing object: %s", exc)
        return MediaMissing()
    if isinstance(exc, StorageUnavailable) or is_unavailable(exc):
        log.warning("backing service unavailable on %s: %r", request.url.path, exc)
        return ServiceUnavailable()
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        log.error("temporary disk full on %s: %s", request.url.path, exc)
        return InsufficientStorage()
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return InternalError(f"Internal server error (request id {request_id.get()})")


def install_error_handlers(
    app: FastAPI, renderer_for: Callable[[str], ErrorRenderer]
) -> ErrorHandler:
    """Render every error with the renderer of the face the request's path belongs to.

    Starlette hands a handler of ``Exception`` to its outermost middleware, outside the one that
    tags requests with ids, so the catch-all is a middleware of its own inside that one.
    """

    async def handle(request: Request, exc: Exception) -> Response:
        error = as_service_error(app, request, exc)
        return renderer_for(request.url.path)(error, request)

    for error_type in (ServiceError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(error_type, handle)
    app.add_middleware(ErrorGuardMiddleware, handle=handle)
    return handle


class ErrorGuardMiddleware:
    """Answers any exception that escaped the handlers, unless the answer had already begun."""

    def __init__(self, app: ASGIApp, handle: ErrorHandler) -> None:
        self.app = app
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            if started:
                raise
            response = await self.handle(Request(scope), exc)
            await response(scope, receive, send)
