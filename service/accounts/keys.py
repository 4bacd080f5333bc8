"""API keys (SK): made with a secret shown once, listed, renamed, deleted."""

from __future__ import annotations

from dataclasses import dataclass

from db import api_keys as rows
from db.api_keys import ApiKey
from db.pool import Pool
from service.accounts.auth import hash_token, new_key_secret, new_salt
from service.sids import new_sid

MAX_NAME = 64


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    # The only copy in clear: it is stored hashed.
    secret: str


async def create_key(pool: Pool, account_sid: str, friendly_name: str = "") -> NewKey:
    """A new standard key of the account, and its secret."""
    secret = new_key_secret()
    salt = new_salt()
    key = await rows.insert_key(
        pool,
        account_sid=account_sid,
        sid=new_sid("SK"),
        friendly_name=friendly_name,
        secret_salt=salt,
        secret_hash=hash_token(secret, salt),
    )
    return NewKey(key, secret)
