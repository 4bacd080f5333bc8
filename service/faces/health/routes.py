"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from db.errors import UNAVAILABLE_ERRORS
from service.errors import TokenRequired
from service.http.deps import ServicesDep
from service.mp3.queue import MP3_ENTRYPOINT, queue_depths
from service.peaks.jobs import PEAKS_ENTRYPOINT
from storage.errors import StorageError

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok\n")


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = {"database": "ok", "storage": "ok"}
    try:
        async with asyncio.timeout(5):
            await services.pool.fetchval("SELECT 1")
    except UNAVAILABLE_ERRORS as exc:
        checks["database"] = type(exc).__name__
    try:
        async with asyncio.timeout(5):
            await services.storage.ping()
    except (StorageError, TimeoutError) as exc:
        checks["storage"] = type(exc).__name__
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(checks, status_code=200 if ok else 503)


class MetricsTokenRequired(TokenRequired):
    message = "A valid metrics token is required (Authorization: Bearer ...)"
    challenge = 'Bearer realm="Recordings metrics"'


@router.get("/metrics")
async def metrics(request: Request, services: ServicesDep) -> Response:
    expected = services.settings.metrics_token
    if expected:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected.encode()
        ):
            raise MetricsTokenRequired()
    m = services.metrics
    m.transcodes_inflight.set(services.transcoder.inflight)
    try:
        async with asyncio.timeout(2):
            depths = await queue_depths(services.pool)
        m.queue_depth.set(depths.get(MP3_ENTRYPOINT, 0))
        m.peaks_queue_depth.set(depths.get(PEAKS_ENTRYPOINT, 0))
    except Exception:
        pass  # a scrape must not fail because the database is away; the gauge keeps its value
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
