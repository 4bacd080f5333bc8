"""The secondary AuthToken: made beside the primary, removed, or promoted to be the primary."""

from __future__ import annotations

from dataclasses import dataclass

from db import accounts as rows
from db.accounts import Account
from db.pool import Pool
from service.accounts.auth import hash_token, new_token
from service.accounts.sealing import SealError, TokenSealer


@dataclass(frozen=True)
class SecondaryToken:
    account: Account
    # The only copy in clear: it is stored hashed (and sealed, to sign once it is promoted).
    token: str


async def create_secondary(
    pool: Pool, account: Account, *, sealer: TokenSealer | None
) -> SecondaryToken | None:
    """A new secondary token (replacing any); both tokens work until one goes. None when the
    account is gone."""
    token = new_token()
    # Hashed with the primary's salt: the account's PageTokens are keyed by that salt, and a
    # promotion must not invalidate them.
    updated = await rows.set_secondary_token(
        pool,
        account.sid,
        token_hash=hash_token(token, account.token_salt),
        token_sealed=sealer.seal(account.sid, token) if sealer else None,
    )
    return SecondaryToken(updated, token) if updated else None


async def delete_secondary(pool: Pool, account: Account) -> bool:
    """Remove the secondary token; False when there is none."""
    return await rows.drop_secondary_token(pool, account.sid)


async def promote_secondary(
    pool: Pool, account: Account, *, sealer: TokenSealer | None
) -> tuple[Account, str | None] | None:
    """The secondary token becomes the primary and the old primary stops at once; status
    callbacks are signed with it from now on. Returns the account and the promoted token in
    clear when its sealed copy can be opened; None when there is no secondary token."""
    promoted = await rows.promote_secondary_token(pool, account.sid)
    if promoted is None:
        return None
    token = None
    if sealer is not None and promoted.token_sealed is not None:
        try:
            token = sealer.open(promoted.sid, promoted.token_sealed)
        except SealError:
            token = None
    return promoted, token
