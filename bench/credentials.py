"""``python -m bench.credentials``: what each kind of credential adds to an authenticated request.

Two measures, on the embedded stack, in one run:
- the authentication alone, in process (``service.accounts.auth.authenticate`` against the real
  PostgreSQL, one call at a time, median of ``--calls``), beside what it was before API keys and
  subaccounts: one ``SELECT * FROM accounts WHERE sid = $1`` and one HMAC;
- a whole request through ``recordings serve`` (the 2010 list of an empty account: the
  authentication and one count-free page query), one keep-alive connection, p50 and p99 of
  ``--requests``.
In both, the cases take turns call by call, so that the shared machine's busy moments fall on
every case alike.
The ratio of every line is against the AccountSid + AuthToken line of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx

from bench.stack import Stack, running_stack, service_process
from db.accounts import fetch_account
from service.accounts.auth import authenticate, parse_basic, token_matches
from service.accounts.keys import create_key
from service.accounts.registry import create_account
from service.accounts.tokens import create_secondary

Case = tuple[str, str, tuple[str, str]]  # name, the path's AccountSid, Basic credentials
# Calls and requests of each case made before measuring (pool connections, prepared statements).
WARM = 100


def _header(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()


async def _credentials(stack: Stack) -> list[Case]:
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=1)
    try:
        parent = stack.list_account_sid, stack.list_auth_token
        account = await fetch_account(pool, parent[0])
        assert account is not None
        secondary = await create_secondary(pool, account, sealer=None)
        assert secondary is not None
        key = await create_key(pool, parent[0], "bench")
        sub = await create_account(pool, "bench subaccount", parent_sid=parent[0])
    finally:
        await pool.close()
    return [
        ("AccountSid + AuthToken", parent[0], parent),
        ("AccountSid + secondary AuthToken", parent[0], (parent[0], secondary.token)),
        ("API key (SK + secret)", parent[0], (key.key.sid, key.secret)),
        ("subaccount's own AuthToken", sub.account_sid, (sub.account_sid, sub.auth_token)),
        ("parent's AuthToken on a subaccount", sub.account_sid, parent),
    ]


async def in_process(stack: Stack, cases: list[Case], calls: int) -> list[tuple[str, float]]:
    """Median microseconds of one authentication, by case, and of the pre-keys one. The cases
    take turns call by call, so that a busy moment of the (shared) machine falls on all."""
    pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=1)
    try:
        sid, token = cases[0][2]

        async def before() -> None:
            # What authentication did before this change: the account's row and one HMAC.
            credentials = parse_basic(_header((sid, token)))
            assert credentials is not None
            row = await pool.fetchrow("SELECT * FROM accounts WHERE sid = $1", sid)
            assert row is not None
            salt, stored = bytes(row["token_salt"]), bytes(row["token_hash"])
            assert token_matches(credentials.password, salt, stored)

        calls_of: dict[str, Callable[[], Awaitable[object]]] = {
            "before: AccountSid + AuthToken": before
        }
        for name, path_sid, auth in cases:

            async def now(header: str = _header(auth), path_sid: str = path_sid) -> None:
                await authenticate(pool, header, path_sid)

            calls_of[name] = now
        seen: dict[str, list[float]] = {name: [] for name in calls_of}
        for turn in range(calls + WARM):
            for name, call in calls_of.items():
                started = time.perf_counter()
                await call()
                if turn >= WARM:
                    seen[name].append(time.perf_counter() - started)
        return [(name, statistics.median(times) * 1e6) for name, times in seen.items()]
    finally:
        await pool.close()


def over_http(base_url: str, cases: list[Case], requests: int) -> dict[str, list[float]]:
    """Seconds of each request by case, the cases taking turns request by request."""
    seen: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for turn in range(requests + WARM):
            for name, path_sid, auth in cases:
                path = f"/2010-04-01/Accounts/{path_sid}/Recordings.json"
                started = time.perf_counter()
                answer = http.get(path, auth=auth)
                if turn >= WARM:
                    seen[name].append(time.perf_counter() - started)
                answer.raise_for_status()
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.credentials", description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    with running_stack() as stack, tempfile.TemporaryDirectory() as workdir:
        cases = asyncio.run(_credentials(stack))
        auth_only = asyncio.run(in_process(stack, cases, args.calls))
        with service_process(stack, Path(workdir)).start() as service:
            requests = over_http(service.base_url, cases, args.requests)
    base = auth_only[1][1]
    print(f"{'authentication alone (in process)':<40} {'median us':>10} {'x token':>8}")
    for name, micros in auth_only:
        print(f"{name:<40} {micros:>10.0f} {micros / base:>8.2f}")
    print()
    print(f"{'2010 list over HTTP, 1 connection':<40} {'p50 ms':>8} {'p99 ms':>8} {'x token':>8}")
    token_p50 = statistics.median(requests[cases[0][0]])
    for name, times in requests.items():
        p50 = statistics.median(times)
        p99 = statistics.quantiles(times, n=100)[98]
        print(f"{name:<40} {p50 * 1e3:>8.2f} {p99 * 1e3:>8.2f} {p50 / token_p50:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
