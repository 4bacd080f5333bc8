"""The 2010 Accounts resource: a parent and its subaccounts (twilio-oai's ``api.v2010.account``).

Only an AuthToken manages accounts; a standard API key is refused (403). A subaccount sees and
renames itself; only its parent changes its status, and ``closed`` is final.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from db.accounts import STATUSES, Account, fetch_account, list_family, update_account
from service.accounts.auth import access, authenticate, identify
from service.accounts.registry import ParentRefused, create_account
from service.accounts.sealing import sealer_for
from service.errors import BadRequest, Forbidden, NotFound
from service.faces.v2010.listing import page_json, parse_page_query
from service.faces.v2010.representations import API_PREFIX
from service.http.deps import ServicesDep
from service.http.forms import read_form
from service.http.representations import JSON_TYPE, rfc2822

api = APIRouter()

ACCOUNTS = API_PREFIX + "/Accounts"
MAX_NAME = 64


class ClosedAccount(BadRequest):
    message = "The account is closed; a closed account cannot be changed"


class SubaccountsOfSubaccount(Forbidden):
    message = "A subaccount cannot create subaccounts"


def account_dict(account: Account, *, auth_token: str | None = None) -> dict[str, Any]:
    """``api.v2010.account``. The AuthToken is shown when the account is made, and never again:
    only its hash is kept."""
    path = f"{ACCOUNTS}/{account.sid}"
    return {
        "auth_token": auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_updated or account.date_created),
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.owner_sid,
        "sid": account.sid,
        "status": account.status,
        "subresource_uris": {
            "recordings": path + "/Recordings.json",
            "keys": path + "/Keys.json",
        },
        "type": "Full",
        "uri": path + ".json",
    }


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, media_type=JSON_TYPE)


def _name(form: dict[str, str]) -> str | None:
    name = form.get("FriendlyName")
    if name is not None and len(name) > MAX_NAME:
        raise BadRequest(f"FriendlyName is at most {MAX_NAME} characters")
    return name


def _status(value: str | None) -> str | None:
    if value is not None and value not in STATUSES:
        raise BadRequest(f"Status must be one of {', '.join(STATUSES)}")
    return value


@api.post(ACCOUNTS + ".json", status_code=201, summary="Create a subaccount")
async def create_subaccount(request: Request, services: ServicesDep) -> Response:
    parent = await identify(services.pool, request.headers.get("authorization"), manage=True)
    if parent.account.parent_sid is not None:
        raise SubaccountsOfSubaccount()
    form = await read_form(request)
    # Twilio's default name for a subaccount made without one.
    name = _name(form) or f"SubAccount Created at {rfc2822(datetime.now(UTC))}"
    try:
        made = await create_account(
            services.pool,
            name,
            sealer=sealer_for(services.settings.secret_key),
            parent_sid=parent.account.sid,
        )
    except ParentRefused as exc:
        raise Forbidden(exc.message) from exc
    account = await fetch_account(services.pool, made.account_sid)
    assert account is not None
    return _json(account_dict(account, auth_token=made.auth_token), 201)


@api.get(ACCOUNTS + ".json", summary="List the account and its subaccounts")
async def list_accounts(request: Request, services: ServicesDep) -> Response:
    caller = await identify(services.pool, request.headers.get("authorization"), manage=True)
    query = parse_page_query(request.scope["query_string"], ("FriendlyName", "Status"))
    filters = dict(query.filters)
    family = await list_family(
        services.pool,
        caller.account.sid,
        friendly_name=filters.get("FriendlyName"),
        status=_status(filters.get("Status")),
    )
    page = family[query.offset : query.offset + query.page_size]
    more = len(family) > query.offset + query.page_size
    items = [account_dict(a) for a in page]
    return _json(page_json("accounts", items, query, ACCOUNTS + ".json", more=more))


@api.get(ACCOUNTS + "/{sid}.json", summary="Fetch an account")
async def fetch_one(sid: str, request: Request, services: ServicesDep) -> Response:
    account = await authenticate(
        services.pool,
        request.headers.get("authorization"),
        sid,
        manage=True,
        inactive_target=True,
    )
    return _json(account_dict(account))


@api.post(ACCOUNTS + "/{sid}.json", summary="Rename an account or change its status")
async def update_one(sid: str, request: Request, services: ServicesDep) -> Response:
    caller, account = await access(
        services.pool,
        request.headers.get("authorization"),
        sid,
        manage=True,
        inactive_target=True,
    )
    form = await read_form(request)
    name, status = _name(form), _status(form.get("Status"))
    if status is not None and status != account.status and account.sid == caller.account.sid:
        # A parent (or the operator, for a top-level account) decides an account's status.
        raise Forbidden("An account's status is changed by its parent account")
    if account.status == "closed" and (name is not None or status is not None):
        raise ClosedAccount()
    if name is None and status is None:
        return _json(account_dict(account))
    updated = await update_account(services.pool, account.sid, friendly_name=name, status=status)
    if updated is None:
        # Closed (or gone) between the read and the update.
        raise ClosedAccount() if await fetch_account(services.pool, sid) else NotFound()
    return _json(account_dict(updated))
