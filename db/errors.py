"""Which errors mean "PostgreSQL is not there right now", as opposed to a bug in a query."""

from __future__ import annotations

import errno
import socket

import asyncpg

# Answered with 503 and retried by the client. Timeouts are here because asyncpg reports a
# pool that cannot hand out a connection, and a command past its deadline, as TimeoutError.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    socket.gaierror,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.QueryCanceledError,
    # What a pooled connection reports when its server died mid-operation (asyncpg#1069):
    # "cannot switch to state 12; another operation is in progress".
    asyncpg.InternalClientError,
)
# What connecting to an address that is down, or gone from the network, raises besides
# ConnectionError; a full disk or a missing file is none of these.
_NETWORK_ERRNOS = frozenset(
    {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN, errno.ETIMEDOUT}
)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database (or the network to it) is away."""
    if isinstance(exc, UNAVAILABLE_ERRORS):
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS
