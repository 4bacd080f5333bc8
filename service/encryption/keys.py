"""A registered public key checked and put in one form: RSA, 2048 bits or more, as PEM."""

from __future__ import annotations

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.errors import BadRequest

# Twilio's rule, and NIST's floor for RSA since 2014.
MIN_KEY_BITS = 2048
# A 16384-bit key's PEM is about 2.8 KB; anything much longer is not a key.
MAX_PEM_CHARS = 16_384


class InvalidPublicKey(BadRequest):
    message = "PublicKey must be an RSA public key of at least 2048 bits, in PEM"


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """The RSA public key of a PEM document; InvalidPublicKey says what is wrong with it."""
    if not pem.strip():
        raise InvalidPublicKey("PublicKey is required: the PEM of an RSA public key")
    if len(pem) > MAX_PEM_CHARS:
        raise InvalidPublicKey(f"PublicKey is longer than {MAX_PEM_CHARS} characters")
    if "PRIVATE KEY" in pem:
        # Never stored, never echoed: the service must not hold what decrypts the recordings.
        raise InvalidPublicKey(
            "PublicKey holds a private key: register the public key only"
            " (openssl rsa -in private_key.pem -pubout)"
        )
    key = _first_readable(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidPublicKey("PublicKey must be an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidPublicKey(
            f"PublicKey is an RSA key of {key.key_size} bits: at least {MIN_KEY_BITS} are required"
        )
    return key


def _first_readable(pem: str) -> object:
    """The key of the PEM as sent, else of the PEM with its base64 lines' spaces read as the
    '+' they were: ``curl -d "PublicKey=$(cat key.pem)"`` sends the key unencoded, and a form
    decoder turns its '+' into spaces (one may open or close a line, so lines are not stripped
    before the spaces are restored)."""
    lines = pem.strip().splitlines()
    as_sent = "\n".join(line.strip() for line in lines)
    restored = "\n".join(
        line.strip() if line.strip().startswith("-----") else line.rstrip("\r").replace(" ", "+")
        for line in lines
    )
    for candidate in (as_sent, restored):
        try:
            return serialization.load_pem_public_key(candidate.encode("utf-8"))
        except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
            continue
    raise InvalidPublicKey("PublicKey is not a PEM public key (-----BEGIN PUBLIC KEY-----)")


def normalise_public_key(pem: str) -> str:
    """The key as SubjectPublicKeyInfo PEM (a PKCS#1 ``RSA PUBLIC KEY`` is accepted too)."""
    key = load_public_key(pem)
    spki = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return spki.decode("ascii")
