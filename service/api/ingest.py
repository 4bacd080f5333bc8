"""The voice platform's upload endpoint, outside the Twilio paths, guarded by a service token."""

from __future__ import annotations

import hmac
import logging
import tempfile
from pathlib import Path

import anyio
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from db.accounts import fetch_account
from service.api.openapi import INGEST_PARAMETERS, INGEST_POST
from service.api.responses import render_recording, split_suffix
from service.audio import AudioError
from service.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnprocessableAudio,
)
from service.ingest import ingest_file, parse_timestamp
from service.listing import parse_query_string
from service.sids import is_account_sid, is_call_sid
from service.state import ServicesDep

log = logging.getLogger(__name__)
router = APIRouter()


def _check_token(expected: str | None, header: str | None) -> None:
    if not expected:
        raise NotFound("Ingest is disabled: set RECORDINGS_INGEST_TOKEN to enable it")
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise Unauthorized("A valid ingest token is required (Authorization: Bearer ...)")


async def _spool(request: Request, target: Path, limit: int) -> int:
    """Write the streamed body to disk, never more than ``limit`` bytes."""
    written = 0
    async with await anyio.open_file(target, "wb") as out:
        try:
            async for chunk in request.stream():
                written += len(chunk)
                if written > limit:
                    raise PayloadTooLarge(f"The upload exceeds the limit of {limit} bytes")
                await out.write(chunk)
        except ClientDisconnect as exc:
            raise BadRequest("The upload was cut short") from exc
    return written


@router.post(
    "/internal/Accounts/{account_sid}/Recordings{suffix}",
    status_code=201,
    summary="Upload a call recording (voice platform only)",
    responses=INGEST_POST,
    openapi_extra=INGEST_PARAMETERS,
)
@router.post(
    "/internal/Accounts/{account_sid}/Recordings",
    status_code=201,
    include_in_schema=False,
)
async def ingest_recording(
    account_sid: str, request: Request, services: ServicesDep, suffix: str = ""
) -> Response:
    settings = services.settings
    _check_token(settings.ingest_token, request.headers.get("authorization"))
    fmt = split_suffix(suffix, {"", ".xml", ".json"})
    if not is_account_sid(account_sid):
        raise NotFound("Unknown AccountSid")
    params = dict(parse_query_string(request.scope["query_string"]))
    call_sid = params.get("CallSid", "")
    if not is_call_sid(call_sid):
        raise BadRequest("CallSid is required and must be a valid Call SID")
    date_created = None
    if params.get("DateCreated"):
        try:
            date_created = parse_timestamp(params["DateCreated"])
        except ValueError as exc:
            raise BadRequest(f"DateCreated is not a valid timestamp: {exc}") from exc
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"The upload exceeds the limit of {settings.max_upload_bytes} bytes")
    if await fetch_account(services.pool, account_sid) is None:
        raise NotFound("Unknown AccountSid")

    with tempfile.TemporaryDirectory(prefix="ingest-", dir=settings.tmp_dir) as tmp:
        workdir = Path(tmp)
        upload = workdir / "upload"
        size = await _spool(request, upload, settings.max_upload_bytes)
        if size == 0:
            raise BadRequest("The request body is empty: send the audio as the body")
        try:
            recording = await ingest_file(
                services.pool,
                services.storage,
                source=upload,
                workdir=workdir,
                account_sid=account_sid,
                call_sid=call_sid,
                date_created=date_created,
                ffmpeg=settings.ffmpeg_path,
                ffmpeg_timeout=settings.ffmpeg_timeout,
                enqueue_mp3=settings.transcode_on_ingest,
            )
        except AudioError as exc:
            log.warning("rejected upload for %s: %s (%s)", account_sid, exc.message, exc.detail)
            raise UnprocessableAudio(exc.message) from exc
    return render_recording(recording, fmt, status_code=201)
