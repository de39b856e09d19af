"""Seal keys are encrypted at rest under the key-encryption key and never shown (DOMAIN.md §7)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from esign import KeyDecryptionError, LocalSealSigner
from esign.ca import seal_key_label
from esign.keys import decrypt_private_key, encrypt_private_key
from tests.esign.conftest import KEK


def clear_forms(key: ec.EllipticCurvePrivateKey) -> list[bytes]:
    """Every form in which the clear key could leak: PKCS#8 DER and PEM, SEC1 DER, the raw private scalar."""
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return [
        key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ),
        scalar,
        scalar.hex().encode(),
    ]


def test_round_trip():
    key = ec.generate_private_key(ec.SECP256R1())
    blob = encrypt_private_key(key, KEK, "seal:1")
    opened = decrypt_private_key(blob, KEK, "seal:1")
    assert opened.private_numbers() == key.private_numbers()


def test_blob_does_not_contain_the_clear_key():
    key = ec.generate_private_key(ec.SECP256R1())
    blob = encrypt_private_key(key, KEK, "seal:1")
    for form in clear_forms(key):
        assert form not in blob
    # Two encryptions of the same key differ (fresh nonce): equal blobs would reveal equal keys.
    assert encrypt_private_key(key, KEK, "seal:1") != blob


def test_seal_blob_does_not_contain_the_clear_key(platform):
    key = decrypt_private_key(platform.seal.encrypted_key, KEK, seal_key_label(platform.seal.serial_number))
    for form in clear_forms(key):
        assert form not in platform.seal.encrypted_key
        assert form not in platform.seal.certificate_pem


def test_wrong_kek_fails():
    key = ec.generate_private_key(ec.SECP256R1())
    blob = encrypt_private_key(key, KEK, "seal:1")
    wrong = bytes(reversed(KEK))
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(blob, wrong, "seal:1")


def test_blob_of_another_seal_or_altered_blob_fails():
    key = ec.generate_private_key(ec.SECP256R1())
    blob = encrypt_private_key(key, KEK, "seal:1")
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(blob, KEK, "seal:2")
    altered = bytearray(blob)
    altered[-1] ^= 1
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(bytes(altered), KEK, "seal:1")
    with pytest.raises(KeyDecryptionError):
        decrypt_private_key(b"not a blob", KEK, "seal:1")


def test_short_kek_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError):
        encrypt_private_key(key, b"too short", "")


def test_signer_with_wrong_kek_fails(platform):
    with pytest.raises(KeyDecryptionError):
        LocalSealSigner(platform.seal, b"\x00" * 32, [platform.ca.certificate])


def test_key_never_in_repr(platform):
    key = decrypt_private_key(platform.seal.encrypted_key, KEK, seal_key_label(platform.seal.serial_number))
    scalar = key.private_numbers().private_value
    shown = " ".join([repr(platform.seal), repr(platform.signer), repr(platform.ca), str(vars(platform.signer))])
    assert str(scalar) not in shown and f"{scalar:x}" not in shown
    assert "encrypted_key" not in repr(platform.seal)


def test_ca_key_on_disk_is_encrypted(platform):
    bundle = (platform.directory / "platform-ca.bundle.pem").read_bytes()
    assert b"PRIVATE KEY-----" in bundle and b"BEGIN PRIVATE KEY" not in bundle and b"BEGIN EC PRIVATE KEY" not in bundle
