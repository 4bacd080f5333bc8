"""The 2010 face's router: its operations, and its own OpenAPI document beside them."""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from service.faces.v2010.accounts import api as accounts_api
from service.faces.v2010.keys import api as keys_api
from service.faces.v2010.routes import api

router = APIRouter()
# Left out of the service's /openapi.json (the 2008 API's document), described in their own.
router.include_router(api, include_in_schema=False)
# The credential resources (design section 15): not in the Recordings document.
router.include_router(accounts_api, include_in_schema=False)
router.include_router(keys_api, include_in_schema=False)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the 2010-04-01 operations."""
    return get_openapi(
        title="Recordings: Twilio API 2010-04-01",
        version="2010-04-01",
        description=(
            "The Recordings resources of Twilio's 2010-04-01 API, for the official libraries;"
            " JSON only, HTTP Basic with the path's AccountSid and its AuthToken."
        ),
        routes=api.routes,
    )


@router.get("/2010-04-01/openapi.json", include_in_schema=False)
async def get_openapi_document() -> JSONResponse:
    return JSONResponse(openapi_document())
