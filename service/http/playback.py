"""A recording's audio as every face serves it: WAV or MP3, streamed or redirected."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Response

from db.recordings import MediaLookup, Recording
from service.encryption.cipher import CIPHERTEXT_TYPE
from service.errors import (
    NotFound,
    RecordingEncrypted,
    ServiceUnavailable,
    TooManyRequests,
    UnprocessableAudio,
)
from service.http.cors import cors_headers
from service.http.disconnects import unless_disconnected
from service.http.media import (
    MediaObject,
    SpanStreamResponse,
    StreamPolicy,
    accel_response,
    media_response,
    redirect_response,
)
from service.limits import ClientSlot, Refusal
from service.logs import request_id
from service.mp3.mixes import MixKind
from service.mp3.queue import enqueue_mp3, queue_depth
from service.mp3.transcoder import HeldMp3, RecordingGone, TranscodeFailed, TranscoderBusy
from service.recordings.channels import mixed_to_mono, parse_requested_channels
from service.recordings.objects import CONTENT_TYPES, Kind
from service.services import Services


async def audio_response(
    services: Services, request: Request, found: MediaLookup, kind: Kind
) -> Response:
    """The answer to a GET or HEAD of an authorized recording's WAV or MP3, in the channels
    its RequestedChannels (and its source) call for."""
    recording = found.recording
    settings = services.settings
    encrypted = recording.encryption_details is not None
    requested = parse_requested_channels(request.query_params.get("RequestedChannels"))
    mixed = mixed_to_mono(recording, requested)
    if encrypted:
        # Only the key's holder can decode the audio: there is nothing to transcode or mix, and
        # a recording that mixes by default (a conference's) is served as stored.
        if kind == "mp3" or (mixed and requested == 1):
            raise RecordingEncrypted()
    elif mixed:
        mix = await _mix_media(services, recording, request, "mp3" if kind == "mp3" else "wav")
        return await _answer(services, request, found, mix, _nothing_held)
    if kind == "mp3":
        # Only this process can read a just-made MP3's file: nginx and browsers get it stored.
        local_ok = settings.media_delivery == "proxy"
        media, release = await _mp3_media(services, recording, request, local_ok=local_ok)
        try:
            return await _answer(services, request, found, media, release)
        except BaseException:
            release()
            raise
    media = MediaObject(
        key=recording.wav_key,
        size=recording.wav_size,
        etag=recording.wav_etag,
        last_modified=recording.date_updated,
        # An encrypted recording's object is its ciphertext, served byte for byte (ranges and
        # validators on those bytes): not audio a browser should try to play.
        content_type=CIPHERTEXT_TYPE if encrypted else CONTENT_TYPES["wav"],
        filename=f"{recording.sid}.wav.enc" if encrypted else f"{recording.sid}.wav",
    )
    return await _answer(services, request, found, media, _nothing_held)


def _nothing_held() -> None:
    pass


async def _answer(
    services: Services,
    request: Request,
    found: MediaLookup,
    media: MediaObject,
    release: Callable[[], None],
) -> Response:
    """``media`` as the service's delivery mode sends it; ``release`` is called once nothing
    reads ``media.local_path`` any more (at once, unless a body streams from it)."""
    settings = services.settings
    cors = cors_headers(request.headers.get("origin"), found.cors_origins)
    if settings.media_delivery == "redirect":
        release()
        return await redirect_response(
            services.storage, media, expires=settings.presign_expires, cors=cors
        )
    if settings.media_delivery == "accel":
        release()
        # nginx streams the body: no per-client stream slot is held here.
        return await accel_response(
            services.storage,
            media,
            method=request.method,
            headers=request.headers,
            private=found.enforce_media_auth,
            expires=settings.presign_expires,
            cors=cors,
        )
    client = request.client.host if request.client else "unknown"
    slot = await client_slot(services, client)
    give_back = slot.give_back

    def close() -> None:
        give_back()
        release()

    policy = StreamPolicy(
        chunk_size=settings.stream_chunk_bytes,
        send_timeout=settings.stream_send_timeout_seconds,
        release_after=settings.stream_release_after_seconds,
        on_close=close,
        watch=slot,
    )
    try:
        response = await media_response(
            services.storage,
            media,
            method=request.method,
            headers=request.headers,
            private=found.enforce_media_auth,
            policy=policy,
            cors=cors,
        )
    except BaseException:
        give_back()
        raise
    if not isinstance(response, SpanStreamResponse):
        close()  # a HEAD, a 304: nothing streams
    return response


async def client_slot(services: Services, client: str) -> ClientSlot:
    """A media stream slot of this client address, or the refusal that says why not."""
    settings = services.settings
    # Past the share, wait for one of the address's streams to end, and long enough for its
    # streams to show whether they stall (they do after stream_release_after_seconds).
    wait = settings.stream_release_after_seconds + 0.5
    slot = await services.client_streams.take(client, wait=wait)
    if slot is Refusal.OVER_SHARE:
        services.metrics.stream_refusals.labels("over_share").inc()
        raise TooManyRequests(
            f"Too many media streams from one address (RECORDINGS_MAX_STREAMS_PER_CLIENT ="
            f" {settings.max_streams_per_client}); try again when one has finished",
            retry_after=1,
        )
    if slot is Refusal.STALLED:
        # Streams opened and not read hold this process's room: its own overload, as before.
        services.metrics.stream_refusals.labels("stalled").inc()
        raise ServiceUnavailable(
            "Too many media streams from one address that take no bytes"
            f" (RECORDINGS_MAX_STALLED_STREAMS_PER_CLIENT = "
            f"{settings.max_stalled_streams_per_client}); try again when one has finished",
            retry_after=2,
        )
    return slot


async def _mp3_media(
    services: Services, recording: Recording, request: Request, *, local_ok: bool
) -> tuple[MediaObject, Callable[[], None]]:
    """The MP3 to send, made first when missing, and what to call once it is sent: with
    ``local_ok``, a just-made MP3 is read from its file while it is being stored."""
    services.metrics.mp3_cache.labels("hit" if recording.mp3_key else "miss").inc()
    transcoder = services.transcoder
    made = transcoder.mp3_to_serve(recording) if local_ok else transcoder.ensure_mp3(recording)
    try:
        ready = await unless_disconnected(request, made)
    except RecordingGone as exc:
        raise NotFound() from exc
    except TranscoderBusy as exc:
        # Queued for the workers, so the retry the client is told to make finds it made.
        wait = await _queue_mp3(services, recording.account_sid, recording.sid)
        raise ServiceUnavailable(
            "Too many MP3s are being made; this one is queued, try again shortly",
            retry_after=wait,
        ) from exc
    except TranscodeFailed as exc:
        if exc.permanent:
            raise UnprocessableAudio(exc.message) from exc
        raise ServiceUnavailable(exc.message) from exc
    release, local_path = _nothing_held, None
    if isinstance(ready, HeldMp3):
        release, local_path, ready = ready.release, ready.path, ready.recording
    assert ready.mp3_key and ready.mp3_size is not None and ready.mp3_etag
    media = MediaObject(
        key=ready.mp3_key,
        size=ready.mp3_size,
        etag=ready.mp3_etag,
        last_modified=ready.mp3_created_at or ready.date_updated,
        content_type=CONTENT_TYPES["mp3"],
        filename=f"{ready.sid}.mp3",
        local_path=local_path,
    )
    return media, release


async def _mix_media(
    services: Services, recording: Recording, request: Request, kind: MixKind
) -> MediaObject:
    """The recording's mono mix of this kind, made first when missing."""
    try:
        mix = await unless_disconnected(request, services.mixes.mono(recording, kind))
    except RecordingGone as exc:
        raise NotFound() from exc
    except TranscoderBusy as exc:
        raise ServiceUnavailable("Too many mixes are being made; try again shortly") from exc
    except TranscodeFailed as exc:
        if exc.permanent:
            raise UnprocessableAudio(exc.message) from exc
        raise ServiceUnavailable(exc.message) from exc
    return MediaObject(
        key=mix.key,
        size=mix.size,
        etag=mix.etag,
        last_modified=mix.created_at,
        content_type=mix.content_type,
        filename=f"{recording.sid}.{kind}",
    )


async def _queue_mp3(services: Services, account_sid: str, sid: str) -> int:
    """Queue the recording's MP3; seconds until it is likely made, from the queue's depth."""
    try:
        await enqueue_mp3(services.pool, account_sid, sid, request_id=request_id.get())
        depth = await queue_depth(services.pool)
    except Exception:  # the 503 stands without the estimate: PostgreSQL may be the trouble
        return 5
    # About a second per MP3 per ffmpeg slot at telephone rates, bounded to stay a hint.
    return max(1, min(60, 1 + depth // services.settings.ffmpeg_max_processes))
