"""A recording encrypted as Twilio's Voice Recording Encryption does it, so that Twilio's own
decryption samples read it: a fresh 256-bit content key (CEK) and 96-bit IV per recording,
AES-256-GCM over the WAV with the 16-byte tag appended, and the CEK encrypted with RSAES-OAEP
(MGF1 with SHA-256, SHA-256, no label) under the account's public key."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from service.encryption.keys import load_public_key

ENCRYPTION_TYPE = "rsa-aes"
CEK_BYTES = 32
IV_BYTES = 12
TAG_BYTES = 16
# What the stored object and the media answers of an encrypted recording are: not audio.
CIPHERTEXT_TYPE = "application/octet-stream"
# Large reads: AES-GCM runs at GB/s, the file system calls would dominate small ones.
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Encrypted:
    """What an encryption produced: the 2010 resource's ``encryption_details``, and the
    ciphertext file's size and SHA-256 (hex), read while it was written."""

    details: dict[str, str]
    size: int
    sha256: str


def oaep() -> padding.OAEP:
    """RSAES-OAEP as Twilio uses it: MGF1(SHA-256), SHA-256, no label."""
    return padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    )


def encrypt_file(src: Path, dst: Path, *, public_key_sid: str, public_key_pem: str) -> Encrypted:
    """Write ``src`` encrypted to ``dst`` (a new file), under a key nobody else ever sees.

    Blocking: run it in a thread. The CEK exists only in this call's memory and, encrypted,
    in the details returned.
    """
    public_key = load_public_key(public_key_pem)
    cek = os.urandom(CEK_BYTES)
    iv = os.urandom(IV_BYTES)
    encryptor = Cipher(algorithms.AES(cek), modes.GCM(iv)).encryptor()
    digest = hashlib.sha256()
    size = 0
    with src.open("rb") as plain, dst.open("xb") as out:
        while chunk := plain.read(_CHUNK):
            sealed = encryptor.update(chunk)
            digest.update(sealed)
            out.write(sealed)
            size += len(sealed)
        tail = encryptor.finalize() + encryptor.tag
        digest.update(tail)
        out.write(tail)
        size += len(tail)
    encrypted_cek = public_key.encrypt(cek, oaep())
    details = {
        "type": ENCRYPTION_TYPE,
        "public_key_sid": public_key_sid,
        "encrypted_cek": base64.b64encode(encrypted_cek).decode("ascii"),
        "iv": base64.b64encode(iv).decode("ascii"),
    }
    return Encrypted(details=details, size=size, sha256=digest.hexdigest())
