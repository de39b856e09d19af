"""The one signing interface (DOMAIN.md §7): everything that seals a document goes through ``SealSigner``.

The default is ``LocalSealSigner``: the seal's ECDSA P-256 key, decrypted from its blob with the key-encryption key
and held only inside this object. National seals (GB/T 38540) use SM2/SM3, which ``cryptography`` does not implement;
an SM2 signer, an HSM (PKCS#11) or a remote seal service implements the same four members and nothing else changes:
the PDF code only sees ``SealSigner``, adapted to pyHanko by ``pyhanko_signer``.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.sign.signers import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from esign.ca import SealCredentials
from esign.keys import decrypt_private_key


@runtime_checkable
class SealSigner(Protocol):
    """A seal that can sign: its certificate, the chain up to the platform root, and a raw signature operation."""

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        """The issuers of ``certificate``, nearest first, up to and including the platform root."""
        ...

    @property
    def signature_mechanism(self) -> str:
        """The CMS signature algorithm name (asn1crypto spelling), e.g. ``sha256_ecdsa``; it fixes the digest too."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (the DER of the CMS signed attributes) with the mechanism: hash + sign, DER signature out."""
        ...


# digest algorithm each mechanism hashes with (what goes into the CMS SignerInfo.digestAlgorithm)
_DIGEST_OF = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}


def digest_algorithm(signer: SealSigner) -> str:
    return _DIGEST_OF.get(signer.signature_mechanism, "sha256")


class LocalSealSigner:
    """The default signer: an ECDSA P-256 key in this process's memory, opened from its encrypted blob."""

    signature_mechanism = "sha256_ecdsa"

    def __init__(self, credentials: SealCredentials, kek: bytes, chain: Sequence[x509.Certificate]) -> None:
        self._certificate = credentials.certificate
        key = decrypt_private_key(credentials.encrypted_key, kek, credentials.key_label)
        if key.public_key().public_numbers() != self._certificate.public_key().public_numbers():
            raise ValueError("the seal's key does not match its certificate")
        self.__key = key
        self._chain = tuple(chain)

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def chain(self) -> Sequence[x509.Certificate]:
        return self._chain

    def sign(self, data: bytes) -> bytes:
        return self.__key.sign(data, ec.ECDSA(hashes.SHA256()))

    def __repr__(self) -> str:
        return f"LocalSealSigner({self._certificate.subject.rfc4514_string()!r})"


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class _PyHankoSealSigner(Signer):
    """pyHanko's ``Signer`` over any ``SealSigner`` (the adapter the brief of DOMAIN.md §7 asks for)."""

    def __init__(self, seal: SealSigner) -> None:
        self._seal = seal
        super().__init__(
            signing_cert=_to_asn1(seal.certificate),
            cert_registry=SimpleCertificateStore.from_certs([_to_asn1(c) for c in seal.chain]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": seal.signature_mechanism}),
            embed_roots=True,  # some verifiers (pdfsig) build paths only from certificates in the file
        )

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        # esign reserves a fixed size for the signature container, so pyHanko never asks for a dry run; if it did,
        # a real signature is the only size that is right for every mechanism.
        return self._seal.sign(data)


def pyhanko_signer(seal: SealSigner) -> Signer:
    return _PyHankoSealSigner(seal)
