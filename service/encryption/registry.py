"""The accounts' public keys as every caller uses them (the accounts domain's
Credentials/PublicKeys, `recordings accounts set --encryption-key`): registered checked,
listed, renamed, deleted only once nothing needs them, chosen to encrypt an account's recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.pool import Db
from db.public_keys import (
    PublicKey,
    delete_public_key,
    fetch_key_use,
    fetch_public_key,
    insert_public_key,
    list_public_keys,
    rename_public_key,
    set_encryption_key,
)
from service.encryption.keys import normalise_public_key
from service.errors import BadRequest, NotFound
from service.sids import is_public_key_sid, new_sid

MAX_FRIENDLY_NAME = 64


class PublicKeyNotFound(NotFound):
    message = "The requested resource was not found"


class PublicKeyInUse(BadRequest):
    message = "The public key is in use and cannot be deleted"


class NotAccountsKey(BadRequest):
    message = "The public key is not one of this account's"


@dataclass(frozen=True)
class KeyPage:
    keys: list[PublicKey]
    page: int
    page_size: int
    has_next: bool


def check_friendly_name(name: str | None) -> str | None:
    """A friendly name of at most 64 characters (Twilio's limit); '' and None mean none."""
    if name is not None and len(name) > MAX_FRIENDLY_NAME:
        raise BadRequest(f"FriendlyName must be at most {MAX_FRIENDLY_NAME} characters")
    return name or None


async def register_public_key(
    db: Db, account_sid: str, pem: str, friendly_name: str | None
) -> PublicKey:
    """A new key of this account, from its PEM (InvalidPublicKey when it is not acceptable)."""
    name = check_friendly_name(friendly_name)
    return await insert_public_key(
        db,
        account_sid=account_sid,
        sid=new_sid("CR"),
        friendly_name=name,
        public_key=normalise_public_key(pem),
    )


async def get_public_key(db: Db, account_sid: str, sid: str) -> PublicKey:
    """This account's key; another account's is as unknown as one that never was."""
    found = await fetch_public_key(db, account_sid, sid) if is_public_key_sid(sid) else None
    if found is None:
        raise PublicKeyNotFound()
    return found


async def list_page(db: Db, account_sid: str, *, page: int, page_size: int) -> KeyPage:
    """Page ``page`` of the account's keys, oldest first."""
    rows = await list_public_keys(db, account_sid, limit=page_size + 1, offset=page * page_size)
    return KeyPage(rows[:page_size], page, page_size, has_next=len(rows) > page_size)


async def rename(db: Db, account_sid: str, sid: str, friendly_name: str | None) -> PublicKey:
    """Give the account's key a new friendly name (none, when ``friendly_name`` is empty)."""
    name = check_friendly_name(friendly_name)
    renamed = (
        await rename_public_key(db, account_sid, sid, name) if is_public_key_sid(sid) else None
    )
    if renamed is None:
        raise PublicKeyNotFound()
    return renamed


async def remove(db: Db, account_sid: str, sid: str) -> None:
    """Delete the account's key, refused (PublicKeyInUse) while the account encrypts with it
    or a live recording was encrypted under it: its SID is what tells the holder which private
    key decrypts that recording."""
    await get_public_key(db, account_sid, sid)
    use = await fetch_key_use(db, account_sid, sid)
    if use.encrypts_new_recordings:
        raise PublicKeyInUse(
            f"Public key {sid} encrypts this account's new recordings: choose another key or"
            " turn encryption off before deleting it"
        )
    if use.live_recordings:
        raise PublicKeyInUse(
            f"Public key {sid} is needed by {use.live_recordings} recording(s) encrypted under"
            " it: delete those recordings first (their private key stays needed until then)"
        )
    if not await delete_public_key(db, account_sid, sid):
        # Chosen, or used by an ingest, between the check and the delete.
        raise PublicKeyInUse()


async def choose_encryption_key(db: Db, account_sid: str, sid: str | None) -> None:
    """Encrypt the account's new recordings under its key ``sid`` (None: in the clear).
    NotAccountsKey when ``sid`` is not a key of this account."""
    if sid is not None:
        if not is_public_key_sid(sid):
            raise NotAccountsKey(f"{sid!r} is not a public key SID (CR and 32 hex digits)")
        if await fetch_public_key(db, account_sid, sid) is None:
            raise NotAccountsKey(f"{sid} is not a public key of {account_sid}")
    await set_encryption_key(db, account_sid, sid)
