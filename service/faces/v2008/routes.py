"""The 2008-08-01 Recordings resource: the public instance and the authenticated list."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from service.accounts.auth import authenticate, authorize_media
from service.faces.v2008.openapi import INSTANCE_DELETE, INSTANCE_GET, LIST_GET, LIST_PARAMETERS
from service.faces.v2008.query import page_uri, parse_list_query
from service.faces.v2008.representations import API_PREFIX, PageUris
from service.faces.v2008.responses import render_page, render_recording, split_name, split_suffix
from service.http.cors import preflight_response
from service.http.deps import ServicesDep
from service.http.fastpath import fast_path
from service.http.playback import audio_response
from service.services import Services

router = APIRouter()

LIST_PATH = API_PREFIX + "/Accounts/{account_sid}/Recordings"
INSTANCE_PATH = LIST_PATH + "/{name}"
LIST_FORMATS = {"", ".xml", ".json", ".csv"}
INSTANCE_FORMATS = {"", ".wav", ".mp3", ".xml", ".json"}


@router.get(INSTANCE_PATH, summary="Fetch a recording", responses=INSTANCE_GET)
@router.head(INSTANCE_PATH, include_in_schema=False)
@fast_path
async def get_recording(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    sid, suffix = split_name(name)
    fmt = split_suffix(suffix, INSTANCE_FORMATS)
    found = await services.catalog.fetch(account_sid, sid)
    await authorize_media(services.pool, found, request.headers.get("authorization"))
    if fmt in (".xml", ".json"):
        return render_recording(found.recording, fmt)
    return await audio_response(services, request, found, "mp3" if fmt == ".mp3" else "wav")


@router.delete(
    INSTANCE_PATH, status_code=204, summary="Delete a recording", responses=INSTANCE_DELETE
)
async def delete_recording(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    await authenticate(services.pool, request.headers.get("authorization"), account_sid)
    sid, suffix = split_name(name)
    split_suffix(suffix, INSTANCE_FORMATS)
    await services.catalog.delete(account_sid, sid)
    return Response(status_code=204)


@router.options(INSTANCE_PATH, include_in_schema=False)
async def preflight_recording(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    return await preflight_response(services.pool, account_sid, request.headers.get("origin"))


async def _list(account_sid: str, suffix: str, request: Request, services: Services) -> Response:
    fmt = split_suffix(suffix, LIST_FORMATS)
    await authenticate(services.pool, request.headers.get("authorization"), account_sid)
    query = parse_list_query(request.scope["query_string"])
    page = await services.catalog.list_page(
        account_sid, query.filters, page=query.page, page_size=query.page_size
    )
    window = page.window
    base = f"{API_PREFIX}/Accounts/{account_sid}/Recordings{fmt}"

    def uri(number: int | None) -> str | None:
        return None if number is None else page_uri(base, query, number)

    uris = PageUris(
        uri=page_uri(base, query, window.page),
        first=page_uri(base, query, 0),
        previous=uri(window.previous_page),
        next=uri(window.next_page),
        last=uri(window.last_page),
    )
    return render_page(page, uris, fmt)


@router.get(LIST_PATH, summary="List recordings", responses=LIST_GET, openapi_extra=LIST_PARAMETERS)
@router.head(LIST_PATH, include_in_schema=False)
async def list_recordings_plain(
    account_sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _list(account_sid, "", request, services)


@router.get(
    LIST_PATH + "{suffix}",
    summary="List recordings (xml, json, csv)",
    responses=LIST_GET,
    openapi_extra=LIST_PARAMETERS,
)
@router.head(LIST_PATH + "{suffix}", include_in_schema=False)
async def list_recordings_as(
    account_sid: str, suffix: str, request: Request, services: ServicesDep
) -> Response:
    return await _list(account_sid, suffix, request, services)
