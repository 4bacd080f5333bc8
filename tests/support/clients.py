"""The test's side of the API: accounts, the ingest token, and the one upload helper."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from db import accounts
from db.accounts import set_enforce_media_auth
from service.accounts.registry import create_account
from service.accounts.sealing import TokenSealer
from service.sids import new_sid

INGEST_TOKEN = "test-ingest-token-" + secrets.token_hex(8)
# RECORDINGS_SECRET_KEY of the tests' settings: accounts made here keep a sealed token under it.
SECRET_KEY = "test-secret-key-" + secrets.token_hex(16)

# The `ingest` fixture: upload(client, account, body or the demo WAV, ...) bound to the server.
Ingest = Callable[..., httpx.Response]


@dataclass(frozen=True)
class Account:
    sid: str
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.sid, self.token)

    @property
    def basic_auth(self) -> str:
        """The ``Authorization`` header value of these credentials."""
        return "Basic " + base64.b64encode(f"{self.sid}:{self.token}".encode()).decode()

    @property
    def base(self) -> str:
        return f"/2008-08-01/Accounts/{self.sid}/Recordings"


def new_account(dsn: str, name: str = "test", *, sealed: bool = True) -> Account:
    """A fresh account in the database at ``dsn``, made as `recordings accounts create` does
    with the tests' RECORDINGS_SECRET_KEY (``sealed=False``: as before there was one)."""

    async def go() -> Account:
        # No named prepared statements: the DSN may be the tests' PgBouncer (transaction mode).
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, statement_cache_size=0)
        try:
            sealer = TokenSealer(SECRET_KEY) if sealed else None
            made = await create_account(pool, name, sealer=sealer)
        finally:
            await pool.close()
        return Account(made.account_sid, made.auth_token)

    return asyncio.run(go())


def set_media_auth(dsn: str, account_sid: str, enforce: bool) -> None:
    """Make the account's media need its credentials (or not), as `recordings accounts set` does."""

    async def go() -> None:
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            assert await set_enforce_media_auth(conn, account_sid, enforce)
        finally:
            await conn.close()

    asyncio.run(go())


def set_cors_origins(dsn: str, account_sid: str, origins: list[str]) -> None:
    """Let these origins read the account's media with credentials."""

    async def go() -> None:
        conn = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            assert await accounts.set_cors_origins(conn, account_sid, origins)
        finally:
            await conn.close()

    asyncio.run(go())


def upload(
    http: httpx.Client,
    account: Account,
    body: Any,
    *,
    call_sid: str | None = None,
    date_created: str | datetime | None = None,
    suffix: str = ".json",
    expect: int | None = 201,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """POST ``body`` (bytes or an iterator of them) to the ingest endpoint ``http`` points at;
    ``query`` adds parameters (Source, StartTime, ConferenceSid, ...).

    The status is checked against ``expect`` (None: not checked, for tests of failed uploads).
    """
    params = {"CallSid": call_sid or new_sid("CA"), **(query or {})}
    if date_created:
        params["DateCreated"] = (
            date_created.isoformat() if isinstance(date_created, datetime) else date_created
        )
    response = http.post(
        f"/internal/Accounts/{account.sid}/Recordings{suffix}",
        params=params,
        content=body,
        headers={
            "Authorization": f"Bearer {INGEST_TOKEN}",
            "Content-Type": "audio/x-wav",
            **(headers or {}),
        },
        **kwargs,
    )
    if expect is not None:
        assert response.status_code == expect, response.text
    return response


def uploaded_sid(http: httpx.Client, account: Account, body: Any, **kwargs: Any) -> str:
    """The SID of a recording uploaded through ``http``, which must succeed."""
    return str(upload(http, account, body, **kwargs).json()["sid"])


@dataclass(frozen=True)
class Tenants:
    """Two accounts with one recording each, on the same call SID and day."""

    a: Account
    b: Account
    a_sid: str
    a_call: str
    a_wav: bytes
    b_sid: str  # B's recording on A's call SID and A's day


A_DAY = "2011-03-04"


def make_tenants(base_url: str, dsn: str, a_wav: bytes, b_wav: bytes) -> Tenants:
    """Accounts A and B, each with a recording, uploaded through the service at ``base_url``."""
    a, b = new_account(dsn), new_account(dsn)
    a_call = new_sid("CA")
    with httpx.Client(base_url=base_url, timeout=60) as http:
        a_sid = uploaded_sid(http, a, a_wav, call_sid=a_call, date_created=A_DAY + "T05:06:07Z")
        b_sid = uploaded_sid(http, b, b_wav, call_sid=a_call, date_created=A_DAY + "T09:00:00Z")
    return Tenants(a, b, a_sid, a_call, a_wav, b_sid)


def comparable_answer(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of an answer, to compare two answers byte for byte: without
    Date (it changes by the second) and X-Request-Id (fresh and random on every answer)."""
    headers = [
        (k.lower(), v)
        for k, v in response.headers.items()
        if k.lower() not in {"date", "x-request-id"}
    ]
    return response.status_code, headers, response.content
