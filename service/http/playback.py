"""A recording's audio as every face serves it: WAV or MP3, streamed or redirected."""

from __future__ import annotations

from fastapi import Request, Response

from db.recordings import MediaLookup, Recording
from service.errors import NotFound, ServiceUnavailable, UnprocessableAudio
from service.http.cors import cors_headers
from service.http.disconnects import unless_disconnected
from service.http.media import (
    MediaObject,
    ObjectStreamResponse,
    StreamPolicy,
    accel_response,
    media_response,
    redirect_response,
)
from service.logs import request_id
from service.mp3.queue import enqueue_mp3, queue_depth
from service.mp3.transcoder import RecordingGone, TranscodeFailed, TranscoderBusy
from service.recordings.objects import CONTENT_TYPES, Kind
from service.services import Services


async def audio_response(
    services: Services, request: Request, found: MediaLookup, kind: Kind
) -> Response:
    """The answer to a GET or HEAD of an authorized recording's WAV or MP3."""
    recording = found.recording
    if kind == "mp3":
        media = await _mp3_media(services, recording, request)
    else:
        media = MediaObject(
            key=recording.wav_key,
            size=recording.wav_size,
            etag=recording.wav_etag,
            last_modified=recording.date_updated,
            content_type=CONTENT_TYPES["wav"],
            filename=f"{recording.sid}.wav",
        )
    settings = services.settings
    cors = cors_headers(request.headers.get("origin"), found.cors_origins)
    if settings.media_delivery == "redirect":
        return await redirect_response(
            services.storage, media, expires=settings.presign_expires, cors=cors
        )
    if settings.media_delivery == "accel":
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
    give_back = services.client_streams.try_take(client)
    if give_back is None:
        raise ServiceUnavailable(
            f"Too many media streams from one address (RECORDINGS_MAX_STREAMS_PER_CLIENT ="
            f" {settings.max_streams_per_client}); try again when one has finished",
            retry_after=2,
        )
    policy = StreamPolicy(
        chunk_size=settings.stream_chunk_bytes,
        send_timeout=settings.stream_send_timeout_seconds,
        release_after=settings.stream_release_after_seconds,
        on_close=give_back,
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
    if not isinstance(response, ObjectStreamResponse):
        give_back()  # a HEAD, a 304: nothing streams
    return response


async def _mp3_media(services: Services, recording: Recording, request: Request) -> MediaObject:
    services.metrics.mp3_cache.labels("hit" if recording.mp3_key else "miss").inc()
    try:
        recording = await unless_disconnected(request, services.transcoder.ensure_mp3(recording))
    except RecordingGone as exc:
        raise NotFound() from exc
    except TranscoderBusy as exc:
        # Queued for the workers, so the retry the client is told to make finds it made.
        wait = await _queue_mp3(services, recording.sid)
        raise ServiceUnavailable(
            "Too many MP3s are being made; this one is queued, try again shortly",
            retry_after=wait,
        ) from exc
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
        content_type=CONTENT_TYPES["mp3"],
        filename=f"{recording.sid}.mp3",
    )


async def _queue_mp3(services: Services, sid: str) -> int:
    """Queue the recording's MP3; seconds until it is likely made, from the queue's depth."""
    try:
        await enqueue_mp3(services.pool, sid, request_id=request_id.get())
        depth = await queue_depth(services.pool)
    except Exception:  # the 503 stands without the estimate: PostgreSQL may be the trouble
        return 5
    # About a second per MP3 per ffmpeg slot at telephone rates, bounded to stay a hint.
    return max(1, min(60, 1 + depth // services.settings.ffmpeg_max_processes))
