"""Audio responses made for browsers: ranges, validators, caching, CORS, streaming from storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import anyio
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from service.errors import PreconditionFailed, RangeNotSatisfiable
from service.http.conditionals import Outcome, Validators, evaluate, if_range_allows
from service.http.ranges import ByteRange, Unsatisfiable, parse_range
from storage.client import ObjectStream, Storage
from storage.errors import StorageUnavailable

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "Accept-Ranges, Content-Length, Content-Range, Content-Disposition, ETag, Last-Modified"
    ),
}
# A SID's audio never changes, so caches may keep it; a day bounds how long a deleted
# recording can outlive its DELETE in a shared cache.
PUBLIC_CACHE = "public, max-age=86400, immutable"
PRIVATE_CACHE = "private, max-age=86400, immutable"


@dataclass(frozen=True)
class MediaObject:
    """One stored audio object as the API serves it."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    content_type: str
    filename: str


class ObjectStreamResponse(StreamingResponse):
    """Streams an open storage GET; the storage connection is released on every exit path."""

    def __init__(
        self, stream: ObjectStream, *, chunk_size: int, status_code: int, headers: dict[str, str]
    ) -> None:
        self._stream = stream
        super().__init__(stream.iter_chunks(chunk_size), status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Starlette cancels the stream when the client leaves; shielded, the close still runs.
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
                await self._stream.aclose()


def media_headers(media: MediaObject, *, private: bool) -> dict[str, str]:
    """The headers every answer about this object carries (200, 206, 304, HEAD)."""
    validators = Validators(media.etag, media.last_modified)
    return {
        "Accept-Ranges": "bytes",
        "ETag": media.etag,
        "Last-Modified": validators.last_modified_header,
        "Cache-Control": PRIVATE_CACHE if private else PUBLIC_CACHE,
        "Content-Disposition": f'inline; filename="{media.filename}"',
        **CORS_HEADERS,
    }


async def redirect_response(storage: Storage, media: MediaObject, *, expires: int) -> Response:
    """A 307 to a presigned storage URL: storage then answers ranges and conditionals itself."""
    url = await storage.presign_get(
        media.key,
        expires,
        content_type=media.content_type,
        content_disposition=f'inline; filename="{media.filename}"',
    )
    # The URL expires, so neither the redirect nor its target may be cached for longer.
    return Response(
        status_code=307,
        headers={"Location": url, "Cache-Control": "private, no-store", **CORS_HEADERS},
    )


async def media_response(
    storage: Storage,
    media: MediaObject,
    *,
    method: str,
    headers: Mapping[str, str],
    private: bool,
    chunk_size: int,
) -> Response:
    """The 200/206/304 answer to a GET or HEAD of ``media``."""
    validators = Validators(media.etag, media.last_modified)
    base = media_headers(media, private=private)
    request_headers = {k: headers[k] for k in _CONDITIONAL if k in headers}
    outcome = evaluate(request_headers, validators)
    if outcome is Outcome.NOT_MODIFIED:
        return Response(status_code=304, headers=base)
    if outcome is Outcome.PRECONDITION_FAILED:
        raise PreconditionFailed()

    wanted: ByteRange | Unsatisfiable | None = None
    if if_range_allows(headers.get("if-range"), validators):
        wanted = parse_range(headers.get("range"), media.size)
    if isinstance(wanted, Unsatisfiable):
        raise RangeNotSatisfiable(media.size)

    out = {**base, "Content-Type": media.content_type}
    status = 200
    if wanted is not None:
        status = 206
        out["Content-Range"] = wanted.content_range
        out["Content-Length"] = str(wanted.length)
    else:
        out["Content-Length"] = str(media.size)
    if method == "HEAD" or media.size == 0:
        return Response(status_code=status, headers=out)
    if wanted is None:
        stream = await storage.open_object(media.key)
    else:
        stream = await storage.open_object(media.key, wanted.first, wanted.last)
    expected = media.size if wanted is None else wanted.length
    if stream.content_length != expected:
        await stream.aclose()
        raise StorageUnavailable(
            f"{media.key}: stored {stream.content_length}, expected {expected}"
        )
    return ObjectStreamResponse(stream, chunk_size=chunk_size, status_code=status, headers=out)


_CONDITIONAL = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
