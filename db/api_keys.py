"""API keys (SK): an account's named credentials, their secrets kept only hashed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.accounts import Account, account_of
from db.pool import Pool


@dataclass(frozen=True)
class ApiKey:
    account_sid: str
    sid: str
    friendly_name: str
    secret_salt: bytes
    secret_hash: bytes
    date_created: datetime
    date_updated: datetime


@dataclass(frozen=True)
class KeyOwner:
    """A key with the account it authenticates as (its parent's status read with it)."""

    key: ApiKey
    account: Account


def _key(row: asyncpg.Record, prefix: str = "") -> ApiKey:
    return ApiKey(
        account_sid=row[prefix + "account_sid"],
        sid=row[prefix + "sid"],
        friendly_name=row[prefix + "friendly_name"],
        secret_salt=bytes(row[prefix + "secret_salt"]),
        secret_hash=bytes(row[prefix + "secret_hash"]),
        date_created=row[prefix + "date_created"],
        date_updated=row[prefix + "date_updated"],
    )


async def insert_key(
    pool: Pool,
    *,
    account_sid: str,
    sid: str,
    friendly_name: str,
    secret_salt: bytes,
    secret_hash: bytes,
) -> ApiKey:
    """Store a new key of the account."""
    row = await pool.fetchrow(
        "INSERT INTO api_keys (account_sid, sid, friendly_name, secret_salt, secret_hash)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING *",
        account_sid,
        sid,
        friendly_name,
        secret_salt,
        secret_hash,
    )
    assert row is not None
    return _key(row)


async def fetch_key_owner(pool: Pool, sid: str) -> KeyOwner | None:
    """The key with this SID and its account, in one query (what authentication reads)."""
    row = await pool.fetchrow(
        "SELECT a.*, p.status AS parent_status, k.account_sid AS k_account_sid,"
        " k.sid AS k_sid, k.friendly_name AS k_friendly_name, k.secret_salt AS k_secret_salt,"
        " k.secret_hash AS k_secret_hash, k.date_created AS k_date_created,"
        " k.date_updated AS k_date_updated"
        " FROM api_keys k JOIN accounts a ON a.sid = k.account_sid"
        " LEFT JOIN accounts p ON p.sid = a.parent_sid WHERE k.sid = $1",
        sid,
    )
    return KeyOwner(_key(row, "k_"), account_of(row)) if row else None


async def fetch_key(pool: Pool, account_sid: str, sid: str) -> ApiKey | None:
    """The account's key with this SID, if any."""
    row = await pool.fetchrow(
        "SELECT * FROM api_keys WHERE account_sid = $1 AND sid = $2", account_sid, sid
    )
    return _key(row) if row else None


async def find_key(pool: Pool, sid: str) -> ApiKey | None:
    """The key with this SID whatever its account (the operator's `keys delete SK...`)."""
    row = await pool.fetchrow("SELECT * FROM api_keys WHERE sid = $1", sid)
    return _key(row) if row else None


async def list_keys(pool: Pool, account_sid: str, *, limit: int, offset: int) -> list[ApiKey]:
    """A page of the account's keys, oldest first."""
    rows = await pool.fetch(
        "SELECT * FROM api_keys WHERE account_sid = $1 ORDER BY date_created, sid"
        " LIMIT $2 OFFSET $3",
        account_sid,
        limit,
        offset,
    )
    return [_key(row) for row in rows]


async def rename_key(pool: Pool, account_sid: str, sid: str, friendly_name: str) -> ApiKey | None:
    """Give the key a new friendly name; None when the account has no such key."""
    row = await pool.fetchrow(
        "UPDATE api_keys SET friendly_name = $3, date_updated = now()"
        " WHERE account_sid = $1 AND sid = $2 RETURNING *",
        account_sid,
        sid,
        friendly_name,
    )
    return _key(row) if row else None


async def delete_key(pool: Pool, account_sid: str, sid: str) -> bool:
    """Remove the key (it stops authenticating at once); False when there is no such key."""
    status = await pool.execute(
        "DELETE FROM api_keys WHERE account_sid = $1 AND sid = $2", account_sid, sid
    )
    return bool(status != "DELETE 0")
