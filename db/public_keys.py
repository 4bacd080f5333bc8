"""Public keys (Credentials/PublicKeys) and the one an account encrypts its recordings with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.pool import Db


@dataclass(frozen=True)
class PublicKey:
    account_sid: str
    sid: str
    friendly_name: str | None
    # SubjectPublicKeyInfo PEM.
    public_key: str
    date_created: datetime
    date_updated: datetime


_COLUMNS = "k.account_sid, k.sid, k.friendly_name, k.public_key, k.date_created, k.date_updated"


def _public_key(row: asyncpg.Record) -> PublicKey:
    return PublicKey(
        account_sid=row["account_sid"],
        sid=row["sid"],
        friendly_name=row["friendly_name"],
        public_key=row["public_key"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
    )


async def insert_public_key(
    db: Db, *, account_sid: str, sid: str, friendly_name: str | None, public_key: str
) -> PublicKey:
    """Store a checked public key of this account."""
    row = await db.fetchrow(
        "INSERT INTO public_keys AS k (account_sid, sid, friendly_name, public_key)"
        f" VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
        account_sid,
        sid,
        friendly_name,
        public_key,
    )
    assert row is not None
    return _public_key(row)


async def fetch_public_key(db: Db, account_sid: str, sid: str) -> PublicKey | None:
    """This account's key with this SID, if any."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM public_keys k WHERE k.account_sid = $1 AND k.sid = $2",
        account_sid,
        sid,
    )
    return _public_key(row) if row else None


async def list_public_keys(db: Db, account_sid: str, *, limit: int, offset: int) -> list[PublicKey]:
    """A page of the account's keys, oldest first (an account has a handful)."""
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM public_keys k WHERE k.account_sid = $1"
        " ORDER BY k.date_created, k.sid LIMIT $2 OFFSET $3",
        account_sid,
        limit,
        offset,
    )
    return [_public_key(row) for row in rows]


async def rename_public_key(
    db: Db, account_sid: str, sid: str, friendly_name: str | None
) -> PublicKey | None:
    """Give the key a new friendly name; None when the account has no such key."""
    row = await db.fetchrow(
        "UPDATE public_keys k SET friendly_name = $3, date_updated = now()"
        f" WHERE k.account_sid = $1 AND k.sid = $2 RETURNING {_COLUMNS}",
        account_sid,
        sid,
        friendly_name,
    )
    return _public_key(row) if row else None


@dataclass(frozen=True)
class KeyUse:
    """Why a key cannot be deleted: the account encrypts with it, or recordings need it."""

    encrypts_new_recordings: bool
    live_recordings: int


async def fetch_key_use(db: Db, account_sid: str, sid: str) -> KeyUse:
    """What still depends on this key of the account."""
    row = await db.fetchrow(
        "SELECT EXISTS (SELECT 1 FROM accounts a WHERE a.sid = $1 AND a.encryption_key_sid = $2)"
        " AS current,"
        " (SELECT count(*) FROM recordings r WHERE r.account_sid = $1"
        " AND r.encryption_details IS NOT NULL AND r.deleted_at IS NULL"
        " AND r.encryption_details ->> 'public_key_sid' = $2) AS live",
        account_sid,
        sid,
    )
    assert row is not None
    return KeyUse(encrypts_new_recordings=row["current"], live_recordings=int(row["live"]))


async def delete_public_key(db: Db, account_sid: str, sid: str) -> bool:
    """Delete the key unless something still depends on it; False when it is not deleted
    (none such, or still in use: the caller asked ``fetch_key_use`` first)."""
    status = await db.execute(
        "DELETE FROM public_keys k WHERE k.account_sid = $1 AND k.sid = $2"
        " AND NOT EXISTS (SELECT 1 FROM accounts a WHERE a.sid = $1"
        " AND a.encryption_key_sid = $2)"
        " AND NOT EXISTS (SELECT 1 FROM recordings r WHERE r.account_sid = $1"
        " AND r.encryption_details IS NOT NULL AND r.deleted_at IS NULL"
        " AND r.encryption_details ->> 'public_key_sid' = $2)",
        account_sid,
        sid,
    )
    return bool(status != "DELETE 0")


async def fetch_encryption_key(db: Db, account_sid: str) -> PublicKey | None:
    """The key the account encrypts new recordings with; None: they are stored in the clear."""
    row = await db.fetchrow(
        f"SELECT {_COLUMNS} FROM accounts a JOIN public_keys k"
        " ON k.account_sid = a.sid AND k.sid = a.encryption_key_sid WHERE a.sid = $1",
        account_sid,
    )
    return _public_key(row) if row else None


async def set_encryption_key(db: Db, account_sid: str, sid: str | None) -> bool:
    """Encrypt the account's new recordings with its key ``sid`` (None: store them in the clear);
    False when there is no such account. The key must be the account's (a foreign key says so)."""
    status = await db.execute(
        "UPDATE accounts SET encryption_key_sid = $2, date_updated = now() WHERE sid = $1",
        account_sid,
        sid,
    )
    return bool(status != "UPDATE 0")
