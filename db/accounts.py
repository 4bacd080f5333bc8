"""Accounts: who may list and delete, whose media needs credentials, and their subaccounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.pool import Db, Pool

ACTIVE = "active"
STATUSES = ("active", "suspended", "closed")
# Each account with its parent's status (NULL for a top-level account).
_SELECT = (
    "SELECT a.*, p.status AS parent_status FROM accounts a"
    " LEFT JOIN accounts p ON p.sid = a.parent_sid"
)


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
    # The parent of a subaccount (None: a top-level account).
    parent_sid: str | None = None
    status: str = "active"
    # The parent's status, where the query read it (a parent's suspension holds its children).
    parent_status: str | None = None
    # The secondary AuthToken, hashed with ``token_salt``, and its sealed copy.
    secondary_token_hash: bytes | None = None
    secondary_token_sealed: bytes | None = None
    secondary_token_created: datetime | None = None
    date_updated: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether its credentials and recordings may be used: it and its parent are active."""
        return self.status == ACTIVE and self.parent_status in (None, ACTIVE)

    @property
    def owner_sid(self) -> str:
        """Twilio's ``owner_account_sid``: the parent's SID, or its own for a parent."""
        return self.parent_sid or self.sid


def account_of(row: asyncpg.Record) -> Account:
    """An account from a row of accounts (with parent_status where the query joined it)."""
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
        parent_sid=row.get("parent_sid"),
        status=row.get("status", ACTIVE),
        parent_status=row.get("parent_status"),
        secondary_token_hash=_bytes(row.get("secondary_token_hash")),
        secondary_token_sealed=_bytes(row.get("secondary_token_sealed")),
        secondary_token_created=row.get("secondary_token_created"),
        date_updated=row.get("date_updated"),
    )


def _bytes(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


async def insert_account(
    pool: Pool,
    *,
    sid: str,
    friendly_name: str,
    token_salt: bytes,
    token_hash: bytes,
    token_sealed: bytes | None = None,
    parent_sid: str | None = None,
) -> Account:
    """Store a new account with its hashed token (and its sealed copy, if any); with
    ``parent_sid``, a subaccount of that account."""
    row = await pool.fetchrow(
        "INSERT INTO accounts (sid, friendly_name, token_salt, token_hash, token_sealed,"
        " parent_sid) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
        sid,
        friendly_name,
        token_salt,
        token_hash,
        token_sealed,
        parent_sid,
    )
    assert row is not None
    return account_of(row)


async def fetch_account(pool: Pool, sid: str) -> Account | None:
    """The account with this SID, if any."""
    row = await pool.fetchrow(_SELECT + " WHERE a.sid = $1", sid)
    return account_of(row) if row else None


async def fetch_accounts(pool: Pool, first: str, second: str) -> dict[str, Account]:
    """Those of the two accounts that exist, by SID, in one query (``IN ($1, $2)``: half the
    cost of ``= ANY($1::text[])``, whose array costs as much as a second lookup)."""
    rows = await pool.fetch(_SELECT + " WHERE a.sid IN ($1, $2)", first, second)
    return {row["sid"]: account_of(row) for row in rows}


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
    return [(account_of(row), int(row["live"])) for row in rows]


async def set_token(
    pool: Pool,
    sid: str,
    *,
    token_salt: bytes,
    token_hash: bytes,
    token_sealed: bytes | None = None,
) -> bool:
    """Replace an account's token hash and sealed copy, and drop its secondary token (hashed
    with the old salt); False when there is no such account."""
    status = await pool.execute(
        "UPDATE accounts SET token_salt = $2, token_hash = $3, token_sealed = $4,"
        " secondary_token_hash = NULL, secondary_token_sealed = NULL,"
        " secondary_token_created = NULL, date_updated = now() WHERE sid = $1",
        sid,
        token_salt,
        token_hash,
        token_sealed,
    )
    return bool(status != "UPDATE 0")


async def delete_account(pool: Pool, sid: str) -> bool:
    """Remove an account and whatever rows of its recordings are left; False when unknown.
    An account with subaccounts raises asyncpg's ForeignKeyViolationError."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM recordings WHERE account_sid = $1", sid)
        await conn.execute("DELETE FROM recording_counts WHERE account_sid = $1", sid)
        await conn.execute("DELETE FROM recording_day_counts WHERE account_sid = $1", sid)
        status = await conn.execute("DELETE FROM accounts WHERE sid = $1", sid)
    return bool(status != "DELETE 0")


async def list_family(
    pool: Pool, sid: str, *, friendly_name: str | None = None, status: str | None = None
) -> list[Account]:
    """The account and its subaccounts (itself first, then oldest first), filtered exactly by
    friendly name and status when given."""
    rows = await pool.fetch(
        _SELECT + " WHERE (a.sid = $1 OR a.parent_sid = $1)"
        " AND ($2::text IS NULL OR a.friendly_name = $2)"
        " AND ($3::text IS NULL OR a.status = $3)"
        " ORDER BY a.sid <> $1, a.date_created, a.sid",
        sid,
        friendly_name,
        status,
    )
    return [account_of(row) for row in rows]


async def update_account(
    db: Db, sid: str, *, friendly_name: str | None = None, status: str | None = None
) -> Account | None:
    """Rename it and/or set its status; None when there is no such account or it is closed
    (closed is final)."""
    row = await db.fetchrow(
        "WITH changed AS (UPDATE accounts SET friendly_name = coalesce($2, friendly_name),"
        " status = coalesce($3, status), date_updated = now()"
        " WHERE sid = $1 AND status <> 'closed' RETURNING *)"
        " SELECT a.*, p.status AS parent_status FROM changed a"
        " LEFT JOIN accounts p ON p.sid = a.parent_sid",
        sid,
        friendly_name,
        status,
    )
    return account_of(row) if row else None


async def set_secondary_token(
    pool: Pool, sid: str, *, token_hash: bytes, token_sealed: bytes | None
) -> Account | None:
    """Give the account a secondary token (replacing any); None when there is no such account."""
    row = await pool.fetchrow(
        "UPDATE accounts SET secondary_token_hash = $2, secondary_token_sealed = $3,"
        " secondary_token_created = now(), date_updated = now() WHERE sid = $1 RETURNING *",
        sid,
        token_hash,
        token_sealed,
    )
    return account_of(row) if row else None


async def drop_secondary_token(pool: Pool, sid: str) -> bool:
    """Remove the account's secondary token; False when it has none."""
    status = await pool.execute(
        "UPDATE accounts SET secondary_token_hash = NULL, secondary_token_sealed = NULL,"
        " secondary_token_created = NULL, date_updated = now()"
        " WHERE sid = $1 AND secondary_token_hash IS NOT NULL",
        sid,
    )
    return bool(status != "UPDATE 0")


async def promote_secondary_token(pool: Pool, sid: str) -> Account | None:
    """The secondary token becomes the primary (the old primary stops at once); None when the
    account has no secondary token."""
    row = await pool.fetchrow(
        "UPDATE accounts SET token_hash = secondary_token_hash,"
        " token_sealed = secondary_token_sealed, secondary_token_hash = NULL,"
        " secondary_token_sealed = NULL, secondary_token_created = NULL, date_updated = now()"
        " WHERE sid = $1 AND secondary_token_hash IS NOT NULL RETURNING *",
        sid,
    )
    return account_of(row) if row else None
