"""A Twilio-like source for `recordings import-twilio`, made of a second instance of this
service and two small hosts in front of it that behave as Twilio's do:

- the API host forwards the 2010-04-01 API to the service, and injects what Twilio's list
  calls do on a bad day: a 429 with code 20429 and Retry-After, a connection broken mid-page;
  it answers media requests with a 302 to the storage host, as api.twilio.com does;
- the storage host serves the media, refuses any request that carries an Authorization header
  (signed storage URLs do), downmixes a two-channel recording to mono unless
  RequestedChannels=2, and can cut a transfer short of its Content-Length once.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import wave
from array import array
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from tests.support.stack import UvicornThread

_LIST = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings\.json")
_MEDIA = re.compile(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-f]{32})")


class ConnectionBroken(Exception):
    """Raised by a stub after part of a body: uvicorn then drops the connection."""


@dataclass
class Faults:
    """What the stubs do, and what they saw (read by the tests)."""

    # List call number (1-based) -> "429" or "reset".
    list_faults: dict[int, str] = field(default_factory=dict)
    # The page size the API host forces on list calls, so a few recordings make many pages.
    page_size: int = 3
    # Status and price shown for some SIDs instead of the service's own.
    statuses: dict[str, str] = field(default_factory=dict)
    prices: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Subaccounts of the account whose credentials the importer uses: AccountSid -> (its
    # AuthToken at the source service). The parent's credentials reach their paths, as at Twilio.
    subaccounts: dict[str, str] = field(default_factory=dict)
    parent: tuple[str, str] | None = None
    # Media: SIDs cut short once, SIDs that answer 404, a delay before each media answer.
    cut_once: set[str] = field(default_factory=set)
    gone: set[str] = field(default_factory=set)
    media_delay: float = 0.0
    # Seen:
    list_calls: int = 0
    served_429: int = 0
    served_resets: int = 0
    served_cuts: int = 0
    auth_refused: int = 0
    media_gets: Counter[str] = field(default_factory=Counter)
    ranged_gets: int = 0
    requested_channels: dict[str, str | None] = field(default_factory=dict)


async def _partial(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
    raise ConnectionBroken("cut short on purpose")


class ApiHost:
    """The API host: the service's 2010 face, with list faults and media redirects."""

    def __init__(self, source_url: str, storage_url: str, faults: Faults) -> None:
        self.source_url = source_url
        self.storage_url = storage_url
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        path = request.url.path
        if (match := _MEDIA.fullmatch(path)) and request.method in ("GET", "HEAD"):
            if "authorization" not in request.headers:
                await JSONResponse({"code": 20003, "status": 401}, 401)(scope, receive, send)
                return
            query = "?Signature=stub"
            channels = request.query_params.get("RequestedChannels")
            if channels:
                query += f"&RequestedChannels={channels}"
            location = f"{self.storage_url}/{match[1]}/{match[2]}.wav{query}"
            await Response(status_code=302, headers={"Location": location})(scope, receive, send)
            return
        if path == "/2010-04-01/Accounts.json" and request.method == "GET":
            await JSONResponse(self._accounts())(scope, receive, send)
            return
        params = dict(request.query_params)
        listing = _LIST.fullmatch(path) is not None and request.method == "GET"
        if listing:
            self.faults.list_calls += 1
            fault = self.faults.list_faults.get(self.faults.list_calls)
            if fault == "429":
                self.faults.served_429 += 1
                body = {
                    "code": 20429,
                    "message": "Too Many Requests",
                    "more_info": "https://www.twilio.com/docs/errors/20429",
                    "status": 429,
                }
                await JSONResponse(body, 429, headers={"Retry-After": "1"})(scope, receive, send)
                return
            if "PageSize" in params:
                params["PageSize"] = str(self.faults.page_size)
        async with httpx.AsyncClient(base_url=self.source_url, timeout=30) as http:
            upstream = await http.request(
                request.method,
                path,
                params=params,
                content=await request.body(),
                headers=self._upstream_headers(request),
            )
        body = upstream.content
        if listing and upstream.status_code == 200:
            page = json.loads(body)
            for item in page["recordings"]:
                item["status"] = self.faults.statuses.get(item["sid"], item["status"])
                if item["sid"] in self.faults.prices:
                    item["price"], item["price_unit"] = self.faults.prices[item["sid"]]
            body = json.dumps(page).encode()
        headers = [
            (b"content-type", upstream.headers.get("content-type", "application/json").encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        if listing and self.faults.list_faults.get(self.faults.list_calls) == "reset":
            self.faults.served_resets += 1
            await _partial(send, upstream.status_code, headers, body)
        await send(
            {"type": "http.response.start", "status": upstream.status_code, "headers": headers}
        )
        await send({"type": "http.response.body", "body": body})

    def _accounts(self) -> dict[str, object]:
        """Twilio's Accounts.json page: the parent and its subaccounts."""
        assert self.faults.parent is not None
        sids = [self.faults.parent[0], *self.faults.subaccounts]
        tokens = {self.faults.parent[0]: self.faults.parent[1], **self.faults.subaccounts}
        return {
            "accounts": [
                {"sid": sid, "auth_token": tokens[sid], "status": "active", "friendly_name": sid}
                for sid in sids
            ],
            "end": len(sids) - 1,
            "first_page_uri": "/2010-04-01/Accounts.json?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": "/2010-04-01/Accounts.json?PageSize=50&Page=0",
        }

    def _upstream_headers(self, request: Request) -> dict[str, str]:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("authorization", "content-type", "accept")
        }
        # The source service knows no parent accounts: a subaccount's path is reached with the
        # subaccount's own credentials in place of the parent's.
        match = re.match(r"/2010-04-01/Accounts/(AC[0-9a-f]{32})/", request.url.path)
        if match and match[1] in self.faults.subaccounts:
            token = self.faults.subaccounts[match[1]]
            pair = base64.b64encode(f"{match[1]}:{token}".encode()).decode()
            headers["authorization"] = f"Basic {pair}"
        return headers


def _mono_mix(wav_bytes: bytes) -> bytes:
    """The average of both channels of a 16-bit two-channel WAV, as one channel."""
    with wave.open(io.BytesIO(wav_bytes)) as stereo:
        assert stereo.getsampwidth() == 2
        rate = stereo.getframerate()
        samples = array("h", stereo.readframes(stereo.getnframes()))
    mixed = array("h", ((a + b) // 2 for a, b in zip(samples[::2], samples[1::2], strict=True)))
    out = io.BytesIO()
    with wave.open(out, "wb") as mono:
        mono.setnchannels(1)
        mono.setsampwidth(2)
        mono.setframerate(rate)
        mono.writeframes(mixed.tobytes())
    return out.getvalue()


def _channels(wav_bytes: bytes) -> int:
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        return wav.getnchannels()


class StorageHost:
    """The storage host media is redirected to: no Authorization accepted, Twilio's channels
    rule, and a transfer cut short once for chosen SIDs."""

    def __init__(self, source_url: str, faults: Faults) -> None:
        self.source_url = source_url
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = Request(scope, receive)
        if "authorization" in request.headers:
            # What S3 says to a presigned URL that also carries a header of credentials.
            self.faults.auth_refused += 1
            body = b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed"
            await Response(body + b"</Message></Error>", 400)(scope, receive, send)
            return
        account_sid, _, name = request.url.path.strip("/").partition("/")
        sid = name.removesuffix(".wav")
        if sid in self.faults.gone:
            await Response(b"", 404)(scope, receive, send)
            return
        if self.faults.media_delay:
            await asyncio.sleep(self.faults.media_delay)
        async with httpx.AsyncClient(base_url=self.source_url, timeout=30) as http:
            upstream = await http.get(f"/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.wav")
        if upstream.status_code != 200:
            await Response(b"", upstream.status_code)(scope, receive, send)
            return
        requested = request.query_params.get("RequestedChannels")
        body = upstream.content
        # An encrypted recording's media is its ciphertext, served as it is.
        if body[:4] == b"RIFF" and _channels(body) == 2 and requested != "2":
            body = _mono_mix(body)
        headers = [(b"content-type", b"audio/x-wav"), (b"content-length", str(len(body)).encode())]
        if request.headers.get("range") == "bytes=0-0":
            # What S3 answers a one-byte range: how --dry-run sizes media without fetching it.
            self.faults.ranged_gets += 1
            ranged = [
                (b"content-type", b"audio/x-wav"),
                (b"content-length", b"1"),
                (b"content-range", f"bytes 0-0/{len(body)}".encode()),
            ]
            await send({"type": "http.response.start", "status": 206, "headers": ranged})
            await send({"type": "http.response.body", "body": body[:1]})
            return
        if request.method == "HEAD":
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        self.faults.media_gets[sid] += 1
        self.faults.requested_channels[sid] = requested
        if sid in self.faults.cut_once:
            self.faults.cut_once.discard(sid)
            self.faults.served_cuts += 1
            await _partial(send, 200, headers, body)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class AppThread(UvicornThread):
    """A stub host under uvicorn on 127.0.0.1:``port``, in a thread of the test process."""

    def __init__(self, app: object, port: int) -> None:
        super().__init__(
            uvicorn.Config(
                app,  # type: ignore[arg-type]
                host="127.0.0.1",
                port=port,
                loop="asyncio",
                log_level="critical",
                timeout_graceful_shutdown=2,
            )
        )


@contextmanager
def twilio_hosts(
    source_url: str,
    api_port: int,
    storage_port: int,
    faults: Faults,
    *,
    storage_url: str | None = None,
) -> Iterator[str]:
    """The API host (its base URL is yielded) and the storage host, both stopped afterwards;
    media is redirected to ``storage_url`` (a proxy in front of the storage host, say)."""
    storage_url = storage_url or f"http://127.0.0.1:{storage_port}"
    with (
        AppThread(StorageHost(source_url, faults), storage_port),
        AppThread(ApiHost(source_url, storage_url, faults), api_port) as api,
    ):
        yield api.base_url
