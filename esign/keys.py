"""Private keys at rest: an AES-256-GCM envelope under the key-encryption key from the settings (DOMAIN.md §7).

A seal's private key exists in clear only inside this package, in memory, for the time of a signature. What leaves
esign/ (to the database, to a file) is the encrypted blob made here:

    b"JSK1" | nonce (12 bytes) | AES-256-GCM(PKCS#8 DER of the key, aad = b"JSK1" | label)

The AES key is derived from the KEK with HKDF-SHA256, so a KEK of any length ≥ 32 bytes can be used and the same KEK
is never used directly as a cipher key. The ``label`` (e.g. the seal's certificate serial) is authenticated: a blob
copied onto another seal's row does not decrypt.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"JSK1"
NONCE_SIZE = 12
MIN_KEK_SIZE = 32
_HKDF_INFO = b"jianshen/esign/private-key-envelope/v1"


class KeyDecryptionError(Exception):
    """The blob could not be opened: wrong key-encryption key, wrong label, or the blob was altered."""


def _cipher(kek: bytes) -> AESGCM:
    if not isinstance(kek, bytes | bytearray) or len(kek) < MIN_KEK_SIZE:
        raise ValueError(f"the key-encryption key must be at least {MIN_KEK_SIZE} bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(bytes(kek))
    return AESGCM(key)


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, kek: bytes, label: str = "") -> bytes:
    """The encrypted blob of ``key`` (see the module docstring)."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    nonce = os.urandom(NONCE_SIZE)
    return MAGIC + nonce + _cipher(kek).encrypt(nonce, der, MAGIC + label.encode("utf-8"))


def decrypt_private_key(blob: bytes, kek: bytes, label: str = "") -> ec.EllipticCurvePrivateKey:
    """Open a blob made by ``encrypt_private_key``; raises ``KeyDecryptionError`` on any mismatch."""
    if not isinstance(blob, bytes | bytearray) or not bytes(blob).startswith(MAGIC) or len(blob) < 4 + NONCE_SIZE + 16:
        raise KeyDecryptionError("not an esign key blob")
    blob = bytes(blob)
    nonce, ciphertext = blob[4 : 4 + NONCE_SIZE], blob[4 + NONCE_SIZE :]
    try:
        der = _cipher(kek).decrypt(nonce, ciphertext, MAGIC + label.encode("utf-8"))
    except InvalidTag:
        raise KeyDecryptionError("wrong key-encryption key, wrong label, or altered blob") from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyDecryptionError("the blob does not hold an EC private key")
    return key
