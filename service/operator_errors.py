"""Expected failures of the operator's commands: one line on stderr and a documented exit code."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from service.settings import Settings

# Exit codes of `recordings` (README, "Command line"); click itself uses 1 and 2.
DATABASE_UNREACHABLE = 3
STORAGE_UNREACHABLE = 4
PORT_IN_USE = 5
NOT_FOUND = 6


class OperatorError(Exception):
    """A failure the operator can fix, with the line that says how."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def describe(exc: BaseException, settings: Settings | None) -> Failure | None:
    """The one-line account of an expected failure; None for a bug (its traceback is shown)."""
    import asyncpg

    from db.errors import is_unavailable
    from storage.errors import StorageUnavailable

    if isinstance(exc, OperatorError):
        return Failure(exc.message, exc.exit_code)
    if isinstance(exc, StorageUnavailable):
        where = settings.s3_endpoint_url if settings else None
        return Failure(
            f"cannot reach S3 storage at RECORDINGS_S3_ENDPOINT_URL={where or '(AWS default)'}"
            f" (bucket {settings.s3_bucket if settings else '?'}): {exc}",
            STORAGE_UNREACHABLE,
        )
    database_refused = (
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidPasswordError,
    )
    if is_unavailable(exc) or isinstance(exc, database_refused):
        where = (
            f"RECORDINGS_DATABASE_URL={_without_password(settings.database_url)}"
            if settings
            else "RECORDINGS_DATABASE_URL=?"
        )
        if settings and settings.database_pooled:
            # Either may be the one that failed: the pooler, or PostgreSQL behind it.
            where += " or RECORDINGS_DATABASE_DIRECT_URL=" + _without_password(
                settings.session_database_url
            )
        reason = str(exc) or type(exc).__name__
        return Failure(
            f"cannot reach PostgreSQL at {where}: {reason}"
            " (is it running? with `recordings dev`, source its dev.env)",
            DATABASE_UNREACHABLE,
        )
    return None
