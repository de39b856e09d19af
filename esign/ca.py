"""The platform CA and the seal certificates it issues (DOMAIN.md §7).

One self-signed root (ECDSA P-384) certifies every department seal's key (ECDSA P-256). A verifier trusts a signed
certificate PDF when its signer chains to this root. Embedded mode creates the root on first run into a folder, its
key encrypted under the key-encryption key; production loads it from PEM files the operators keep (and may keep the
key offline by replacing ``PlatformCA`` with an HSM-backed issuer later).
"""

from __future__ import annotations

import base64
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esign.keys import decrypt_private_key, encrypt_private_key

CA_COMMON_NAME = "建审平台电子印章根证书"
CA_ORGANIZATION = "建审平台"
CA_VALIDITY = timedelta(days=20 * 365)
BUNDLE_NAME = "platform-ca.bundle.pem"  # certificate + encrypted key, written atomically in one file
CERT_NAME = "platform-ca.pem"  # the certificate alone, for verifiers (python -m esign verify --ca, pdfsig's NSS db)
_KEY_PEM_LABEL = "JIANSHEN ENCRYPTED PRIVATE KEY"
_CA_KEY_LABEL = "platform-ca"


@dataclass(frozen=True)
class SealCredentials:
    """What is stored for a seal: its certificate and its private key encrypted under the KEK (never in clear)."""

    certificate_pem: bytes
    encrypted_key: bytes = field(repr=False)
    serial_number: int

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem)

    @property
    def key_label(self) -> str:
        return seal_key_label(self.serial_number)


def seal_key_label(serial_number: int) -> str:
    """The authenticated label under which a seal's key is encrypted: its certificate serial."""
    return f"seal:{serial_number:x}"


class PlatformCA:
    """The root certificate and, when this process may issue, its private key (held here only, never returned)."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> None:
        self.certificate = certificate
        self.__key = key

    def __repr__(self) -> str:
        return f"PlatformCA({self.certificate.subject.rfc4514_string()!r}, serial={self.certificate.serial_number:x})"

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    # --- creation and loading ----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, *, common_name: str = CA_COMMON_NAME, now: datetime | None = None) -> PlatformCA:
        """A new self-signed root: basicConstraints CA (critical), keyUsage keyCertSign + cRLSign, SKI = AKI."""
        key = ec.generate_private_key(ec.SECP384R1())
        now = now or datetime.now(timezone.utc)
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA384())
        )
        return cls(cert, key)

    @classmethod
    def open_or_create(cls, directory: str | os.PathLike, kek: bytes) -> PlatformCA:
        """Embedded mode: load the CA kept in ``directory``, creating it on first run.

        The certificate and the encrypted key are one file created with ``os.link`` (atomic, fails if it exists), so
        two processes starting at once end up with the same CA, never with a certificate and someone else's key.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        bundle = directory / BUNDLE_NAME
        if not bundle.exists():
            ca = cls.create()
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ca-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(ca.certificate_pem + _pem_block(encrypt_private_key(ca.__key, kek, _CA_KEY_LABEL)))
                try:
                    os.link(tmp, bundle)
                except FileExistsError:
                    pass  # another process won the race: use its CA
            finally:
                os.unlink(tmp)
        data = bundle.read_bytes()
        cert = x509.load_pem_x509_certificate(data)
        ca = cls(cert, decrypt_private_key(_read_pem_block(data), kek, _CA_KEY_LABEL))
        cert_file = directory / CERT_NAME
        if not cert_file.exists() or cert_file.read_bytes() != ca.certificate_pem:
            _write_atomic(cert_file, ca.certificate_pem)
        return ca

    @classmethod
    def open(cls, cert_file: str, key_file: str, key_password: str, directory: str, kek: str) -> PlatformCA:
        """The CA of a deployment's settings: the operators' files when ``cert_file`` is set (production), else the
        embedded CA kept in ``directory`` (created on first run). Empty strings mean "not set"."""
        if cert_file:
            return cls.load(cert_file, key_file or None, key_password.encode() or None)
        return cls.open_or_create(directory, kek.encode())

    @classmethod
    def load(cls, certificate_path: str | os.PathLike, key_path: str | os.PathLike | None = None,
             key_password: bytes | None = None) -> PlatformCA:
        """Production: the operators' PEM files (the key PKCS#8, possibly password-encrypted). Without a key path the
        CA can only be used to verify."""
        cert = x509.load_pem_x509_certificate(Path(certificate_path).read_bytes())
        key = None
        if key_path is not None:
            loaded = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=key_password)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError("the platform CA key must be an EC key")
            if loaded.public_key().public_numbers() != cert.public_key().public_numbers():
                raise ValueError("the platform CA key does not match its certificate")
            key = loaded
        return cls(cert, key)

    # --- issuing -------------------------------------------------------------------------------------------------
    def issue_seal(
        self,
        *,
        kek: bytes,
        seal_name: str,
        department_name: str,
        department_uscc: str,
        not_before: datetime,
        not_after: datetime,
    ) -> SealCredentials:
        """A new ECDSA P-256 key for a seal and its certificate, the key returned encrypted under ``kek``.

        Subject: CN = the seal's name, O = the department, OU and serialNumber = the department's USCC (so a verifier
        sees which legal entity sealed), C = CN. keyUsage digitalSignature + nonRepudiation (contentCommitment): a seal
        commits the department to the content, it never certifies other keys.
        """
        if self.__key is None:
            raise RuntimeError("this PlatformCA was loaded without its private key and cannot issue")
        if not_after <= not_before:
            raise ValueError("印章有效期止须晚于有效期起")
        key = ec.generate_private_key(ec.SECP256R1())
        serial = x509.random_serial_number()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, department_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, department_uscc),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, department_uscc),
                x509.NameAttribute(NameOID.COMMON_NAME, seal_name),
            ]
        )
        ca_ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self.__key, hashes.SHA384())
        )
        return SealCredentials(
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM),
            encrypted_key=encrypt_private_key(key, kek, seal_key_label(serial)),
            serial_number=serial,
        )


def _key_usage(**flags: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
             "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


def _pem_block(blob: bytes) -> bytes:
    body = base64.encodebytes(blob).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {_KEY_PEM_LABEL}-----".encode(), *lines, f"-----END {_KEY_PEM_LABEL}-----\n".encode()])


def _read_pem_block(data: bytes) -> bytes:
    begin, end = f"-----BEGIN {_KEY_PEM_LABEL}-----".encode(), f"-----END {_KEY_PEM_LABEL}-----".encode()
    start = data.index(begin) + len(begin)
    return base64.b64decode(data[start : data.index(end, start)])


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def load_certificates(pem: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a trust file may hold several roots)."""
    return x509.load_pem_x509_certificates(pem)
