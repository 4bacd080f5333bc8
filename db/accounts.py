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


def _account(row: asyncpg.Record) -> Account:
    return Account(
        sid=row["sid"],
        friendly_name=row["friendly_name"],
        token_salt=bytes(row["token_salt"]),
        token_hash=bytes(row["token_hash"]),
        enforce_media_auth=row["enforce_media_auth"],
        date_created=row["date_created"],
    )


async def insert_account(
    pool: Pool, *, sid: str, friendly_name: str, token_salt: bytes, token_hash: bytes
) -> Account:
    """Store a new account with its hashed token."""
    row = await pool.fetchrow(
        "INSERT INTO accounts (sid, friendly_name, token_salt, token_hash)"
        " VALUES ($1, $2, $3, $4) RETURNING *",
        sid,
        friendly_name,
        token_salt,
        token_hash,
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


async def set_token(pool: Pool, sid: str, *, token_salt: bytes, token_hash: bytes) -> bool:
    """Replace an account's token hash; False when there is no such account."""
    status = await pool.execute(
        "UPDATE accounts SET token_salt = $2, token_hash = $3, date_updated = now() WHERE sid = $1",
        sid,
        token_salt,
        token_hash,
    )
    return bool(status != "UPDATE 0")


async def delete_account(pool: Pool, sid: str) -> bool:
    """Remove an account and whatever rows of its recordings are left; False when unknown."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM recordings WHERE account_sid = $1", sid)
        await conn.execute("DELETE FROM recording_counts WHERE account_sid = $1", sid)
        status = await conn.execute("DELETE FROM accounts WHERE sid = $1", sid)
    return bool(status != "DELETE 0")
