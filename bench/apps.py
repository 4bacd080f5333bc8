"""Minimal raw ASGI baselines (no FastAPI, no Starlette), served by the same uvicorn settings.

- ``GET /zeros?size=N``: N zero bytes in chunks of the service's stream chunk size: the ceiling
  of the benchmark client together with uvicorn itself.
- ``GET /2008-08-01/Accounts/{AC}/Recordings/{RE}.xml``: the same single query as the service's
  instance GET (``db.recordings.fetch_media`` itself), answered with the same bytes.
- ``GET /2010-04-01/Accounts/{AC}/Recordings/{RE}.json``: the 2010 instance, with the work the
  service must do for the same bytes: the account's row for the Basic credentials (HMAC-SHA256
  check), ``db.recordings.fetch_recording``, and the service's own ``recording_dict`` rendered
  with ``json.dumps`` (the representation is not the web layer being measured); ``media_url``
  from ``BENCH_PUBLIC_URL``, as the service's from ``RECORDINGS_PUBLIC_URL``.
- ``GET /2008-08-01/Accounts/{AC}/Recordings``: the first page (``num``, ``page`` honoured) with
  the same work the service must do for the same bytes: the account's row for the Basic
  credentials (``db.accounts.fetch_account``, HMAC-SHA256 check), ``count_recordings`` for
  ``total``, ``list_recordings`` for the page; same XML.

The data layer (``db/``) is the service's own, so the difference is the web layer alone.

Started by ``bench.stack.baseline_process`` with ``BENCH_DSN`` and ``BENCH_POOL_SIZE``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg

from db.accounts import Account, fetch_account
from db.listing import ListFilter, count_recordings, list_recordings
from db.recordings import Recording, fetch_media, fetch_recording
from service.faces.v2010.representations import recording_dict

CHUNK = 256 * 1024
ZEROS = bytes(CHUNK)
XML = [(b"content-type", b"application/xml")]
JSON = [(b"content-type", b"application/json")]
_INSTANCE = re.compile(r"^/2008-08-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-f]{32})\.xml$")
_INSTANCE_2010 = re.compile(
    r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Recordings/(RE[0-9a-f]{32})\.json$"
)
_LIST = re.compile(r"^/2008-08-01/Accounts/(AC[0-9a-f]{32})/Recordings$")

_pool: asyncpg.Pool | None = None


def _date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def _recording(r: Recording) -> str:
    return (
        f"<Recording><Sid>{r.sid}</Sid><AccountSid>{r.account_sid}</AccountSid>"
        f"<CallSid>{r.call_sid}</CallSid><Duration>{r.duration}</Duration>"
        f"<DateCreated>{_date(r.date_created)}</DateCreated>"
        f"<DateUpdated>{_date(r.date_updated)}</DateUpdated></Recording>"
    )


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _zeros(scope: dict[str, Any], send: Any) -> None:
    size = int(dict(parse_qsl(scope["query_string"].decode())).get("size", "0"))
    headers = [(b"content-length", str(size).encode()), (b"content-type", b"audio/x-wav")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    left = size
    while left > 0:
        piece = ZEROS if left >= CHUNK else ZEROS[:left]
        left -= len(piece)
        await send({"type": "http.response.body", "body": piece, "more_body": left > 0})


async def _instance(send: Any, account_sid: str, sid: str) -> None:
    assert _pool is not None
    found = await fetch_media(_pool, account_sid, sid)
    if found is None:
        await _send(send, 404, b"", [])
        return
    body = f"<TwilioResponse>{_recording(found.recording)}</TwilioResponse>".encode()
    await _send(send, 200, body, XML)


async def _signed_in(scope: dict[str, Any], send: Any, account_sid: str) -> bool:
    """Whether the request carries the account's Basic credentials; answers 401 if not."""
    assert _pool is not None
    header = dict(scope["headers"]).get(b"authorization")
    account = await fetch_account(_pool, account_sid)
    if account is None or not _authorized(header, account):
        await _send(send, 401, b"", [])
        return False
    return True


async def _instance_2010(scope: dict[str, Any], send: Any, account_sid: str, sid: str) -> None:
    assert _pool is not None
    if not await _signed_in(scope, send, account_sid):
        return
    found = await fetch_recording(_pool, account_sid, sid)
    if found is None:
        await _send(send, 404, b"", [])
        return
    body = json.dumps(recording_dict(found, media_base=os.environ["BENCH_PUBLIC_URL"]))
    await _send(send, 200, body.encode(), JSON)


def _authorized(header: bytes | None, account: Account) -> bool:
    if not header or not header.startswith(b"Basic "):
        return False
    user, _, token = base64.b64decode(header[6:]).decode().partition(":")
    digest = hmac.new(account.token_salt, token.encode(), hashlib.sha256).digest()
    return user == account.sid and hmac.compare_digest(digest, account.token_hash)


async def _list(scope: dict[str, Any], send: Any, account_sid: str) -> None:
    assert _pool is not None
    if not await _signed_in(scope, send, account_sid):
        return
    query = dict(parse_qsl(scope["query_string"].decode()))
    num, page = int(query.get("num", "50")), int(query.get("page", "0"))
    total = await count_recordings(_pool, account_sid, ListFilter())
    rows = await list_recordings(_pool, account_sid, ListFilter(), limit=num, offset=page * num)
    pages = -(-total // num)
    base = f"/2008-08-01/Accounts/{account_sid}/Recordings"
    start = page * num if total else 0
    end = start + len(rows) - 1 if rows else 0
    previous = f"{base}?num={num}&amp;page={page - 1}" if page > 0 else ""
    following = f"{base}?num={num}&amp;page={page + 1}" if page + 1 < pages else ""
    last = f"{base}?num={num}&amp;page={pages - 1}" if pages else ""
    head = (
        f'page="{page}" numpages="{pages}" pagesize="{num}" total="{total}" start="{start}"'
        f' end="{end}" uri="{base}?num={num}&amp;page={page}"'
        f' firstpageuri="{base}?num={num}&amp;page=0" previouspageuri="{previous}"'
        f' nextpageuri="{following}" lastpageuri="{last}"'
    )
    items = "".join(_recording(row) for row in rows)
    body = f"<TwilioResponse><Recordings {head}>{items}</Recordings></TwilioResponse>"
    await _send(send, 200, body.encode(), XML)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _pool
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # The service's pool settings (db/pool.py).
                _pool = await asyncpg.create_pool(
                    os.environ["BENCH_DSN"],
                    min_size=0,
                    max_size=int(os.environ.get("BENCH_POOL_SIZE", "20")),
                    timeout=10.0,
                    command_timeout=10.0,
                    max_inactive_connection_lifetime=120.0,
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _pool is not None:
                    _pool.terminate()
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/healthz":
        await _send(send, 200, b"ok", [])
    elif path == "/zeros":
        await _zeros(scope, send)
    elif match := _INSTANCE.match(path):
        await _instance(send, match[1], match[2])
    elif match := _INSTANCE_2010.match(path):
        await _instance_2010(scope, send, match[1], match[2])
    elif match := _LIST.match(path):
        await _list(scope, send, match[1])
    else:
        await _send(send, 404, b"", [])
