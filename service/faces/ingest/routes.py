"""The voice platform's upload endpoint, outside the Twilio paths, guarded by a service token."""

from __future__ import annotations

import errno
import hmac
import logging
import tempfile
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import anyio
from fastapi import APIRouter, Request, Response
from starlette.requests import ClientDisconnect

from db.accounts import fetch_account
from db.recordings import Recording
from service.audio.ffmpeg import FfmpegBusy
from service.audio.probe import AudioError
from service.callbacks.guard import UrlRefused
from service.callbacks.outbox import CallbackTarget, check_target
from service.errors import (
    BadRequest,
    InsufficientStorage,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TokenRequired,
    UnprocessableAudio,
    UnsupportedMediaType,
)
from service.faces.ingest.openapi import INGEST_PARAMETERS, INGEST_POST
from service.faces.v2008.responses import render_recording, split_suffix
from service.http.deps import ServicesDep
from service.http.disconnects import unless_disconnected
from service.http.query import parse_query_string
from service.ingest import idempotency, receiver
from service.ingest.pipeline import (
    DEFAULT_SOURCE,
    SOURCES,
    Sealing,
    Upload,
    ingest_file,
    ingest_streamed,
    sealing_of,
)
from service.ingest.receiver import Received
from service.services import Services
from service.settings import Settings
from service.sids import is_account_sid, is_call_sid, is_conference_sid
from service.timestamps import InvalidTimestamp, parse_timestamp

log = logging.getLogger(__name__)
router = APIRouter()
# What a browser form or `curl -F` sends: the audio wrapped, which ffmpeg cannot decode. (A
# urlencoded type says nothing: `curl --data-binary` labels raw bytes so by default.)
_FORMS = ("multipart/",)
# How long a retry waits for the first request with its Idempotency-Key to answer.
KEY_WAIT_SECONDS = 60.0


def check_token(expected: str | None, header: str | None) -> None:
    if not expected:
        raise NotFound("Ingest is disabled: set RECORDINGS_INGEST_TOKEN to enable it")
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode(), expected.encode()
    ):
        raise TokenRequired()


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes]:
    """The streamed body, refused past ``limit`` bytes."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"The upload exceeds the limit of {limit} bytes")
        yield chunk


async def _receive(
    services: Services, request: Request, account_sid: str, spool: Path, sealing: Sealing
) -> Received:
    """The whole body, spooled to ``spool`` or (a long PCM WAV of an account that stores in
    the clear, with its size announced) already streamed to storage."""
    length = request.headers.get("content-length")
    streamable = sealing.key is None and length is not None and length.isdigit()
    body = _limited(request, services.settings.max_upload_bytes)
    try:
        return await receiver.receive(
            services.storage,
            account_sid,
            body,
            spool,
            stream_size=int(length) if streamable and length else None,
            slots=services.ingest_streams,
        )
    except ClientDisconnect as exc:
        raise BadRequest("The upload was cut short") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage() from exc
        raise
    finally:
        await body.aclose()


def _timestamp(params: dict[str, str], name: str) -> datetime | None:
    if not params.get(name):
        return None
    try:
        return parse_timestamp(params[name])
    except InvalidTimestamp as exc:
        raise BadRequest(f"{name} is not a valid timestamp: {exc}") from exc


async def _status_callback(params: dict[str, str], settings: Settings) -> CallbackTarget | None:
    url = params.get("RecordingStatusCallback") or None
    method = params.get("RecordingStatusCallbackMethod") or None
    if method is not None and method.upper() not in ("POST", "GET"):
        raise BadRequest("RecordingStatusCallbackMethod must be POST or GET")
    if url is None:
        return None
    try:
        return await check_target(url, method, allow_private=settings.webhook_allow_private)
    except UrlRefused as exc:
        raise BadRequest(f"RecordingStatusCallback is refused: {exc}") from exc


def _parse_upload(account_sid: str, params: dict[str, str]) -> Upload:
    call_sid = params.get("CallSid", "")
    if not is_call_sid(call_sid):
        raise BadRequest("CallSid is required and must be a valid Call SID")
    source = params.get("Source") or DEFAULT_SOURCE
    if source not in SOURCES:
        raise BadRequest(f"Source must be one of {', '.join(SOURCES)}")
    conference_sid = params.get("ConferenceSid") or None
    if conference_sid is not None and not is_conference_sid(conference_sid):
        raise BadRequest("ConferenceSid must be a valid Conference SID (CF and 32 hex digits)")
    return Upload(
        account_sid=account_sid,
        call_sid=call_sid,
        date_created=_timestamp(params, "DateCreated"),
        source=source,
        start_time=_timestamp(params, "StartTime"),
        conference_sid=conference_sid,
    )


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
    check_token(settings.ingest_token, request.headers.get("authorization"))
    fmt = split_suffix(suffix, {"", ".xml", ".json"})
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(_FORMS):
        raise UnsupportedMediaType(
            "Send the audio itself as the request body (curl --data-binary @file.wav),"
            " not as a form"
        )
    if not is_account_sid(account_sid):
        raise NotFound("Unknown AccountSid")
    pairs = parse_query_string(request.scope["query_string"])
    params = dict(pairs)
    upload = replace(
        _parse_upload(account_sid, params),
        status_callback=await _status_callback(params, settings),
        base_url=str(request.base_url),
    )
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes:
        raise PayloadTooLarge(f"The upload exceeds the limit of {settings.max_upload_bytes} bytes")
    offered_key = request.headers.get("idempotency-key")
    key = idempotency.check_key(offered_key) if offered_key is not None else None
    if await fetch_account(services.pool, account_sid) is None:
        raise NotFound("Unknown AccountSid")
    # Before the body: what the ingest asks of PostgreSQL once the audio is in is the INSERT.
    sealing = await sealing_of(services.pool, account_sid)

    with tempfile.TemporaryDirectory(prefix="ingest-", dir=settings.tmp_dir) as tmp:
        workdir = Path(tmp)
        received = await _receive(services, request, account_sid, workdir / "upload", sealing)
        try:
            return await _answer(
                services, request, upload, received, workdir, sealing, fmt, key, pairs
            )
        finally:
            # An upload streamed to storage and not made a recording (refused, replayed, cut
            # short) is dropped now, not left for `recordings gc`.
            await received.discard()


async def _answer(
    services: Services,
    request: Request,
    upload: Upload,
    received: Received,
    workdir: Path,
    sealing: Sealing,
    fmt: str,
    key: str | None,
    pairs: list[tuple[str, str]],
) -> Response:
    """The answer to an upload whose body is in: its new recording, or a replayed answer."""
    account_sid = upload.account_sid
    if received.size == 0:
        raise BadRequest("The request body is empty: send the audio as the body")
    if key is None:
        recording = await _ingest(services, request, upload, received, workdir, sealing)
        return render_recording(recording, fmt, status_code=201)
    first = await idempotency.claim(
        services.pool,
        account_sid,
        key,
        idempotency.request_digest(fmt, pairs, received.sha256),
        wait=KEY_WAIT_SECONDS,
    )
    if first is not None:
        return Response(
            first.body,
            first.status,
            media_type=first.content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        recording = await _ingest(services, request, upload, received, workdir, sealing)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await idempotency.release(services.pool, account_sid, key)
        raise
    answer = render_recording(recording, fmt, status_code=201)
    await idempotency.remember(
        services.pool,
        account_sid,
        key,
        idempotency.Answer(answer.status_code, answer.media_type or "", bytes(answer.body)),
    )
    return answer


async def _ingest(
    services: Services,
    request: Request,
    upload: Upload,
    received: Received,
    workdir: Path,
    sealing: Sealing,
) -> Recording:
    """The recording the received body makes, or the service's error for why not."""
    if received.streamed is not None:
        making = ingest_streamed(
            services, upload, received.streamed, received.size, received.sha256
        )
    else:
        assert received.path is not None
        making = ingest_file(
            services, upload, received.path, workdir, sealing=sealing, sha256=received.sha256.hex()
        )
    try:
        # A platform that gave up waiting retries: finishing this one would store it twice.
        return await unless_disconnected(request, making)
    except AudioError as exc:
        log.warning("rejected upload for %s: %s (%s)", upload.account_sid, exc.message, exc.detail)
        raise UnprocessableAudio(exc.message) from exc
    except FfmpegBusy as exc:
        raise ServiceUnavailable(
            "Too many uploads are being decoded; try again shortly", retry_after=2
        ) from exc
