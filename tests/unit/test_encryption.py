"""service.encryption without servers: which public keys are accepted, and a ciphertext that
Twilio's published decryption sample turns back into the WAV."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.encryption.cipher import ENCRYPTION_TYPE, encrypt_file
from service.encryption.keys import InvalidPublicKey, load_public_key, normalise_public_key
from tests.support.encryption import (
    decrypt_as_sample,
    decrypt_verified,
    ec_public_pem,
    key_pair,
)

SID = "CR" + "a" * 32


def encrypt(tmp_path: Path, plaintext: bytes, public_pem: str) -> tuple[dict[str, str], bytes]:
    src, dst = tmp_path / "plain.wav", tmp_path / "sealed"
    src.write_bytes(plaintext)
    made = encrypt_file(src, dst, public_key_sid=SID, public_key_pem=public_pem)
    ciphertext = dst.read_bytes()
    assert made.size == len(ciphertext)
    return made.details, ciphertext


def test_twilios_sample_decrypts_what_is_encrypted(tmp_path: Path) -> None:
    private_pem, public_pem = key_pair()
    # Longer than the cipher's 1 MiB chunks and not a multiple of the AES block.
    plaintext = b"RIFF" + os.urandom(3 * 1024 * 1024 + 7)
    details, ciphertext = encrypt(tmp_path, plaintext, public_pem)
    assert set(details) == {"type", "public_key_sid", "encrypted_cek", "iv"}
    assert details["type"] == ENCRYPTION_TYPE == "rsa-aes"
    assert details["public_key_sid"] == SID
    assert len(base64.b64decode(details["iv"])) == 12
    # RSAES-OAEP output is as long as the modulus.
    assert len(base64.b64decode(details["encrypted_cek"])) == 256
    assert len(ciphertext) == len(plaintext) + 16
    assert plaintext[:64] not in ciphertext
    assert decrypt_as_sample(private_pem, details, ciphertext) == plaintext
    assert decrypt_verified(private_pem, details, ciphertext) == plaintext


def test_the_tag_is_appended_and_checked(tmp_path: Path) -> None:
    private_pem, public_pem = key_pair()
    details, ciphertext = encrypt(tmp_path, b"RIFF" + b"\0" * 1000, public_pem)
    flipped = bytearray(ciphertext)
    flipped[10] ^= 1
    with pytest.raises(InvalidTag):
        decrypt_verified(private_pem, details, bytes(flipped))
    with pytest.raises(InvalidTag):
        decrypt_verified(private_pem, details, ciphertext[:-16])


def test_every_recording_has_its_own_key_and_iv(tmp_path: Path) -> None:
    _, public_pem = key_pair()
    plaintext = b"RIFF" + b"\1" * 4096
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, one = encrypt(tmp_path / "a", plaintext, public_pem)
    second, two = encrypt(tmp_path / "b", plaintext, public_pem)
    assert first["iv"] != second["iv"]
    assert first["encrypted_cek"] != second["encrypted_cek"]
    assert one != two


def test_a_pkcs1_rsa_key_is_accepted_and_stored_as_spki() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pkcs1 = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    stored = normalise_public_key(pkcs1.decode())
    assert stored.startswith("-----BEGIN PUBLIC KEY-----")
    assert load_public_key(stored).public_numbers() == private.public_key().public_numbers()


def test_a_key_sent_unencoded_in_a_form_is_read() -> None:
    """``curl -d "PublicKey=$(cat key.pem)"``: the form decoder turned every '+' into a space."""
    public_pem = next(pem for seed in range(20) if "+" in (pem := key_pair(seed=seed)[1]))
    assert normalise_public_key(public_pem.replace("+", " ")) == public_pem
    # Rewrapped so that a '+' opens a line, then closes one: no line may be stripped first.
    armour = public_pem.splitlines()
    body = "".join(armour[1:-1])
    plus = body.index("+")
    for cut in (plus, plus + 1):
        rewrapped = "\n".join([armour[0], body[:cut], body[cut:], armour[-1]]) + "\n"
        assert normalise_public_key(rewrapped.replace("+", " ")) == public_pem


def test_a_4096_bit_key_with_surrounding_whitespace_is_accepted() -> None:
    _, public_pem = key_pair(4096)
    assert load_public_key(f"\n  {public_pem}\n\n").key_size == 4096


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        ("", "required"),
        ("   \n", "required"),
        ("not a key", "not a PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM public key"),
        ("-----BEGIN PUBLIC KEY-----\n" + "A" * 20_000, "longer than"),
    ],
)
def test_malformed_pem_is_refused(pem: str, says: str) -> None:
    with pytest.raises(InvalidPublicKey) as raised:
        normalise_public_key(pem)
    assert says in raised.value.message
    assert raised.value.status == 400


def test_keys_under_2048_bits_are_refused() -> None:
    _, short = key_pair(1024)
    with pytest.raises(InvalidPublicKey, match="1024 bits: at least 2048"):
        normalise_public_key(short)


def test_a_key_that_is_not_rsa_is_refused() -> None:
    with pytest.raises(InvalidPublicKey, match="must be an RSA key"):
        normalise_public_key(ec_public_pem())


def test_a_private_key_is_refused_and_not_parsed() -> None:
    private_pem, _ = key_pair()
    with pytest.raises(InvalidPublicKey, match="private key"):
        normalise_public_key(private_pem.decode())
