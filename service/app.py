"""The ASGI application: ``create_app()`` builds it from the settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from db.errors import UNAVAILABLE_ERRORS
from service.api import health, ingest, recordings
from service.api.responses import render_error
from service.compat import CompatibilityMiddleware
from service.errors import MethodNotAllowed, ServiceError, ServiceUnavailable
from service.metrics import Metrics
from service.observability import ObservabilityMiddleware
from service.settings import Settings
from service.state import open_services
from storage.errors import ObjectNotFound, StorageUnavailable

log = logging.getLogger(__name__)


def _routes(routes: list[Any]) -> Iterator[Route]:
    for route in routes:
        if isinstance(route, Route):
            yield route
        nested = getattr(getattr(route, "original_router", route), "routes", None)
        if nested is not None and nested is not routes:
            yield from _routes(nested)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for route in _routes(app.router.routes):
        if route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    async def service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        return render_error(exc.status, exc.message, request.url.path, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            allowed = _allowed_methods(app, request.url.path)
            error: ServiceError = MethodNotAllowed(
                allowed, f"Method {request.method} is not allowed on this resource"
            )
        elif exc.status_code == 404:
            error = ServiceError("The requested resource was not found")
            error.status = 404
        else:
            error = ServiceError(str(exc.detail))
            error.status = exc.status_code
            error.headers = dict(exc.headers or {})
        return await service_error(request, error)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return render_error(400, "The request is malformed", request.url.path, {})

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.warning("backing service unavailable on %s: %r", request.url.path, exc)
        return await service_error(request, ServiceUnavailable())

    async def missing_object(request: Request, exc: Exception) -> Response:
        log.error("a row points at a missing object: %s", exc)
        return render_error(
            502, "The recording's audio is missing from storage", request.url.path, {}
        )

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StorageUnavailable, unavailable)
    app.add_exception_handler(ObjectNotFound, missing_object)
    for error_type in UNAVAILABLE_ERRORS:
        if issubclass(error_type, Exception):
            app.add_exception_handler(error_type, unavailable)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service, reading its settings from the environment unless given them."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_services(settings, metrics) as services:
            yield {"services": services}

    app = FastAPI(
        title="Recordings",
        version="2008-08-01",
        description="Twilio's 2008-08-01 Recordings resource.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Metrics and logs are the service's own; FastAPI's OpenTelemetry hooks cost ~4% CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.include_router(recordings.router)
    app.include_router(ingest.router)
    app.include_router(health.router)
    _install_error_handlers(app)
    # Outermost last: old-client paths are fixed before requests are tagged and routed.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, access_log=settings.access_log)
    app.add_middleware(CompatibilityMiddleware)
    return app
