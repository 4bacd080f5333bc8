"""The 2008-08-01 Recordings resource: the public instance and the authenticated list."""

from __future__ import annotations

import contextlib
import logging

from fastapi import APIRouter, Request, Response

from db.recordings import (
    Recording,
    count_recordings,
    fetch_media,
    list_recordings,
    purge_recording,
    tombstone_recording,
)
from service.api.disconnects import unless_disconnected
from service.api.openapi import INSTANCE_DELETE, INSTANCE_GET, LIST_GET, LIST_PARAMETERS
from service.api.responses import render_page, render_recording, split_name, split_suffix
from service.auth import authenticate, parse_basic, token_matches
from service.errors import NotFound, ServiceUnavailable, Unauthorized, UnprocessableAudio
from service.listing import page_uri, parse_list_query
from service.media import CORS_HEADERS, MediaObject, media_response, redirect_response
from service.representations import API_PREFIX, Page
from service.sids import is_account_sid, is_recording_sid
from service.state import Services, ServicesDep
from service.transcoder import MP3_TYPE, RecordingGone, TranscodeFailed, TranscoderBusy
from storage.errors import StorageError

log = logging.getLogger(__name__)
router = APIRouter()

LIST_PATH = API_PREFIX + "/Accounts/{account_sid}/Recordings"
INSTANCE_PATH = LIST_PATH + "/{name}"
LIST_FORMATS = {"", ".xml", ".json", ".csv"}
INSTANCE_FORMATS = {"", ".wav", ".mp3", ".xml", ".json"}
MEDIA_ALLOW_HEADERS = "Authorization, Range, If-Range, If-None-Match, If-Modified-Since"


def _not_found() -> NotFound:
    return NotFound("The requested resource was not found")


async def _check_media_auth(
    services: Services, request: Request, account_sid: str, salt: bytes, stored: bytes
) -> None:
    header = request.headers.get("authorization")
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized("This account requires credentials for its media")
    if credentials.username == account_sid:
        if not token_matches(credentials.password, salt, stored):
            raise Unauthorized("Invalid credentials")
        return
    await authenticate(services.pool, header, account_sid)


@router.get(INSTANCE_PATH, summary="Fetch a recording", responses=INSTANCE_GET)
@router.head(INSTANCE_PATH, include_in_schema=False)
async def get_recording(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    sid, suffix = split_name(name)
    fmt = split_suffix(suffix, INSTANCE_FORMATS)
    if not is_account_sid(account_sid) or not is_recording_sid(sid):
        raise _not_found()
    found = await fetch_media(services.pool, account_sid, sid)
    if found is None:
        raise _not_found()
    if found.enforce_media_auth:
        await _check_media_auth(services, request, account_sid, found.token_salt, found.token_hash)
    recording = found.recording
    if fmt in (".xml", ".json"):
        return render_recording(recording, fmt)
    if fmt == ".mp3":
        media = await _mp3_media(services, recording, request)
    else:
        media = MediaObject(
            key=recording.wav_key,
            size=recording.wav_size,
            etag=recording.wav_etag,
            last_modified=recording.date_updated,
            content_type="audio/x-wav",
            filename=f"{recording.sid}.wav",
        )
    if services.settings.media_delivery == "redirect":
        return await redirect_response(
            services.storage, media, expires=services.settings.presign_expires
        )
    return await media_response(
        services.storage,
        media,
        method=request.method,
        headers=request.headers,
        private=found.enforce_media_auth,
        chunk_size=services.settings.stream_chunk_bytes,
    )


async def _mp3_media(services: Services, recording: Recording, request: Request) -> MediaObject:
    services.metrics.mp3_cache.labels("hit" if recording.mp3_key else "miss").inc()
    try:
        recording = await unless_disconnected(request, services.transcoder.ensure_mp3(recording))
    except RecordingGone as exc:
        raise _not_found() from exc
    except TranscoderBusy as exc:
        raise ServiceUnavailable("Too many MP3s are being made; try again shortly") from exc
    except TranscodeFailed as exc:
        if exc.permanent:
            raise UnprocessableAudio(exc.message) from exc
        raise ServiceUnavailable(exc.message) from exc
    assert recording.mp3_key and recording.mp3_size is not None and recording.mp3_etag
    return MediaObject(
        key=recording.mp3_key,
        size=recording.mp3_size,
        etag=recording.mp3_etag,
        last_modified=recording.mp3_created_at or recording.date_updated,
        content_type=MP3_TYPE,
        filename=f"{recording.sid}.mp3",
    )


@router.delete(
    INSTANCE_PATH, status_code=204, summary="Delete a recording", responses=INSTANCE_DELETE
)
async def delete_recording(
    account_sid: str, name: str, request: Request, services: ServicesDep
) -> Response:
    await authenticate(services.pool, request.headers.get("authorization"), account_sid)
    sid, suffix = split_name(name)
    split_suffix(suffix, INSTANCE_FORMATS)
    if not is_recording_sid(sid):
        raise _not_found()
    recording = await tombstone_recording(services.pool, account_sid, sid)
    if recording is None:
        raise _not_found()
    if services.settings.deleted_retention_seconds == 0:
        await purge_objects(services, recording)
    return Response(status_code=204)


async def purge_objects(services: Services, recording: Recording) -> None:
    """Remove a tombstoned recording's objects, then its row; `recordings gc` retries failures."""
    keys = [k for k in (recording.wav_key, recording.mp3_key) if k]
    try:
        await services.storage.delete_objects(keys)
    except StorageError as exc:
        log.warning("deleting the objects of %s failed, gc will retry: %s", recording.sid, exc)
        return
    with contextlib.suppress(Exception):
        await purge_recording(services.pool, recording.sid)


@router.options(INSTANCE_PATH, include_in_schema=False)
async def preflight_recording(account_sid: str, name: str) -> Response:
    return Response(
        status_code=204,
        headers={
            **CORS_HEADERS,
            "Allow": "GET, HEAD, DELETE, OPTIONS",
            "Access-Control-Allow-Methods": "GET, HEAD",
            "Access-Control-Allow-Headers": MEDIA_ALLOW_HEADERS,
            "Access-Control-Max-Age": "86400",
        },
    )


async def _list(account_sid: str, suffix: str, request: Request, services: Services) -> Response:
    fmt = split_suffix(suffix, LIST_FORMATS)
    await authenticate(services.pool, request.headers.get("authorization"), account_sid)
    query = parse_list_query(request.scope["query_string"])
    total = await count_recordings(services.pool, account_sid, query.filters)
    num_pages = -(-total // query.page_size)
    page_number = query.page if total else 0
    if total and page_number >= num_pages:
        raise NotFound(f"Page {page_number} is past the last page ({num_pages - 1})")
    recordings = []
    if total:
        recordings = await list_recordings(
            services.pool,
            account_sid,
            query.filters,
            limit=query.page_size,
            offset=page_number * query.page_size,
        )
    base = f"{API_PREFIX}/Accounts/{account_sid}/Recordings{fmt}"
    page = Page(
        recordings=recordings,
        page=page_number,
        page_size=query.page_size,
        total=total,
        uri=page_uri(base, query, page_number),
        first_page_uri=page_uri(base, query, 0),
        previous_page_uri=page_uri(base, query, page_number - 1) if page_number > 0 else None,
        next_page_uri=(
            page_uri(base, query, page_number + 1) if page_number + 1 < num_pages else None
        ),
        last_page_uri=page_uri(base, query, num_pages - 1) if num_pages else None,
    )
    return render_page(page, fmt)


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
