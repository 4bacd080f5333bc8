"""HTTP Basic credentials: the one authentication every face uses.

A credential is an account's AuthToken (primary or secondary) or one of its API keys (SK); it
reaches its own account and that account's subaccounts, never a parent or a sibling. Secrets
are stored only hashed. Nothing is cached: every request reads the rows, so a deleted key, a
promoted-away token or a suspended account is refused by every replica from the next request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from db.accounts import Account, fetch_account, fetch_accounts
from db.api_keys import fetch_key_owner
from db.pool import Pool
from db.recordings import MediaLookup
from service.errors import Forbidden, Unauthorized
from service.sids import is_account_sid

# The token is 128 random bits, so a salted SHA-256 is as strong as a slow password hash here
# and costs microseconds per request instead of the tens of milliseconds of bcrypt or argon2.
# The same holds for a key's secret (32 characters of 62: 190 bits).
_DUMMY_SALT = b"\x00" * 16
_DUMMY_HASH = b"\x00" * 32
KEY_SID = re.compile(r"SK[0-9a-f]{32}")
_SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
SECRET_LENGTH = 32


class AccountNotActive(Unauthorized):
    """Valid credentials of a suspended or closed account (or of a subaccount whose parent is)."""

    code = 20005
    message = "Account is not active"


class KeyNotAllowed(Forbidden):
    message = (
        "Standard API keys cannot manage accounts, keys or AuthTokens:"
        " use the AccountSid and its AuthToken"
    )


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class Principal:
    """Who proved themselves: an account, through its AuthToken or one of its keys."""

    account: Account
    key_sid: str | None = None


def new_token() -> str:
    """A fresh AuthToken."""
    return secrets.token_hex(16)


def new_key_secret() -> str:
    """A fresh API key secret: 32 letters and digits, as Twilio's."""
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(SECRET_LENGTH))


def new_salt() -> bytes:
    return secrets.token_bytes(16)


def is_key_sid(value: str) -> bool:
    return KEY_SID.fullmatch(value) is not None


def hash_token(token: str, salt: bytes) -> bytes:
    """What is stored instead of a token or a key's secret."""
    return hmac.new(salt, token.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def token_matches(token: str, salt: bytes, stored: bytes) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(hash_token(token, salt), stored)


def _matches(password: str, salt: bytes, primary: bytes, secondary: bytes | None) -> bool:
    # One HMAC and two comparisons whatever is stored, so that neither an unknown SID nor a
    # missing secondary token answers sooner than a known one. (No HMAC-SHA256 is all zeros.)
    presented = hash_token(password, salt)
    first = hmac.compare_digest(presented, primary)
    second = hmac.compare_digest(presented, secondary or _DUMMY_HASH)
    return first | second


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
    """Whether the password is one of the account's AuthTokens; as slow for an unknown account."""
    if account is None:
        _matches(credentials.password, _DUMMY_SALT, _DUMMY_HASH, None)
        return False
    return _matches(
        credentials.password, account.token_salt, account.token_hash, account.secondary_token_hash
    )


async def prove(
    pool: Pool, credentials: Credentials, *, beside: str | None = None
) -> tuple[Principal | None, Account | None]:
    """Whose credentials these are (or None): one lookup and one hash for every username,
    known, unknown or malformed. With ``beside`` (the path's AccountSid), an AccountSid user's
    lookup reads that account too, in the same query: a parent on its subaccount's path costs
    one query, not two. The second value is that account when it was read."""
    username = credentials.username
    if is_key_sid(username):
        found = await fetch_key_owner(pool, username)
        if found is None:
            verify(credentials, None)
            return None, None
        key = found.key
        if _matches(credentials.password, key.secret_salt, key.secret_hash, None):
            return Principal(found.account, key.sid), None
        return None, None
    account = other = None
    if is_account_sid(username):
        if beside is not None and beside != username and is_account_sid(beside):
            both = await fetch_accounts(pool, username, beside)
            account, other = both.get(username), both.get(beside)
        else:
            account = await fetch_account(pool, username)
    if verify(credentials, account) and account:
        return Principal(account), other
    return None, None


async def _identify(
    pool: Pool, header: str | None, *, manage: bool, beside: str | None = None
) -> tuple[Principal, Account | None]:
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized()
    principal, other = await prove(pool, credentials, beside=beside)
    if principal is None:
        raise Unauthorized("Invalid credentials")
    if not principal.account.active:
        raise AccountNotActive()
    if manage and principal.key_sid is not None:
        raise KeyNotAllowed()
    return principal, other


async def identify(pool: Pool, header: str | None, *, manage: bool = False) -> Principal:
    """The active account the ``Authorization`` header proves; ``manage``: the request changes
    accounts, keys or tokens, which a standard API key may not."""
    principal, _ = await _identify(pool, header, manage=manage)
    return principal


def reaches(principal: Account, target: Account) -> bool:
    """Whether a credential of ``principal`` reaches ``target``: itself or its subaccount."""
    return target.sid == principal.sid or target.parent_sid == principal.sid


async def access(
    pool: Pool,
    header: str | None,
    account_sid: str,
    *,
    manage: bool = False,
    inactive_target: bool = False,
) -> tuple[Principal, Account]:
    """Who the credentials are, and the path's account if they reach it (401 without valid
    ones, 403 for another tree's). ``inactive_target`` lets a parent reach a suspended or
    closed subaccount (to see it, or to make it active again)."""
    principal, target = await _identify(pool, header, manage=manage, beside=account_sid)
    own = principal.account
    if account_sid == own.sid:
        return principal, own
    if target is None and principal.key_sid is not None and is_account_sid(account_sid):
        target = await fetch_account(pool, account_sid)
    if target is None or not reaches(own, target):
        raise Forbidden()
    if not inactive_target and not target.active:
        raise AccountNotActive()
    return principal, target


async def authenticate(
    pool: Pool,
    header: str | None,
    account_sid: str,
    *,
    manage: bool = False,
    inactive_target: bool = False,
) -> Account:
    """The path's account, if the credentials reach it (see ``access``)."""
    _, account = await access(
        pool, header, account_sid, manage=manage, inactive_target=inactive_target
    )
    return account


def _own_token(found: MediaLookup, credentials: Credentials) -> bool:
    """Whether these are the recording's account's SID and one of its AuthTokens, checked
    against the account's row read with the recording."""
    return credentials.username == found.recording.account_sid and _matches(
        credentials.password, found.token_salt, found.token_hash, found.secondary_token_hash
    )


def owner_proves(found: MediaLookup, credentials: Credentials) -> bool:
    """Whether ``credentials`` are the recording's own active account's AuthToken: what most
    requests carry, settled without another query. False says nothing: the caller asks
    ``authenticate``, which gives every refusal (and lets keys and parents through)."""
    return found.account_active and _own_token(found, credentials)


async def authorize_media(pool: Pool, found: MediaLookup, header: str | None) -> None:
    """Let a media request through if the recording's account is active and does not ask for
    credentials, or if ``header`` holds credentials that reach that account."""
    if not found.account_active:
        raise AccountNotActive()
    if not found.enforce_media_auth:
        return
    account_sid = found.recording.account_sid
    credentials = parse_basic(header)
    if credentials is None:
        raise Unauthorized("This account requires credentials for its media")
    if credentials.username == account_sid:
        # The account's own token, checked against the row already read (one query, not two).
        if not _own_token(found, credentials):
            raise Unauthorized("Invalid credentials")
        return
    await authenticate(pool, header, account_sid)
