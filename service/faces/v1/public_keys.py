"""``/v1/Credentials/PublicKeys``: the accounts domain's public keys, as twilio-python's
``client.accounts.v1.credentials.public_key`` calls them (twilio-oai
``accounts.v1.credential.credential_public_key``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response

from db.accounts import Account
from db.public_keys import PublicKey
from service.accounts.auth import authenticate, parse_basic
from service.encryption import registry
from service.errors import BadRequest, PayloadTooLarge, Unauthorized
from service.http.deps import ServicesDep
from service.http.query import parse_int, parse_query_string
from service.http.representations import JSON_TYPE
from service.services import Services

router = APIRouter()

PUBLIC_KEYS = "/v1/Credentials/PublicKeys"
# What twilio-python reads the records of a list page from (its ``meta.key``).
LIST_KEY = "credentials"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# A form with a PEM of the largest key accepted, and room to spare.
MAX_FORM_BYTES = 64 * 1024


async def _caller(services: Services, request: Request) -> Account:
    """The account whose AccountSid and AuthToken the request carries; the resource has no
    account in its path, so the credentials name it."""
    header = request.headers.get("authorization")
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized()
    return await authenticate(services.pool, header, credentials.username)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body twilio-python sends, at most MAX_FORM_BYTES."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"The request body exceeds {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=False))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("The request body is not a valid urlencoded form") from exc


def _base(services: Services, request: Request) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def key_dict(key: PublicKey, base: str) -> dict[str, Any]:
    """``accounts.v1.credential.credential_public_key``; the PEM itself is never shown."""
    return {
        "sid": key.sid,
        "account_sid": key.account_sid,
        "friendly_name": key.friendly_name,
        "date_created": _iso(key.date_created),
        "date_updated": _iso(key.date_updated),
        "url": f"{base}{PUBLIC_KEYS}/{key.sid}",
    }


def _json(body: dict[str, Any], status_code: int = 200) -> Response:
    return Response(json.dumps(body), status_code, media_type=JSON_TYPE)


def _page_url(base: str, page: int, page_size: int) -> str:
    return f"{base}{PUBLIC_KEYS}?{urlencode({'PageSize': page_size, 'Page': page})}"


@router.post(PUBLIC_KEYS, status_code=201, summary="Register a public key")
async def create_public_key(request: Request, services: ServicesDep) -> Response:
    account = await _caller(services, request)
    form = await _form(request)
    owner = form.get("AccountSid") or account.sid
    if owner != account.sid:
        # Twilio lets a parent name one of its subaccounts here; never another account.
        raise BadRequest(f"AccountSid {owner} is not the account of these credentials")
    key = await registry.register_public_key(
        services.pool, account.sid, form.get("PublicKey", ""), form.get("FriendlyName")
    )
    return _json(key_dict(key, _base(services, request)), 201)


@router.get(PUBLIC_KEYS, summary="List the account's public keys")
async def list_public_keys(request: Request, services: ServicesDep) -> Response:
    account = await _caller(services, request)
    params = dict(parse_query_string(request.scope["query_string"]))
    page_size = parse_int(
        "PageSize", params.get("PageSize", str(DEFAULT_PAGE_SIZE)), 1, MAX_PAGE_SIZE
    )
    page = parse_int("Page", params.get("Page", "0"), 0, 10**6)
    found = await registry.list_page(services.pool, account.sid, page=page, page_size=page_size)
    base = _base(services, request)
    return _json(
        {
            LIST_KEY: [key_dict(key, base) for key in found.keys],
            "meta": {
                "first_page_url": _page_url(base, 0, page_size),
                "key": LIST_KEY,
                "next_page_url": _page_url(base, page + 1, page_size) if found.has_next else None,
                "page": page,
                "page_size": page_size,
                "previous_page_url": _page_url(base, page - 1, page_size) if page else None,
                "url": _page_url(base, page, page_size),
            },
        }
    )


@router.get(PUBLIC_KEYS + "/{sid}", summary="Fetch a public key")
async def fetch_public_key(sid: str, request: Request, services: ServicesDep) -> Response:
    account = await _caller(services, request)
    key = await registry.get_public_key(services.pool, account.sid, sid)
    return _json(key_dict(key, _base(services, request)))


@router.post(PUBLIC_KEYS + "/{sid}", summary="Rename a public key")
async def update_public_key(sid: str, request: Request, services: ServicesDep) -> Response:
    account = await _caller(services, request)
    form = await _form(request)
    key = await registry.get_public_key(services.pool, account.sid, sid)
    if "FriendlyName" in form:
        key = await registry.rename(services.pool, account.sid, sid, form["FriendlyName"])
    return _json(key_dict(key, _base(services, request)))


@router.delete(PUBLIC_KEYS + "/{sid}", status_code=204, summary="Delete a public key")
async def delete_public_key(sid: str, request: Request, services: ServicesDep) -> Response:
    account = await _caller(services, request)
    await registry.remove(services.pool, account.sid, sid)
    return Response(status_code=204)
