"""Accounts over their life: created, listed, given a new token, removed with their recordings."""

from __future__ import annotations

from dataclasses import dataclass

from db import accounts as rows
from db.listing import ListFilter, list_recordings
from db.pool import Pool
from db.tombstones import list_account_tombstones
from service.accounts.auth import hash_token, new_salt, new_token
from service.accounts.sealing import TokenSealer
from service.operator_errors import OperatorError
from service.recordings.catalog import Catalog, remove_objects
from service.sids import new_sid


@dataclass(frozen=True)
class NewAccount:
    account_sid: str
    auth_token: str


class ParentRefused(OperatorError):
    """A subaccount asked of an account that cannot be a parent, or a parent deleted before its
    subaccounts."""


async def create_account(
    pool: Pool,
    friendly_name: str = "",
    *,
    sealer: TokenSealer | None = None,
    parent_sid: str | None = None,
    sid: str | None = None,
    auth_token: str | None = None,
) -> NewAccount:
    """A new account and the only copy of its AuthToken in clear; with a sealer, the token is
    also kept encrypted so that the account's status callbacks can be signed. With
    ``parent_sid``, a subaccount of that account (ParentRefused: unknown, closed, or itself a
    subaccount: Twilio's tree is one level deep).

    ``sid`` and ``auth_token`` keep an account's identity from elsewhere (an account brought
    over from Twilio keeps its AccountSid, and its AuthToken when asked); by default both are
    new.
    """
    if parent_sid is not None:
        parent = await rows.fetch_account(pool, parent_sid)
        if parent is None:
            raise ParentRefused(f"no account {parent_sid}")
        if parent.parent_sid is not None:
            raise ParentRefused(f"{parent_sid} is a subaccount; subaccounts have none of their own")
        if parent.status == "closed":
            raise ParentRefused(f"{parent_sid} is closed")
    token = auth_token or new_token()
    salt = new_salt()
    sid = sid or new_sid("AC")
    account = await rows.insert_account(
        pool,
        sid=sid,
        friendly_name=friendly_name,
        token_salt=salt,
        token_hash=hash_token(token, salt),
        token_sealed=sealer.seal(sid, token) if sealer else None,
        parent_sid=parent_sid,
    )
    return NewAccount(account.sid, token)


async def rotate_token(
    pool: Pool, account_sid: str, *, sealer: TokenSealer | None = None
) -> str | None:
    """A new AuthToken for the account (the old one, and a secondary one, stop working at once,
    and sign nothing more); None if unknown."""
    token = new_token()
    salt = new_salt()
    if not await rows.set_token(
        pool,
        account_sid,
        token_salt=salt,
        token_hash=hash_token(token, salt),
        token_sealed=sealer.seal(account_sid, token) if sealer else None,
    ):
        return None
    return token


async def delete_account(catalog: Catalog, account_sid: str, *, batch: int = 200) -> int | None:
    """Delete every recording of the account as DELETE does, then the account itself.

    Returns how many live recordings were deleted, None when there is no such account.
    An account with subaccounts is refused (ParentRefused): they go first.
    """
    family = await rows.list_family(catalog.pool, account_sid)
    if not family:
        return None
    if len(family) > 1:
        raise ParentRefused(f"{account_sid} has subaccounts: delete them first")
    deleted = 0
    while page := await list_recordings(
        catalog.pool, account_sid, ListFilter(), limit=batch, offset=0
    ):
        for recording in page:
            await catalog.delete(account_sid, recording.sid)
            deleted += 1
    # Objects of recordings deleted earlier (and kept for a retention window) go now too.
    for recording in await list_account_tombstones(catalog.pool, account_sid):
        await remove_objects(catalog.pool, catalog.storage, recording, best_effort=False)
    await rows.delete_account(catalog.pool, account_sid)
    return deleted
