"""Accounts: who may list and delete, and whose media needs credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.pool import Pool


@dataclass(frozen=True)
class Account:
    sid: str
    friendly_name: str
    token_salt: bytes
    token_hash: bytes
    enforce_media_auth: bool
    date_created: datetime
    # The default target of the account's recording status callbacks, and how it is called.
    status_callback: str | None = None
    status_callback_method: str = "POST"
    # The AuthToken sealed under the server's key (None: made before that, or with no key).
    token_sealed: bytes | None = None
    # Origins whose pages may read the account's media with credentials (CORS).
    cors_origins: tuple[str, ...] = ()
    # Its own retention policy in days (None: RECORDINGS_RETENTION_DAYS applies).
    retention_days: int | None = None
    # The public key its new recordings are encrypted with (None: stored in the clear).
    encryption_key_sid: str | None = None


def _account(row: asyncpg.Record) -> Account:
    return Account(
        sid=row["sid"],
        friendly_name=row["friendly_name"],
        token_salt=bytes(row["token_salt"]),
        token_hash=bytes(row["token_hash"]),
        enforce_media_auth=row["enforce_media_auth"],
        date_created=row["date_created"],
        status_callback=row["status_callback"],
        status_callback_method=row["status_callback_method"],
        token_sealed=None if row["token_sealed"] is None else bytes(row["token_sealed"]),
        cors_origins=tuple(row["cors_origins"]),
        retention_days=row.get("retention_days"),
        encryption_key_sid=row.get("encryption_key_sid"),
    )


async def insert_account(
    pool: Pool,
    *,
    sid: str,
    friendly_name: str,
    token_salt: bytes,
    token_hash: bytes,
    token_sealed: bytes | None = None,
) -> Account:
    """Store a new account with its hashed token (and its sealed copy, if any)."""
    row = await pool.fetchrow(
        "INSERT INTO accounts (sid, friendly_name, token_salt, token_hash, token_sealed)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        sid,
        friendly_name,
        token_salt,
        token_hash,
        token_sealed,
    )
    assert row is not None
    return _account(row)


async def fetch_account(pool: Pool, sid: str) -> Account | None:
    """The account with this SID, if any."""
    row = await pool.fetchrow("SELECT * FROM accounts WHERE sid = $1", sid)
    return _account(row) if row else None


async def set_enforce_media_auth(pool: Pool, sid: str, enforce: bool) -> bool:
    """Switch media authentication for an account; False when there is no such account."""
    status = await pool.execute(
        "UPDATE accounts SET enforce_media_auth = $2, date_updated = now() WHERE sid = $1",
        sid,
        enforce,
    )
    return bool(status != "UPDATE 0")


async def fetch_cors_origins(pool: Pool, sid: str) -> list[str]:
    """The origins allowed to read the account's media with credentials."""
    origins = await pool.fetchval("SELECT cors_origins FROM accounts WHERE sid = $1", sid)
    return list(origins or [])


async def set_cors_origins(pool: Pool, sid: str, origins: list[str]) -> bool:
    """Replace the account's allowed origins; False when there is no such account."""
    status = await pool.execute(
        "UPDATE accounts SET cors_origins = $2, date_updated = now() WHERE sid = $1",
        sid,
        origins,
    )
    return bool(status != "UPDATE 0")


async def list_accounts(pool: Pool) -> list[tuple[Account, int]]:
    """Every account, oldest first, with how many live recordings it has."""
    rows = await pool.fetch(
        "SELECT a.*, coalesce(c.live, 0) AS live FROM accounts a"
        " LEFT JOIN recording_counts c ON c.account_sid = a.sid ORDER BY a.date_created, a.sid"
    )
    return [(_account(row), int(row["live"])) for row in rows]


async def set_token(
    pool: Pool,
    sid: str,
    *,
    token_salt: bytes,
    token_hash: bytes,
    token_sealed: bytes | None = None,
) -> bool:
    """Replace an account's token hash and sealed copy; False when there is no such account."""
    status = await pool.execute(
        "UPDATE accounts SET token_salt = $2, token_hash = $3, token_sealed = $4,"
        " date_updated = now() WHERE sid = $1",
        sid,
        token_salt,
        token_hash,
        token_sealed,
    )
    return bool(status != "UPDATE 0")


async def delete_account(pool: Pool, sid: str) -> bool:
    """Remove an account and whatever rows of its recordings are left; False when unknown."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM recordings WHERE account_sid = $1", sid)
        await conn.execute("DELETE FROM recording_counts WHERE account_sid = $1", sid)
        await conn.execute("DELETE FROM recording_day_counts WHERE account_sid = $1", sid)
        status = await conn.execute("DELETE FROM accounts WHERE sid = $1", sid)
    return bool(status != "DELETE 0")
