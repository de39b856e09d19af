"""The platform CA and the seal certificates it issues (DOMAIN.md §7)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from esign import PlatformCA
from tests.esign.conftest import DEPARTMENT, DEPARTMENT_USCC, KEK, SEAL_NAME


def test_root_certificate_extensions(platform):
    cert = platform.ca.certificate
    assert cert.subject == cert.issuer
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey) and cert.public_key().curve.name == "secp384r1"
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign and not usage.value.digital_signature
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    cert.verify_directly_issued_by(cert)


def test_seal_certificate(platform):
    cert = platform.seal.certificate
    cert.verify_directly_issued_by(platform.ca.certificate)
    assert cert.serial_number == platform.seal.serial_number
    assert cert.public_key().curve.name == "secp256r1"
    subject = cert.subject
    assert subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SEAL_NAME
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == DEPARTMENT
    assert subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == DEPARTMENT_USCC
    assert subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value == DEPARTMENT_USCC
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ca_ski = platform.ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ca_ski.digest


def test_seal_validity_is_what_was_asked(platform):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    seal = platform.ca.issue_seal(
        kek=KEK, seal_name=SEAL_NAME, department_name=DEPARTMENT, department_uscc=DEPARTMENT_USCC,
        not_before=start, not_after=start + timedelta(days=730),
    )
    assert seal.certificate.not_valid_before_utc == start
    assert seal.certificate.not_valid_after_utc == start + timedelta(days=730)
    assert seal.serial_number != platform.seal.serial_number
    with pytest.raises(ValueError):
        platform.ca.issue_seal(
            kek=KEK, seal_name=SEAL_NAME, department_name=DEPARTMENT, department_uscc=DEPARTMENT_USCC,
            not_before=start, not_after=start,
        )


def test_embedded_ca_is_created_once_and_reloaded(tmp_path):
    first = PlatformCA.open_or_create(tmp_path, KEK)
    again = PlatformCA.open_or_create(tmp_path, KEK)
    assert again.certificate == first.certificate
    assert (tmp_path / "platform-ca.pem").read_bytes() == first.certificate_pem
    with pytest.raises(Exception):
        PlatformCA.open_or_create(tmp_path, b"\x01" * 32)  # the key on disk needs the right KEK


def test_concurrent_first_runs_agree_on_one_ca(tmp_path):
    results = []
    threads = [threading.Thread(target=lambda: results.append(PlatformCA.open_or_create(tmp_path, KEK))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({ca.certificate.serial_number for ca in results}) == 1


def test_production_ca_from_pem_files(tmp_path):
    made = PlatformCA.create()
    key_pem = made._PlatformCA__key.private_bytes(  # what the operators would hold in a file
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"operator-pass"),
    )
    (tmp_path / "ca.pem").write_bytes(made.certificate_pem)
    (tmp_path / "ca-key.pem").write_bytes(key_pem)
    loaded = PlatformCA.load(tmp_path / "ca.pem", tmp_path / "ca-key.pem", b"operator-pass")
    seal = loaded.issue_seal(
        kek=KEK, seal_name=SEAL_NAME, department_name=DEPARTMENT, department_uscc=DEPARTMENT_USCC,
        not_before=datetime.now(timezone.utc), not_after=datetime.now(timezone.utc) + timedelta(days=1),
    )
    seal.certificate.verify_directly_issued_by(made.certificate)

    verify_only = PlatformCA.load(tmp_path / "ca.pem")
    with pytest.raises(RuntimeError):
        verify_only.issue_seal(
            kek=KEK, seal_name=SEAL_NAME, department_name=DEPARTMENT, department_uscc=DEPARTMENT_USCC,
            not_before=datetime.now(timezone.utc), not_after=datetime.now(timezone.utc) + timedelta(days=1),
        )

    other_key = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "other-key.pem").write_bytes(other_key)
    with pytest.raises(ValueError):
        PlatformCA.load(tmp_path / "ca.pem", tmp_path / "other-key.pem")
