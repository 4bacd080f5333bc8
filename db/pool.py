"""The asyncpg pool."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

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


# How many statements a connection keeps (prepared, or through a pooler described), and how long
# a pooled connection keeps a description: as asyncpg keeps its own named statements
# (statement_cache_size, max_cached_statement_lifetime).
STATEMENTS_KEPT = 100
DESCRIPTION_LIFETIME = 300.0


class PooledConnection(asyncpg.Connection):  # type: ignore[misc]
    """A connection through a transaction pooler that describes each statement once.

    Without named prepared statements (a pooler may hand the server connection that parsed one
    to another client), asyncpg prepares every query anew: a Parse and Describe, a round trip
    for the types of its parameters and columns, then Parse, Bind and Execute. The description
    is the same every time, so it is kept here and each later run of the query is one write
    and one round trip: the unnamed statement is parsed again in the same message as its Bind
    and Execute, so it never outlives the transaction the pooler gives it.

    A description could only go stale if a migration changed the type of a column in place
    while replicas run: they are kept ``DESCRIPTION_LIFETIME`` seconds at most, and a
    connection asyncpg resets for a schema change (``reload_schema_state``) forgets them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._described: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()

    async def _get_statement(
        self,
        query: str,
        timeout: float | None,
        *,
        named: str | bool | None = False,
        use_cache: bool = True,
        ignore_custom_codec: bool = False,
        record_class: Any = None,
    ) -> Any:
        key = (query, record_class, ignore_custom_codec)
        kept = self._described.get(key) if use_cache and not named else None
        now = time.monotonic()
        if kept is not None and now - kept[0] < DESCRIPTION_LIFETIME:
            self._described.move_to_end(key)
            return kept[1]
        statement = await super()._get_statement(
            query,
            timeout,
            named=named,
            use_cache=use_cache,
            ignore_custom_codec=ignore_custom_codec,
            record_class=record_class,
        )
        # Only an unnamed statement, which asyncpg parses again with every Bind, is kept.
        if use_cache and not named and not statement.name and not statement.prepared:
            self._described[key] = (now, statement)
            self._described.move_to_end(key)
            while len(self._described) > STATEMENTS_KEPT:
                self._described.popitem(last=False)
        return statement

    def _drop_local_statement_cache(self) -> None:
        self._described.clear()
        super()._drop_local_statement_cache()


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
        statement_cache_size=0 if pooled else STATEMENTS_KEPT,
        connection_class=PooledConnection if pooled else asyncpg.Connection,
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
