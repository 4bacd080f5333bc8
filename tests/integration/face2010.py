"""Helpers of the 2010 face's tests: uploads with the 2010 fields, SQL, paths.

Plain functions over the session's fixtures (``client``, ``settings``, ``account``), never
imports of tests.conftest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import httpx
import uvicorn

from devstack.servers import free_port
from service.accounts.registry import create_account
from service.app import create_app
from service.http.server import http_protocol
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import Storage, open_storage

ERROR_KEYS = {"code", "message", "more_info", "status"}
ENVELOPE_KEYS = {
    "recordings",
    "end",
    "first_page_uri",
    "next_page_uri",
    "page",
    "page_size",
    "previous_page_uri",
    "start",
    "uri",
}
RECORDING_KEYS = {
    "account_sid",
    "api_version",
    "call_sid",
    "conference_sid",
    "date_created",
    "date_updated",
    "start_time",
    "duration",
    "sid",
    "price",
    "price_unit",
    "status",
    "channels",
    "source",
    "error_code",
    "uri",
    "encryption_details",
    "subresource_uris",
    "media_url",
}


@dataclass(frozen=True)
class MadeAccount:
    sid: str
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.sid, self.token)


def make_account(settings: Settings, name: str = "test") -> MadeAccount:
    """A new account, for module-scoped data (the ``account`` fixture is per test)."""

    async def go() -> MadeAccount:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            made = await create_account(pool, name)
        finally:
            await pool.close()
        return MadeAccount(made.account_sid, made.auth_token)

    return asyncio.run(go())


class AccountLike(Protocol):
    """What the ``account`` fixture gives: a SID and its AuthToken."""

    @property
    def sid(self) -> str: ...

    @property
    def token(self) -> str: ...

    @property
    def auth(self) -> tuple[str, str]: ...


def base2010(account: AccountLike) -> str:
    return f"/2010-04-01/Accounts/{account.sid}"


def base2008(account: AccountLike) -> str:
    return f"/2008-08-01/Accounts/{account.sid}/Recordings"


def upload(
    client: httpx.Client,
    settings: Settings,
    account: AccountLike,
    body: bytes,
    *,
    call_sid: str | None = None,
    date_created: datetime | str | None = None,
    expect: int | None = 201,
    **extra: str,
) -> httpx.Response:
    """Upload through the ingest endpoint; ``extra`` are further query parameters."""
    params = {"CallSid": call_sid or new_sid("CA"), **extra}
    if date_created is not None:
        params["DateCreated"] = (
            date_created.isoformat() if isinstance(date_created, datetime) else date_created
        )
    response = client.post(
        f"/internal/Accounts/{account.sid}/Recordings.json",
        params=params,
        content=body,
        headers={"Authorization": f"Bearer {settings.ingest_token}"},
    )
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


def sql(settings: Settings, query: str, *args: Any) -> Any:
    """Run one statement on the test database; returns fetch()'s rows."""

    async def go() -> Any:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def with_storage(settings: Settings, use: Callable[[Storage], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with open_storage(storage_config(settings)) as storage:
            return await use(storage)

    return asyncio.run(go())


def object_exists(settings: Settings, key: str) -> bool:
    return bool(with_storage(settings, lambda storage: storage.object_exists(key)))


def assert_json_error(response: httpx.Response, status: int, code: int | None = None) -> dict:
    """A 2010 error: exactly Twilio's four keys, the status, a code, nothing leaked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status
    assert isinstance(body["code"], int)
    if code is not None:
        assert body["code"] == code
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    text = response.text.lower()
    for leak in ("traceback", "select ", "asyncpg", "postgres", "sqlstate", 'file "'):
        assert leak not in text, response.text
    return body


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The service with these settings under a real uvicorn on a free port; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http=http_protocol(settings.max_header_bytes),
        log_level="warning",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    try:
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
