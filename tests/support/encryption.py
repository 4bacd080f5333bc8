"""The key holder's side of Voice Recording Encryption: RSA key pairs, and decryption exactly as
Twilio's published sample does it (TwilioDevEd/encrypted-media-recordings,
voice-recordings-decryptor/python/RecordingsDecryptor.py)."""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import subprocess
from collections.abc import Mapping
from typing import BinaryIO

import asyncpg
import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from db.public_keys import set_encryption_key
from tests.support.clients import Account

PUBLIC_KEYS = "/v1/Credentials/PublicKeys"
TAG_BYTES = 16


@functools.cache
def key_pair(bits: int = 2048, seed: int = 0) -> tuple[bytes, str]:
    """A private key's PEM (bytes, as the sample reads it from a file) and its public key's PEM;
    ``seed`` only tells apart pairs of one size."""
    del seed
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


def ec_public_pem() -> str:
    """A public key that is not RSA."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sample_decrypt(pem: bytes, details: Mapping[str, str], f: BinaryIO, out: BinaryIO) -> None:
    """The sample's steps, unchanged: it never calls finalize(), so what it writes ends with
    the GCM tag run through the key stream (16 bytes that are not audio)."""
    encrypted_cek = details["encrypted_cek"]
    iv = details["iv"]
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cek = key.decrypt(
        base64.b64decode(encrypted_cek),
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )
    decryptor = Cipher(algorithms.AES(cek), modes.GCM(base64.b64decode(iv))).decryptor()
    for chunk in iter(lambda: f.read(4 * 1024), b""):
        out.write(decryptor.update(chunk))


def decrypt_as_sample(pem: bytes, details: Mapping[str, str], ciphertext: bytes) -> bytes:
    """The WAV the sample's output holds: all of it but its last 16 bytes."""
    out = io.BytesIO()
    sample_decrypt(pem, details, io.BytesIO(ciphertext), out)
    return out.getvalue()[:-TAG_BYTES]


def decrypt_verified(pem: bytes, details: Mapping[str, str], ciphertext: bytes) -> bytes:
    """The plaintext with the tag checked (AESGCM raises InvalidTag on any altered byte)."""
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    cek = key.decrypt(
        base64.b64decode(details["encrypted_cek"]),
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        ),
    )
    return AESGCM(cek).decrypt(base64.b64decode(details["iv"]), ciphertext, None)


def register_key(http: httpx.Client, account: Account, public_pem: str, name: str = "") -> str:
    """POST the key as twilio-python does; its CR SID."""
    data = {"PublicKey": public_pem}
    if name:
        data["FriendlyName"] = name
    response = http.post(PUBLIC_KEYS, data=data, auth=account.auth)
    assert response.status_code == 201, response.text
    sid: str = response.json()["sid"]
    return sid


def use_key(dsn: str, account_sid: str, key_sid: str | None) -> None:
    """Encrypt the account's new recordings under ``key_sid`` (None: in the clear), as
    `recordings accounts set --encryption-key` does."""

    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            assert await set_encryption_key(conn, account_sid, key_sid)
        finally:
            await conn.close()

    asyncio.run(go())


def decodable_audio(ffmpeg: str, data: bytes) -> bool:
    """Whether ffmpeg finds any audio stream it can decode in ``data`` (read from a pipe)."""
    if data.startswith(b"RIFF"):
        return True
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", "pipe:0", "-f", "null", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return result.returncode == 0
