"""``Peaks.json``: a recording's waveform as audiowaveform JSON, under the media's access rule,
made on the first request that finds none (or waiting for the run already going)."""

from __future__ import annotations

from fastapi import Request, Response

from db.recordings import MediaLookup
from service.errors import (
    BadRequest,
    NotFound,
    PreconditionFailed,
    RecordingEncrypted,
    ServiceUnavailable,
    UnprocessableAudio,
)
from service.http.conditionals import Outcome, Validators, evaluate
from service.http.cors import cors_headers
from service.http.disconnects import unless_disconnected
from service.http.media import PRIVATE_CACHE, PUBLIC_CACHE
from service.http.query import parse_query_string
from service.peaks.maker import PeaksBusy, PeaksFailed, PeaksGone
from service.peaks.waveform import BITS, parse_waveform
from service.services import Services

JSON_TYPE = "application/json"


def parse_bits(raw: bytes) -> int:
    """``?bits=8`` or ``16`` (the default, as stored)."""
    for key, value in parse_query_string(raw):
        if key == "bits":
            if value not in {str(b) for b in BITS}:
                raise BadRequest("bits must be 8 or 16")
            return int(value)
    return 16


async def peaks_response(services: Services, request: Request, found: MediaLookup) -> Response:
    """The answer to a GET of an authorized recording's peaks."""
    bits = parse_bits(request.scope["query_string"])
    if found.recording.encryption_details is not None:
        raise RecordingEncrypted(
            "The recording is encrypted: it has no waveform (only the holder of the private key"
            " can decode its audio)"
        )
    try:
        stored = await unless_disconnected(request, services.peaks.ensure_peaks(found.recording))
    except PeaksGone as exc:
        raise NotFound() from exc
    except PeaksBusy as exc:
        raise ServiceUnavailable("Too many waveforms are being made; try again shortly") from exc
    except PeaksFailed as exc:
        if exc.permanent:
            raise UnprocessableAudio(exc.message) from exc
        raise ServiceUnavailable(exc.message) from exc
    # Each resolution is its own representation, with its own strong validator.
    etag = stored.etag if bits == 16 else f'{stored.etag[:-1]}-{bits}"'
    validators = Validators(etag, stored.created_at)
    headers = {
        **cors_headers(request.headers.get("origin"), found.cors_origins),
        "ETag": etag,
        "Last-Modified": validators.last_modified_header,
        "Cache-Control": PRIVATE_CACHE if found.enforce_media_auth else PUBLIC_CACHE,
    }
    outcome = evaluate(dict(request.headers), validators)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed()
    if outcome is Outcome.NOT_MODIFIED:
        return Response(status_code=304, headers=headers)
    body = await services.peaks.read_peaks(stored)
    if bits != 16:
        body = parse_waveform(body).to_json(bits)
    return Response(body, media_type=JSON_TYPE, headers=headers)
