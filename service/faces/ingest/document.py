"""The ingest face's router, and its OpenAPI document: it is internal, so it is described on
its own, under /internal/ (which only the voice platform reaches), not in the public document."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from service.faces.ingest.routes import check_token
from service.faces.ingest.routes import router as api
from service.http.deps import ServicesDep

router = APIRouter()
router.include_router(api, include_in_schema=False)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the ingest operation."""
    return get_openapi(
        title="Recordings: ingest (voice platform only)",
        version="1",
        description="The voice platform's upload of call recordings, with the ingest token.",
        routes=api.routes,
    )


@router.get("/internal/openapi.json", include_in_schema=False)
async def get_openapi_document(request: Request, services: ServicesDep) -> JSONResponse:
    check_token(services.settings.ingest_token, request.headers.get("authorization"))
    return JSONResponse(openapi_document())
