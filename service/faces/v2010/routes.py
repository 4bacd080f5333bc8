"""The 2010-04-01 Recordings resources, as today's Twilio libraries call them."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request, Response

import service.faces.v2010.openapi as doc
from db.accounts import Account
from db.recordings import Recording
from service.accounts.auth import authenticate, authorize_media, owner_proves, parse_basic
from service.errors import NotFound
from service.faces.v2010.query import (
    ListQuery,
    list_uri,
    parse_include_deleted,
    parse_list_query,
)
from service.faces.v2010.representations import (
    ListUris,
    account_path,
    call_recording_dict,
    conference_recording_dict,
    list_json,
    recording_dict,
)
from service.http.cors import preflight_response
from service.http.deps import ServicesDep
from service.http.fastpath import fast_path
from service.http.playback import audio_response
from service.http.representations import JSON_TYPE
from service.recordings.paging import TokenPage
from service.services import Services
from service.sids import is_call_sid, is_conference_sid

# The operations; the face's router (service.faces.v2010.document) mounts them.
api = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
RECORDINGS = ACCOUNT + "/Recordings"
CALL_RECORDINGS = ACCOUNT + "/Calls/{call_sid}/Recordings"
CONFERENCE_RECORDINGS = ACCOUNT + "/Conferences/{conference_sid}/Recordings"
MEDIA_KINDS = {"": "wav", ".wav": "wav", ".mp3": "mp3"}


async def _account(services: Services, request: Request, account_sid: str) -> Account:
    return await authenticate(services.pool, request.headers.get("authorization"), account_sid)


async def _readable(
    services: Services,
    request: Request,
    account_sid: str,
    sid: str,
    *,
    call_sid: str | None = None,
) -> Recording:
    """The recording an instance GET shows, once its credentials reach it. The account's own
    AuthToken, on a live recording, is checked against the account's row read with the
    recording: one query instead of two, and one transaction for a pooler to place. Anything
    else (keys, a parent's token, IncludeSoftDeleted, every refusal) takes the full check."""
    include_deleted = _include_deleted(request)
    credentials = parse_basic(request.headers.get("authorization"))
    # Only the account's own SID can be settled by the row read with the recording: any other
    # user (a key, a parent) goes straight to the full check, without a lookup wasted first.
    if not include_deleted and credentials is not None and credentials.username == account_sid:
        found = await services.catalog.find(account_sid, sid)
        if (
            found is not None
            and (call_sid is None or found.recording.call_sid == call_sid)
            and owner_proves(found, credentials)
        ):
            return found.recording
    await _account(services, request, account_sid)
    return await services.catalog.fetch_metadata(
        account_sid, sid, call_sid=call_sid, include_deleted=include_deleted
    )


def _media_base(services: Services, request: Request) -> str:
    # uvicorn has applied X-Forwarded-Proto from trusted proxies to base_url; the host is the
    # request's Host header, which the proxy passes on.
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def _include_deleted(request: Request) -> bool:
    return parse_include_deleted(request.scope["query_string"])


def _json(body: bytes | dict[str, Any]) -> Response:
    return Response(body if isinstance(body, bytes) else json.dumps(body), media_type=JSON_TYPE)


def _uris(path: str, query: ListQuery, page: TokenPage) -> ListUris:
    return ListUris(
        uri=list_uri(path, query, page=query.page, token=query.page_token),
        first=list_uri(path, query, page=0, token=None),
        next=(
            list_uri(path, query, page=page.next_page, token=page.next_token)
            if page.next_token
            else None
        ),
        previous=(
            list_uri(path, query, page=page.previous_page, token=page.previous_token)
            if page.previous_token
            else None
        ),
    )


async def _page(
    services: Services,
    request: Request,
    account_sid: str,
    call_sid: str | None = None,
    *,
    conference_sid: str | None = None,
) -> tuple[ListQuery, TokenPage]:
    """A list page of the account's recordings, or of one call's or one conference's (whose SID
    in the path replaces the query's filter of the same name)."""
    account = await _account(services, request, account_sid)
    if call_sid is not None and not is_call_sid(call_sid):
        raise NotFound()
    if conference_sid is not None and not is_conference_sid(conference_sid):
        raise NotFound()
    query = parse_list_query(request.scope["query_string"])
    filters = query.filters
    if call_sid is not None:
        filters = replace(filters, call_sid=call_sid)
    if conference_sid is not None:
        filters = replace(filters, conference_sid=conference_sid)
    page = await services.catalog.list_by_token(
        account,
        filters,
        page=query.page,
        page_size=query.page_size,
        page_token=query.page_token,
        include_deleted=query.include_deleted,
    )
    return query, page


@api.get(
    RECORDINGS + ".json",
    summary="List recordings",
    responses=doc.LIST,
    openapi_extra=doc.LIST_PARAMETERS,
)
async def list_recordings(account_sid: str, request: Request, services: ServicesDep) -> Response:
    query, page = await _page(services, request, account_sid)
    base = _media_base(services, request)
    items = [recording_dict(r, media_base=base) for r in page.recordings]
    uris = _uris(f"{account_path(account_sid)}/Recordings.json", query, page)
    return _json(list_json("recordings", items, page, uris))


@api.get(
    CALL_RECORDINGS + ".json",
    summary="List a call's recordings",
    responses=doc.CALL_LIST,
    openapi_extra=doc.CALL_LIST_PARAMETERS,
)
async def list_call_recordings(
    account_sid: str, call_sid: str, request: Request, services: ServicesDep
) -> Response:
    query, page = await _page(services, request, account_sid, call_sid)
    items = [call_recording_dict(r) for r in page.recordings]
    uris = _uris(f"{account_path(account_sid)}/Calls/{call_sid}/Recordings.json", query, page)
    return _json(list_json("recordings", items, page, uris))


@api.get(
    RECORDINGS + "/{sid}.json",
    summary="Fetch a recording",
    responses=doc.FETCH,
    openapi_extra=doc.FETCH_PARAMETERS,
)
@fast_path
async def fetch_recording(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    recording = await _readable(services, request, account_sid, sid)
    return _json(recording_dict(recording, media_base=_media_base(services, request)))


@api.get(
    CALL_RECORDINGS + "/{sid}.json",
    summary="Fetch a call's recording",
    responses=doc.CALL_FETCH,
    openapi_extra=doc.FETCH_PARAMETERS,
)
@fast_path
async def fetch_call_recording(
    account_sid: str, call_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    recording = await _readable(services, request, account_sid, sid, call_sid=call_sid)
    return _json(call_recording_dict(recording))


async def _delete(
    services: Services,
    request: Request,
    account_sid: str,
    sid: str,
    call_sid: str | None = None,
    *,
    conference_sid: str | None = None,
) -> Response:
    await _account(services, request, account_sid)
    if call_sid is not None or conference_sid is not None:
        # Only a recording of that call (or conference) may be deleted through its path.
        await services.catalog.fetch_metadata(
            account_sid, sid, call_sid=call_sid, conference_sid=conference_sid
        )
    await services.catalog.delete(account_sid, sid)
    return Response(status_code=204)


@api.delete(
    RECORDINGS + "/{sid}.json", status_code=204, summary="Delete a recording", responses=doc.DELETE
)
async def delete_recording(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _delete(services, request, account_sid, sid)


@api.delete(
    CALL_RECORDINGS + "/{sid}.json",
    status_code=204,
    summary="Delete a call's recording",
    responses=doc.DELETE,
)
async def delete_call_recording(
    account_sid: str, call_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _delete(services, request, account_sid, sid, call_sid)


@api.get(
    CONFERENCE_RECORDINGS + ".json",
    summary="List a conference's recordings",
    responses=doc.CONFERENCE_LIST,
    openapi_extra=doc.CONFERENCE_LIST_PARAMETERS,
)
async def list_conference_recordings(
    account_sid: str, conference_sid: str, request: Request, services: ServicesDep
) -> Response:
    query, page = await _page(services, request, account_sid, conference_sid=conference_sid)
    items = [conference_recording_dict(r) for r in page.recordings]
    path = f"{account_path(account_sid)}/Conferences/{conference_sid}/Recordings.json"
    return _json(list_json("recordings", items, page, _uris(path, query, page)))


@api.get(
    CONFERENCE_RECORDINGS + "/{sid}.json",
    summary="Fetch a conference's recording",
    responses=doc.CONFERENCE_FETCH,
    openapi_extra=doc.FETCH_PARAMETERS,
)
async def fetch_conference_recording(
    account_sid: str, conference_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    await _account(services, request, account_sid)
    recording = await services.catalog.fetch_metadata(
        account_sid, sid, conference_sid=conference_sid, include_deleted=_include_deleted(request)
    )
    return _json(conference_recording_dict(recording))


@api.delete(
    CONFERENCE_RECORDINGS + "/{sid}.json",
    status_code=204,
    summary="Delete a conference's recording",
    responses=doc.DELETE,
)
async def delete_conference_recording(
    account_sid: str, conference_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _delete(services, request, account_sid, sid, conference_sid=conference_sid)


def _split_media(name: str) -> tuple[str, str]:
    """``RE....mp3`` -> (``RE...``, ``mp3``); any other extension is a 404."""
    sid, dot, ext = name.partition(".")
    kind = MEDIA_KINDS.get(dot + ext.lower())
    if kind is None:
        raise NotFound()
    return sid, kind


@api.get(
    RECORDINGS + "/{name}",
    summary="Fetch a recording's audio",
    responses=doc.MEDIA,
    openapi_extra=doc.MEDIA_PARAMETERS,
)
@api.head(RECORDINGS + "/{name}", include_in_schema=False)
@fast_path
async def get_media(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    sid, kind = _split_media(name)
    found = await services.catalog.fetch(account_sid, sid)
    await authorize_media(services.pool, found, request.headers.get("authorization"))
    return await audio_response(services, request, found, "mp3" if kind == "mp3" else "wav")


@api.delete(
    RECORDINGS + "/{name}", status_code=204, summary="Delete a recording", responses=doc.DELETE
)
async def delete_recording_bare(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    # A bare SID only: the media extensions name audio, which is not deleted on its own.
    return await _delete(services, request, account_sid, name)


@api.options(RECORDINGS + "/{name}", include_in_schema=False)
async def preflight_media(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    return await preflight_response(services.pool, account_sid, request.headers.get("origin"))


async def _empty_list(
    name: str, key: str, account_sid: str, sid: str, request: Request, services: Services
) -> Response:
    await _account(services, request, account_sid)
    await services.catalog.fetch_metadata(account_sid, sid)
    query = parse_list_query(request.scope["query_string"])
    page = TokenPage([], query.page, query.page_size, None, None)
    uris = _uris(f"{account_path(account_sid)}/Recordings/{sid}/{name}.json", query, page)
    return _json(list_json(key, [], page, uris))


@api.get(
    RECORDINGS + "/{sid}/Transcriptions.json",
    summary="A recording's transcriptions (none: this service makes none)",
    responses=doc.empty_list("transcriptions"),
)
async def list_transcriptions(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _empty_list(
        "Transcriptions", "transcriptions", account_sid, sid, request, services
    )


@api.get(
    RECORDINGS + "/{sid}/AddOnResults.json",
    summary="A recording's add-on results (none: this service runs no add-ons)",
    responses=doc.empty_list("add_on_results"),
)
async def list_add_on_results(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    return await _empty_list("AddOnResults", "add_on_results", account_sid, sid, request, services)
