"""The ASGI application: ``create_app()`` builds it from the settings."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.faces import Face, health, home, ingest, pages, v1, v2008, v2010
from service.http.compat import CompatibilityMiddleware
from service.http.errors import ErrorRenderer, install_error_handlers, render_rest_exception
from service.http.fastpath import FastPathMiddleware
from service.http.observability import ObservabilityMiddleware
from service.http.origins import OriginGuardMiddleware
from service.metrics import Metrics
from service.services import open_services
from service.settings import Settings

# The pages face first: its `.html` and `/Peaks.json` paths would match the API faces' own
# `{name}` and `Recordings{suffix}` routes, which answer them 404.
FACES: tuple[Face, ...] = (
    pages.face,
    v2008.face,
    v2010.face,
    v1.face,
    ingest.face,
    health.face,
    home.face,
)


def _renderer_for(faces: tuple[Face, ...]) -> Callable[[str], ErrorRenderer]:
    # The longest matching prefix wins, so a face's own renderer beats the catch-all "/".
    ordered = sorted(faces, key=lambda face: len(face.prefix), reverse=True)

    def renderer_for(path: str) -> ErrorRenderer:
        for face in ordered:
            if path.startswith(face.prefix):
                return face.render_error
        return render_rest_exception

    return renderer_for


class RecordingsApp(FastAPI):
    """FastAPI behind the service's front layers, which every request passes first.

    They run outside FastAPI's own middleware (its error, telemetry and body-limit wrappers),
    so that a GET the fast path answers costs none of it: a third of a metadata GET's time
    when they were inside (bench/, benchmark 4).
    """

    front: Callable[[ASGIApp], ASGIApp] | None = None
    _front_app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._front_app is None:
            # Built on the first request, once every route is registered.
            inner = super().__call__
            self._front_app = self.front(inner) if self.front is not None else inner
        scope["app"] = self
        await self._front_app(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    metrics: Metrics | None = None,
    *,
    own_process: bool = False,
) -> FastAPI:
    """The service, reading its settings from the environment unless given them.

    ``metrics`` lets a process that runs more than the API (``recordings dev``'s in-process
    worker) export everything through the API's ``/metrics``. ``own_process`` says the process
    runs this app alone, for as long as it lives (``recordings serve``).
    """
    settings = settings or Settings()
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_services(settings, metrics) as services:
            if own_process:
                # What start-up made (modules, the S3 client's service model, the routes) lives
                # as long as the process: out of the collector's sight, a full collection no
                # longer walks it, which stalled every request in flight for ~100 ms (bench 4:
                # p99 113 -> 54 ms, .xml rps 0.58 -> 0.78 of the raw app). Not in a process that
                # makes apps and drops them (the tests): what is frozen is never collected.
                gc.collect()
                gc.freeze()
            yield {"services": services}

    app = RecordingsApp(
        title="Recordings",
        version="2008-08-01",
        description="Twilio's 2008-08-01 Recordings resource.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # The compatibility layer drops trailing slashes instead (see normalise_path).
        redirect_slashes=False,
        # Metrics and logs are the service's own; FastAPI's OpenTelemetry hooks cost ~4% CPU.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    for face in FACES:
        app.include_router(face.router)
    # Innermost first: the origin guard raises, and the error guard around it renders that.
    app.add_middleware(OriginGuardMiddleware)
    handle = install_error_handlers(app, _renderer_for(FACES))

    def front(inner: ASGIApp) -> ASGIApp:
        # Marked GETs skip FastAPI, the error guard and the router, and are still observed.
        fast = FastPathMiddleware(inner, routes=app.router.routes, handle=handle)
        observed = ObservabilityMiddleware(fast, metrics, access_log=settings.access_log)
        # Outermost: old-client paths are fixed before requests are tagged and routed.
        return CompatibilityMiddleware(observed)

    app.front = front
    return app


def create_served_app() -> FastAPI:
    """The app of ``recordings serve`` (uvicorn's factory, in each worker process)."""
    return create_app(own_process=True)
