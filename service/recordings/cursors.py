"""PageTokens: opaque keyset cursors into one account's listing, which a client cannot forge.

A token names a place in the listing order (a row's ``date_created`` and SID) and a way to go
from it: ``next`` (the older rows after it) or ``previous`` (the newer rows before it). It
carries a MAC keyed by the account's own secret salt, so a token that was altered, cut short,
made up, or minted for another account is refused before any query runs. The SQL is scoped by
the path's account in any case; the MAC is what makes such a token a clear 400 instead of a
list that silently starts somewhere else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.listing import Key
from service.errors import BadRequest

_PREFIX = "PT"
_VERSION = 1
# version, way (0 next, 1 previous), date_created in microseconds since 1970, the SID's 16 bytes
_BODY = struct.Struct(">BBq16s")
_MAC_BYTES = 12
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidPageToken(BadRequest):
    message = "PageToken is not a token this list gave out; start again from the first page"


@dataclass(frozen=True)
class Cursor:
    key: Key
    # True: the page of newer rows just before ``key``; False: the older rows just after it.
    backward: bool


def _mac(salt: bytes, account_sid: str, body: bytes) -> bytes:
    # The salt is random, per account and never shown; a key derived from it (not the salt
    # itself) keeps this use apart from token hashing.
    key = hmac.new(salt, b"recordings page token", hashlib.sha256).digest()
    return hmac.new(key, account_sid.encode() + body, hashlib.sha256).digest()[:_MAC_BYTES]


def encode_page_token(salt: bytes, account_sid: str, cursor: Cursor) -> str:
    """The PageToken of ``cursor`` in this account's listing."""
    micros = (cursor.key.date_created - _EPOCH) // _MICROSECOND
    body = _BODY.pack(_VERSION, int(cursor.backward), micros, bytes.fromhex(cursor.key.sid[2:]))
    raw = body + _mac(salt, account_sid, body)
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(salt: bytes, account_sid: str, token: str) -> Cursor:
    """The cursor a PageToken of this account's listing names; anything else is a 400."""
    if not token.startswith(_PREFIX) or len(token) > 64:
        raise InvalidPageToken()
    text = token[len(_PREFIX) :]
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidPageToken() from exc
    if len(raw) != _BODY.size + _MAC_BYTES:
        raise InvalidPageToken()
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not hmac.compare_digest(mac, _mac(salt, account_sid, body)):
        raise InvalidPageToken()
    version, way, micros, sid = _BODY.unpack(body)
    if version != _VERSION or way not in (0, 1):
        raise InvalidPageToken()
    try:
        created = _EPOCH + micros * _MICROSECOND
    except OverflowError as exc:
        raise InvalidPageToken() from exc
    return Cursor(Key(created, "RE" + sid.hex()), backward=bool(way))
