"""``/v1/AuthTokens``: the secondary AuthToken and its promotion (twilio-oai's
``accounts.v1.secondary_auth_token`` and ``accounts.v1.auth_token_promotion``).

The account is the credentials' own, through its AuthToken (primary or secondary); a standard
API key may not. Dates are ISO 8601 here, as the accounts domain gives them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from db.accounts import Account
from service.accounts.auth import identify
from service.accounts.sealing import sealer_for
from service.accounts.tokens import create_secondary, delete_secondary, promote_secondary
from service.errors import NotFound
from service.http.deps import ServicesDep
from service.http.representations import JSON_TYPE

router = APIRouter()

SECONDARY = "/v1/AuthTokens/Secondary"
PROMOTE = "/v1/AuthTokens/Promote"


class NoSecondaryToken(NotFound):
    message = "The account has no secondary AuthToken"


def iso8601(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _url(services: ServicesDep, request: Request, path: str) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/") + path


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, media_type=JSON_TYPE)


async def _account(services: ServicesDep, request: Request) -> Account:
    principal = await identify(services.pool, request.headers.get("authorization"), manage=True)
    return principal.account


@router.post(SECONDARY, status_code=201, summary="Create the secondary AuthToken")
async def create(request: Request, services: ServicesDep) -> Response:
    account = await _account(services, request)
    made = await create_secondary(
        services.pool, account, sealer=sealer_for(services.settings.secret_key)
    )
    if made is None:
        raise NotFound()
    created = made.account.secondary_token_created
    body = {
        "account_sid": account.sid,
        "date_created": iso8601(created),
        "date_updated": iso8601(created),
        "secondary_auth_token": made.token,
        "url": _url(services, request, SECONDARY),
    }
    return _json(body, 201)


@router.delete(SECONDARY, status_code=204, summary="Delete the secondary AuthToken")
async def delete(request: Request, services: ServicesDep) -> Response:
    account = await _account(services, request)
    if not await delete_secondary(services.pool, account):
        raise NoSecondaryToken()
    return Response(status_code=204)


@router.post(PROMOTE, summary="Promote the secondary AuthToken to primary")
async def promote(request: Request, services: ServicesDep) -> Response:
    account = await _account(services, request)
    promoted = await promote_secondary(
        services.pool, account, sealer=sealer_for(services.settings.secret_key)
    )
    if promoted is None:
        raise NoSecondaryToken()
    updated, token = promoted
    body = {
        "account_sid": updated.sid,
        # The promoted token, when the server can open its sealed copy (RECORDINGS_SECRET_KEY).
        "auth_token": token,
        "date_created": iso8601(updated.date_created),
        "date_updated": iso8601(updated.date_updated),
        "url": _url(services, request, PROMOTE),
    }
    return _json(body)
