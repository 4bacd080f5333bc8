"""Which database errors mean "PostgreSQL is not there right now"."""

from __future__ import annotations

import asyncio

import asyncpg

# As opposed to a bug in a query: these are answered with 503 and retried by the client.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
)
