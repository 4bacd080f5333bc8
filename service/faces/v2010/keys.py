"""The 2010 Keys resource: an account's standard API keys (twilio-oai's ``api.v2010.account.key``
and, for the create answer with its secret, ``api.v2010.account.new_key``).

Managing keys takes the AuthToken of the account or of its parent; a key cannot manage keys.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from db.api_keys import ApiKey, delete_key, fetch_key, list_keys, rename_key
from service.accounts.auth import authenticate, is_key_sid
from service.accounts.keys import MAX_NAME, create_key
from service.errors import BadRequest, NotFound
from service.faces.v2010.listing import page_json, parse_page_query
from service.faces.v2010.representations import account_path
from service.http.deps import ServicesDep
from service.http.forms import read_form
from service.http.representations import JSON_TYPE, rfc2822

api = APIRouter()

KEYS = "/2010-04-01/Accounts/{account_sid}/Keys"


class KeyNotFound(NotFound):
    message = "The requested API key was not found"


def key_dict(key: ApiKey, *, secret: str | None = None) -> dict[str, Any]:
    """A key as the libraries read it; the secret only in the create answer."""
    body: dict[str, Any] = {
        "sid": key.sid,
        "friendly_name": key.friendly_name,
        "date_created": rfc2822(key.date_created),
        "date_updated": rfc2822(key.date_updated),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status, media_type=JSON_TYPE)


def _name(form: dict[str, str]) -> str | None:
    name = form.get("FriendlyName")
    if name is not None and len(name) > MAX_NAME:
        raise BadRequest(f"FriendlyName is at most {MAX_NAME} characters")
    return name


async def _key(services: ServicesDep, account_sid: str, sid: str) -> ApiKey:
    key = await fetch_key(services.pool, account_sid, sid) if is_key_sid(sid) else None
    if key is None:
        raise KeyNotFound()
    return key


async def _manager(services: ServicesDep, request: Request, account_sid: str) -> str:
    account = await authenticate(
        services.pool, request.headers.get("authorization"), account_sid, manage=True
    )
    return account.sid


@api.post(KEYS + ".json", status_code=201, summary="Create an API key")
async def create(account_sid: str, request: Request, services: ServicesDep) -> Response:
    owner = await _manager(services, request, account_sid)
    name = _name(await read_form(request)) or ""
    made = await create_key(services.pool, owner, name)
    return _json(key_dict(made.key, secret=made.secret), 201)


@api.get(KEYS + ".json", summary="List API keys")
async def list_all(account_sid: str, request: Request, services: ServicesDep) -> Response:
    owner = await _manager(services, request, account_sid)
    query = parse_page_query(request.scope["query_string"])
    found = await list_keys(services.pool, owner, limit=query.page_size + 1, offset=query.offset)
    items = [key_dict(k) for k in found[: query.page_size]]
    path = account_path(owner) + "/Keys.json"
    return _json(page_json("keys", items, query, path, more=len(found) > query.page_size))


@api.get(KEYS + "/{sid}.json", summary="Fetch an API key")
async def fetch_one(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    owner = await _manager(services, request, account_sid)
    return _json(key_dict(await _key(services, owner, sid)))


@api.post(KEYS + "/{sid}.json", summary="Rename an API key")
async def update_one(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    owner = await _manager(services, request, account_sid)
    key = await _key(services, owner, sid)
    name = _name(await read_form(request))
    if name is not None:
        renamed = await rename_key(services.pool, owner, sid, name)
        if renamed is None:
            raise KeyNotFound()
        key = renamed
    return _json(key_dict(key))


@api.delete(KEYS + "/{sid}.json", status_code=204, summary="Delete an API key")
async def delete_one(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    owner = await _manager(services, request, account_sid)
    if not is_key_sid(sid) or not await delete_key(services.pool, owner, sid):
        raise KeyNotFound()
    return Response(status_code=204)
