"""The asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg

Pool: TypeAlias = asyncpg.Pool
# A pool or one of its connections (one holding an advisory lock, say): queries take either.
Db: TypeAlias = Pool | asyncpg.Connection


async def _reset(conn: asyncpg.Connection) -> None:
    # asyncpg's default reset costs a round trip per release ("RESET ALL; UNLISTEN *; ...").
    # Our queries leave no session state behind: no SET, LISTEN or cursors, and the one
    # advisory lock (the transcoder's) is released explicitly, or dies with a broken connection.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def open_pool(dsn: str, *, max_size: int = 20, timeout: float = 10.0) -> AsyncIterator[Pool]:
    """Open a pool lazily, so the service starts, and recovers, while PostgreSQL is away."""
    pool = asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=timeout,
        command_timeout=timeout,
        max_inactive_connection_lifetime=120.0,
        reset=_reset,
    )
    await pool
    try:
        yield pool
    finally:
        pool.terminate()
