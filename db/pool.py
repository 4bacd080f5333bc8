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
    # Our queries leave no session state behind: no SET, LISTEN or cursors; the advisory locks
    # (single flights, the retention pass) are taken on the session pool's connections, and
    # released explicitly or with a broken connection.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


@asynccontextmanager
async def open_pool(
    dsn: str, *, max_size: int = 20, timeout: float = 10.0, pooled: bool = False
) -> AsyncIterator[Pool]:
    """Open a pool lazily, so the service starts, and recovers, while PostgreSQL is away.

    ``pooled``: ``dsn`` is a pooler in transaction mode (PgBouncer), where consecutive
    transactions of one connection may run on different server connections.
    """
    pool = asyncpg.create_pool(
        dsn,
        # A named prepared statement lives on the server connection that parsed it, which a
        # pooler may give to another client before the next query: none are made then.
        statement_cache_size=0 if pooled else 100,
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
