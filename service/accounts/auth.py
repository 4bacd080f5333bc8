"""HTTP Basic credentials: AccountSid and AuthToken, the token stored only hashed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from db.accounts import Account, fetch_account
from db.pool import Pool
from db.recordings import MediaLookup
from service.errors import Forbidden, Unauthorized
from service.sids import is_account_sid

# The token is 128 random bits, so a salted SHA-256 is as strong as a slow password hash here
# and costs microseconds per request instead of the tens of milliseconds of bcrypt or argon2.
_DUMMY_SALT = b"\x00" * 16
_DUMMY_HASH = b"\x00" * 32


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def new_token() -> str:
    """A fresh AuthToken."""
    return secrets.token_hex(16)


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def hash_token(token: str, salt: bytes) -> bytes:
    """What is stored instead of the token."""
    return hmac.new(salt, token.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def token_matches(token: str, salt: bytes, stored: bytes) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token, salt), stored)


def parse_basic(header: str | None) -> Credentials | None:
    """The credentials of an ``Authorization: Basic`` header, if it holds well-formed ones."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    return Credentials(username, password)


def verify(credentials: Credentials, account: Account | None) -> bool:
    """Whether the credentials are this account's; as slow for an unknown account as a known one."""
    if account is None:
        token_matches(credentials.password, _DUMMY_SALT, _DUMMY_HASH)
        return False
    return token_matches(credentials.password, account.token_salt, account.token_hash)


async def authenticate(pool: Pool, header: str | None, account_sid: str) -> Account:
    """The account the credentials prove, which must be the path's account."""
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized()
    account = None
    if is_account_sid(credentials.username):
        account = await fetch_account(pool, credentials.username)
    if not verify(credentials, account):
        raise Unauthorized("Invalid credentials")
    assert account is not None
    if account.sid != account_sid:
        raise Forbidden()
    return account


async def authorize_media(pool: Pool, found: MediaLookup, header: str | None) -> None:
    """Let a media request through if the recording's account does not ask for credentials,
    or if ``header`` holds that account's (checked against the row already read)."""
    if not found.enforce_media_auth:
        return
    account_sid = found.recording.account_sid
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized("This account requires credentials for its media")
    if credentials.username == account_sid:
        if not token_matches(credentials.password, found.token_salt, found.token_hash):
            raise Unauthorized("Invalid credentials")
        return
    await authenticate(pool, header, account_sid)
