"""Credentials against the real database: an unknown account costs what a known one does, and
the service's 401s do not tell them apart."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx
import pytest

import service.accounts.auth
from db.accounts import fetch_account, fetch_accounts
from db.api_keys import fetch_key_owner
from service.accounts.auth import authenticate
from service.accounts.keys import create_key
from service.errors import Unauthorized
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, comparable_answer
from tests.support.hmacs import CountingHmac


def test_authenticate_looks_up_and_compares_the_same_for_unknown_and_known_accounts(
    settings: Settings,
    account: Account,
    counting_hmac: CountingHmac,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []

    async def counting_fetch(pool: Any, sid: str) -> Any:
        lookups.append(sid)
        return await fetch_account(pool, sid)

    async def counting_fetch_both(pool: Any, first: str, second: str) -> Any:
        lookups.append(first)
        return await fetch_accounts(pool, first, second)

    async def counting_key_fetch(pool: Any, sid: str) -> Any:
        lookups.append(sid)
        return await fetch_key_owner(pool, sid)

    monkeypatch.setattr(service.accounts.auth, "fetch_account", counting_fetch)
    monkeypatch.setattr(service.accounts.auth, "fetch_key_owner", counting_key_fetch)
    monkeypatch.setattr(service.accounts.auth, "fetch_accounts", counting_fetch_both)

    async def attempt(pool: Any, user: str, password: str) -> tuple[str, int, list[Any], int]:
        counting_hmac.reset()
        lookups.clear()
        with pytest.raises(Unauthorized) as raised:
            await authenticate(pool, Account(user, password).basic_auth, account.sid)
        return (
            raised.value.message,
            counting_hmac.new_calls,
            list(counting_hmac.compares),
            len(lookups),
        )

    async def go() -> None:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            key = await create_key(pool, account.sid, "k")
            known = await attempt(pool, account.sid, "wrong-token")
            unknown = await attempt(pool, new_sid("AC"), "wrong-token")
            # API keys: an unknown SK is hashed and compared as a known one is (the timing of
            # the two is the same by construction, not by a clock).
            known_key = await attempt(pool, key.key.sid, "wrong-secret")
            unknown_key = await attempt(pool, new_sid("SK"), "wrong-secret")
            expected = ("Invalid credentials", 1, [(32, 32)] * 2, 1)
            assert known == unknown == known_key == unknown_key == expected
        finally:
            await pool.close()

    asyncio.run(go())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("GET", ".xml"),
        ("GET", ".json"),
        ("GET", ".csv"),
        ("HEAD", ""),
        ("GET", "?CallSid=CA" + "0" * 32),
        ("DELETE", "/RE" + "0" * 32),
        ("DELETE", "/RE" + "0" * 32 + ".json"),
    ],
)
def test_unknown_and_known_accounts_get_byte_identical_401s(
    client: httpx.Client, account: Account, method: str, path: str
) -> None:
    unknown_sid = new_sid("AC")
    unknown_base = f"/2008-08-01/Accounts/{unknown_sid}/Recordings"
    # Known account, its own path, a wrong token ...
    known = client.request(method, account.base + path, auth=(account.sid, "not-the-token"))
    # ... an unknown (well-formed) account on its own path ...
    unknown = client.request(method, unknown_base + path, auth=(unknown_sid, "not-the-token"))
    # ... and an unknown account's credentials on the known account's path.
    stranger = client.request(method, account.base + path, auth=(unknown_sid, "not-the-token"))
    assert known.status_code == 401
    assert comparable_answer(known) == comparable_answer(unknown) == comparable_answer(stranger)
