"""Creating accounts: the token is shown once and stored only hashed."""

from __future__ import annotations

from dataclasses import dataclass

from db.accounts import insert_account
from db.pool import Pool
from service.accounts.auth import hash_token, new_salt, new_token
from service.sids import new_sid


@dataclass(frozen=True)
class NewAccount:
    account_sid: str
    auth_token: str


async def create_account(pool: Pool, friendly_name: str = "") -> NewAccount:
    """A new account and the only copy of its AuthToken in clear."""
    token = new_token()
    salt = new_salt()
    account = await insert_account(
        pool,
        sid=new_sid("AC"),
        friendly_name=friendly_name,
        token_salt=salt,
        token_hash=hash_token(token, salt),
    )
    return NewAccount(account.sid, token)
