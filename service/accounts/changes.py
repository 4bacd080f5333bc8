"""`recordings accounts set`: an account's settings changed together, each only when given."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from db.accounts import Account, fetch_account, set_cors_origins, set_enforce_media_auth
from db.callbacks import set_status_callback
from db.retention import set_retention_days
from service.callbacks.outbox import check_target
from service.database import open_database
from service.encryption.registry import choose_encryption_key
from service.settings import Settings


@dataclass(frozen=True)
class AccountChanges:
    """What to change; None leaves a setting as it is. An empty status callback clears it."""

    enforce_media_auth: bool | None = None
    status_callback: str | None = None
    status_callback_method: str | None = None
    # The whole new list of CORS origins (empty: none); None leaves it.
    cors_origins: tuple[str, ...] | None = None
    # Days the account's recordings are kept (0: clear its own, the default applies); None leaves.
    retention_days: int | None = None
    # The public key (CR...) new recordings are encrypted with; '' stores them in the clear;
    # None leaves it.
    encryption_key: str | None = None


def parse_origin(value: str) -> str:
    """``https://app.example.com[:port]``, as browsers send Origin; ValueError for anything else."""
    parts = urlsplit(value)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ValueError(f"not an origin (scheme://host[:port]): {value!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


async def change_account(
    settings: Settings, account_sid: str, changes: AccountChanges
) -> Account | None:
    """Apply the changes; the account as it is now, None when there is no such account.

    A new status callback URL goes through the same guard as an ingest's (UrlRefused); an
    encryption key must be one of the account's own (NotAccountsKey).
    """
    async with open_database(settings, max_size=1) as pool:
        account = await fetch_account(pool, account_sid)
        if account is None:
            return None
        url = account.status_callback
        if changes.status_callback is not None:
            url = changes.status_callback or None
        method = changes.status_callback_method or account.status_callback_method
        if url is not None and changes.status_callback:
            await check_target(url, method, allow_private=settings.webhook_allow_private)
        async with pool.acquire() as conn, conn.transaction():
            if changes.enforce_media_auth is not None:
                await set_enforce_media_auth(conn, account_sid, changes.enforce_media_auth)
            if changes.status_callback is not None or changes.status_callback_method is not None:
                await set_status_callback(conn, account_sid, url, method)
            if changes.cors_origins is not None:
                await set_cors_origins(conn, account_sid, list(changes.cors_origins))
            if changes.retention_days is not None:
                await set_retention_days(conn, account_sid, changes.retention_days or None)
            if changes.encryption_key is not None:
                await choose_encryption_key(conn, account_sid, changes.encryption_key or None)
        return await fetch_account(pool, account_sid)
