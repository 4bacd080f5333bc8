"""Fetching a recording's media from the source into a local file, as Twilio serves it:
redirects to a storage host that refuses our credentials, two channels only when asked,
transfers that end before their Content-Length."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import BinaryIO, Literal
from urllib.parse import urljoin, urlsplit

import httpx

from service.imports.retries import Retryable, SourceError, check_status

CHUNK = 256 * 1024
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class Fetched:
    """What was read: its size, and the SHA-256 of exactly those bytes."""

    size: int
    sha256: str


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return (parts.scheme, parts.hostname or "", parts.port)


def media_params(channels: int) -> dict[str, str]:
    """Query parameters of a media GET: a two-channel recording is a mono mix without them."""
    return {"RequestedChannels": "2"} if channels == 2 else {}


async def _follow(
    http: httpx.AsyncClient,
    method: Literal["GET"],
    url: str,
    auth: tuple[str, str],
    params: dict[str, str] | None,
    *,
    ranged: bool = False,
) -> httpx.Response:
    """The answer at the end of the redirects, opened as a stream (close it)."""
    first = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        # Basic credentials go to the source's own host only: Twilio redirects media to a
        # storage host whose signed URLs are refused when an Authorization header comes along.
        headers = {"Range": "bytes=0-0"} if ranged else None
        request = http.build_request(method, url, params=params, headers=headers)
        credentials = httpx.BasicAuth(*auth) if _origin(url) == first else None
        try:
            response = await http.send(request, stream=True, auth=credentials)
        except httpx.TransportError as exc:
            raise Retryable(f"media: {type(exc).__name__}") from exc
        if response.is_redirect and "location" in response.headers:
            await response.aclose()
            url = urljoin(str(response.url), response.headers["location"])
            # The redirect's URL is complete; our parameters were for the first host. (None, not
            # {}: httpx replaces a URL's whole query with any params given, even empty ones.)
            params = None
            continue
        return response
    raise SourceError(f"media: more than {MAX_REDIRECTS} redirects")


async def media_size(
    http: httpx.AsyncClient, url: str, auth: tuple[str, str], channels: int
) -> int | None:
    """The media's size (for --dry-run), from a GET of its first byte; None when the source
    does not say. Not a HEAD: a storage URL signed for GET refuses any other method."""
    response = await _follow(http, "GET", url, auth, media_params(channels), ranged=True)
    await response.aclose()
    check_status(response.status_code, response.headers, "media")
    total = response.headers.get("content-range", "").rpartition("/")[2]
    if response.status_code == 206 and total.isdigit():
        return int(total)
    length = response.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


async def fetch_media(
    http: httpx.AsyncClient, url: str, auth: tuple[str, str], channels: int, dest: BinaryIO
) -> Fetched:
    """Write the media into ``dest`` (from its start) and measure it; one attempt.

    Raises Retryable for what another attempt may mend (a transfer cut short, a reset, a
    429 or 5xx), SourceError for the rest.
    """
    response = await _follow(http, "GET", url, auth, media_params(channels))
    try:
        check_status(response.status_code, response.headers, "media")
        dest.seek(0)
        dest.truncate()
        digest = hashlib.sha256()
        size = 0
        try:
            async for chunk in response.aiter_raw(CHUNK):
                # Small writes to a local file land in the page cache: not worth a thread each.
                dest.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        except httpx.TransportError as exc:
            raise Retryable(f"media: transfer cut short after {size} bytes") from exc
        expected = response.headers.get("content-length")
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise Retryable(f"media: {size} of {expected} bytes received")
        if size == 0:
            raise SourceError("media: empty")
        dest.flush()
        return Fetched(size, digest.hexdigest())
    finally:
        await response.aclose()
