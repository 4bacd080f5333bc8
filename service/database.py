"""The service's connections to PostgreSQL, as the settings place them: the pool at
RECORDINGS_DATABASE_URL (a transaction pooler such as PgBouncer, or PostgreSQL itself), and
sessions (locks held across transactions, LISTEN) at RECORDINGS_DATABASE_DIRECT_URL."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from db.pool import Pool, open_pool
from service.settings import Settings


def open_database(
    settings: Settings, *, max_size: int | None = None
) -> AbstractAsyncContextManager[Pool]:
    """The pool at RECORDINGS_DATABASE_URL, with no named prepared statements behind a pooler."""
    return open_pool(
        settings.database_url,
        max_size=settings.database_pool_size if max_size is None else max_size,
        timeout=settings.database_timeout,
        pooled=settings.database_pooled,
    )


def open_sessions(settings: Settings, *, max_size: int) -> AbstractAsyncContextManager[Pool]:
    """A pool of connections that keep their sessions: PostgreSQL itself, past any pooler."""
    return open_pool(
        settings.session_database_url, max_size=max_size, timeout=settings.database_timeout
    )
