"""AuthTokens kept encrypted under the server's key, so that callbacks can be signed while a
database dump alone still reveals no token (the hash authenticates; the sealed copy signs)."""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The first byte of a sealed token names its format, so a later scheme can sit beside this one.
_VERSION = b"\x01"
_NONCE_BYTES = 12
# HKDF's info binds the derived key to this one use: the same RECORDINGS_SECRET_KEY may key
# something else later without the two keys being related.
_INFO = b"recordings: AuthToken sealing, AES-256-GCM, v1"
MIN_KEY_CHARACTERS = 32


class SealError(Exception):
    """A sealed token that this key cannot open: another key, another account, or corrupt."""


class TokenSealer:
    """Seals and opens AuthTokens with AES-256-GCM under a key derived from the secret key."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < MIN_KEY_CHARACTERS:
            raise ValueError(f"the secret key needs at least {MIN_KEY_CHARACTERS} characters")
        # HKDF, not a password hash: the operator's key is meant to be random (openssl rand),
        # and the derivation runs in every worker's start-up and every CLI command.
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode("utf-8")
        )
        self._aead = AESGCM(key)

    def seal(self, account_sid: str, token: str) -> bytes:
        """The token encrypted; the AccountSid is authenticated with it, so a sealed token
        copied onto another account's row does not open there."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, token.encode("utf-8"), account_sid.encode())
        return _VERSION + nonce + sealed

    def open(self, account_sid: str, sealed: bytes) -> str:
        """The token of ``account_sid`` that ``seal`` encrypted; SealError if it cannot be."""
        if sealed[:1] != _VERSION or len(sealed) < 1 + _NONCE_BYTES + 16:
            raise SealError("not a sealed token of a known format")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, account_sid.encode()).decode("utf-8")
        except InvalidTag as exc:
            raise SealError("sealed under another key or for another account") from exc


def sealer_for(secret_key: str | None) -> TokenSealer | None:
    """The sealer of RECORDINGS_SECRET_KEY, or None when it is not set."""
    return TokenSealer(secret_key) if secret_key else None
