"""Signed certificate PDFs checked by esign's verifier and by poppler's pdfsig (issue #4 "Proof", DOMAIN.md §6–7)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from esign import SealSigner, VerificationStatus, render_certificate, sign_pdf, verify_pdf
from tests.esign.conftest import IDENTIFIER, SEAL_NAME, construction_permit, pdfsig, sign_certificate

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data: bytes, name: str = "cert.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def flip_byte(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


# --- valid and untouched ------------------------------------------------------------------------------------------------
def test_valid_certificate(platform, signed_pdf):
    result = verify_pdf(signed_pdf, [platform.ca.certificate])
    assert result.status is VerificationStatus.VALID, result.message
    assert result.valid
    assert result.identifier == IDENTIFIER
    assert result.seal_name == SEAL_NAME
    assert result.department == "珠海市住房和城乡建设局"
    assert result.seal_serial == platform.seal.serial_number
    assert result.signed_at is not None and result.signed_at.tzinfo is not None
    assert "签名有效" in result.message


def test_pdfsig_valid_and_trusted(tmp_path, signed_pdf, nss_db):
    out = pdfsig(write(tmp_path, signed_pdf), nss_db)
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Certificate Validation: Certificate is Trusted." in out, out
    assert "Total document signed" in out, out
    assert "ETSI.CAdES.detached" in out and "SHA-256" in out, out
    assert f"Signer Certificate Common Name: {SEAL_NAME}" in out, out


def test_signature_appearance_is_the_seal_over_the_issuer_line(signed_pdf):
    # The signature field has a visible rectangle of the seal's size (42 mm) holding an image XObject.
    from pyhanko.pdf_utils.reader import PdfFileReader
    import io

    reader = PdfFileReader(io.BytesIO(signed_pdf))
    (embedded,) = reader.embedded_regular_signatures
    widget = embedded.sig_field
    x1, y1, x2, y2 = (float(v) for v in widget["/Rect"])
    assert abs((x2 - x1) - 42 * 72 / 25.4) < 1.5 and abs((y2 - y1) - 42 * 72 / 25.4) < 1.5
    appearance = widget["/AP"]["/N"]
    assert b"/Image" in _dump_xobjects(appearance)


def _dump_xobjects(stream) -> bytes:
    """Subtypes of the XObjects reachable from an appearance stream (the seal image sits in a nested form)."""
    found = []

    def walk(obj, depth=0):
        if depth > 4:
            return
        resources = obj.get("/Resources")
        if resources is None:
            return
        for xobj in resources.get("/XObject", {}).values():
            xobj = xobj.get_object()
            found.append(str(xobj.get("/Subtype")))
            walk(xobj, depth + 1)

    walk(stream)
    return " ".join(found).encode()


# --- tampering ----------------------------------------------------------------------------------------------------------
def test_one_changed_byte_is_tampered(tmp_path, platform, signed_pdf, nss_db):
    # A byte inside the signed content: the document information (a value, not structure), as an editor would change
    # the holder's name.
    offset = signed_pdf.index(b"/Keywords") + 12
    tampered = flip_byte(signed_pdf, offset)
    result = verify_pdf(tampered, [platform.ca.certificate])
    assert result.status is VerificationStatus.TAMPERED, result.message
    assert "篡改" in result.message
    out = pdfsig(write(tmp_path, tampered), nss_db)
    assert "Signature Validation: Digest Mismatch." in out, out


def test_changed_byte_in_page_content_is_tampered(tmp_path, platform, signed_pdf):
    start = signed_pdf.index(b"stream", signed_pdf.index(b"/Contents")) + 20
    tampered = flip_byte(signed_pdf, start)
    assert verify_pdf(tampered, [platform.ca.certificate]).status is VerificationStatus.TAMPERED
    assert "Digest Mismatch" in pdfsig(write(tmp_path, tampered))


def test_changed_signature_value_is_tampered(tmp_path, platform, signed_pdf):
    # The last bytes of the CMS container hold the ECDSA signature value; the container is hex in /Contents <...>.
    # Find the DER's end from its own length (30 82 LLLL), not by searching for "0000": the DER itself may hold two
    # zero bytes (a random key or signature), and a flip before the signature value proves nothing.
    contents = signed_pdf.rindex(b"/Contents <") + len(b"/Contents <")
    header = bytes.fromhex(signed_pdf[contents : contents + 8].decode())
    assert header[0] == 0x30 and header[1] == 0x82, header
    cms_end = contents + 2 * (4 + int.from_bytes(header[2:4], "big"))
    assert set(signed_pdf[cms_end : cms_end + 64]) == {ord("0")}  # the zero padding starts here
    offset = cms_end - 6
    hexdigit = signed_pdf[offset : offset + 1]
    tampered = bytearray(signed_pdf)
    tampered[offset : offset + 1] = b"1" if hexdigit != b"1" else b"2"
    result = verify_pdf(bytes(tampered), [platform.ca.certificate])
    assert result.status is VerificationStatus.TAMPERED, result.message
    out = pdfsig(write(tmp_path, bytes(tampered)))
    assert "Signature is Valid" not in out, out


def test_changed_byte_in_a_carried_certificate_is_tampered(platform, signed_pdf):
    # The CMS certificates set is outside what the signature covers; esign checks each carried certificate under its
    # issuer. Change one byte inside the copy of the platform root carried in the file.
    from cryptography.hazmat.primitives import serialization

    root_hex = platform.ca.certificate.public_bytes(serialization.Encoding.DER).hex()
    contents = signed_pdf.rindex(b"/Contents <") + len(b"/Contents <")
    window = signed_pdf[contents : contents + 20000].decode("ascii", "replace").lower()
    at = contents + window.index(root_hex[200:240]) + 10
    tampered = bytearray(signed_pdf)
    tampered[at : at + 1] = b"1" if signed_pdf[at : at + 1] != b"1" else b"2"
    result = verify_pdf(bytes(tampered), [platform.ca.certificate])
    assert result.status is VerificationStatus.TAMPERED, result.message


def test_every_sampled_single_byte_change_is_caught(platform, signed_pdf):
    # Wherever a byte changes (structure, content, signature), the verdict is never VALID.
    size = len(signed_pdf)
    for offset in range(101, size, size // 120):
        result = verify_pdf(flip_byte(signed_pdf, offset), [platform.ca.certificate])
        assert result.status is not VerificationStatus.VALID, (offset, result)


def test_sampled_changes_inside_the_signature_container_are_caught(platform, signed_pdf):
    # CMS leaves parts of the container unsigned (lengths, padding, carried certificates, the digest list); esign pins
    # them for its own signatures. Every 13th hex digit of the container is changed in turn (all of them were checked
    # once by hand: none verifies).
    start = signed_pdf.rindex(b"/Contents <") + len(b"/Contents <")
    end = signed_pdf.index(b"0000000000", start)
    for offset in range(start, end, 13):
        result = verify_pdf(flip_byte(signed_pdf, offset), [platform.ca.certificate])
        assert result.status is not VerificationStatus.VALID, (offset - start, result)


def test_appended_update_is_tampered(tmp_path, platform, signed_pdf):
    appended = signed_pdf + b"\n1 0 obj\n<< /Title (forged) >>\nendobj\n"
    result = verify_pdf(appended, [platform.ca.certificate])
    assert result.status is VerificationStatus.TAMPERED, result.message
    out = pdfsig(write(tmp_path, appended))
    assert "Total document signed" not in out, out


# --- trust --------------------------------------------------------------------------------------------------------------
def test_signed_outside_the_platform_is_not_trusted(tmp_path, platform, outsider, nss_db):
    foreign = sign_certificate(outsider)
    result = verify_pdf(foreign, [platform.ca.certificate])
    assert result.status is VerificationStatus.NOT_TRUSTED, result.message
    assert "不是本平台" in result.message
    # pdfsig agrees: the signature itself is intact, its issuer is not trusted.
    out = pdfsig(write(tmp_path, foreign), nss_db)
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Certificate Validation: Certificate issuer isn't Trusted." in out, out


def test_self_signed_seal_is_not_trusted(tmp_path, platform):
    """A key that holds a certificate copying our seal's names but signed by itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(platform.seal.certificate.subject)
        .issuer_name(platform.ca.certificate.subject)  # claims our CA as issuer
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(platform.seal.certificate.not_valid_before_utc)
        .not_valid_after(platform.seal.certificate.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )
    forged = _KeySigner(cert, key, chain=[])
    rendered = render_certificate(construction_permit())
    pdf = sign_pdf(rendered.pdf, forged, seal_image_png=platform.seal_image, seal_box=rendered.seal_box)
    assert verify_pdf(pdf, [platform.ca.certificate]).status is VerificationStatus.NOT_TRUSTED


# --- revocation of the seal ---------------------------------------------------------------------------------------------
def test_signed_after_seal_revocation_is_invalid(platform, signed_pdf):
    signed_at = verify_pdf(signed_pdf, [platform.ca.certificate]).signed_at
    serial = platform.seal.serial_number
    for revoked_at in (signed_at - timedelta(days=3), signed_at):
        result = verify_pdf(signed_pdf, [platform.ca.certificate], {serial: revoked_at}.get)
        assert result.status is VerificationStatus.SEAL_REVOKED, result.message
        assert result.seal_revoked_at == revoked_at
        assert "吊销" in result.message


def test_signed_before_seal_revocation_stays_valid(platform, signed_pdf):
    signed_at = verify_pdf(signed_pdf, [platform.ca.certificate]).signed_at
    revoked = {platform.seal.serial_number: signed_at + timedelta(seconds=1)}
    result = verify_pdf(signed_pdf, [platform.ca.certificate], revoked.get)
    assert result.status is VerificationStatus.VALID, result.message


def test_revocation_of_another_seal_does_not_matter(platform, signed_pdf):
    signed_at = verify_pdf(signed_pdf, [platform.ca.certificate]).signed_at
    revoked = {platform.seal.serial_number + 1: signed_at - timedelta(days=1)}
    assert verify_pdf(signed_pdf, [platform.ca.certificate], revoked.get).valid


# --- other inputs -------------------------------------------------------------------------------------------------------
def test_unsigned_and_non_pdf(platform):
    unsigned = render_certificate(construction_permit()).pdf
    result = verify_pdf(unsigned, [platform.ca.certificate])
    assert result.status is VerificationStatus.NOT_SIGNED
    assert result.identifier == IDENTIFIER
    assert verify_pdf(b"GIF89a not a pdf", [platform.ca.certificate]).status is VerificationStatus.UNREADABLE
    assert verify_pdf(b"", [platform.ca.certificate]).status is VerificationStatus.UNREADABLE


# --- the signing interface can be replaced (SM2, HSM, remote seal service) ---------------------------------------------
class _KeySigner:
    """Another SealSigner implementation, the way an HSM or remote seal service adapter would be: here P-384/SHA-384."""

    def __init__(self, certificate, key, chain, mechanism="sha256_ecdsa"):
        self.certificate = certificate
        self._key = key
        self.chain = chain
        self.signature_mechanism = mechanism
        self.calls = 0

    def sign(self, data: bytes) -> bytes:
        self.calls += 1
        digest = hashes.SHA384() if self.signature_mechanism == "sha384_ecdsa" else hashes.SHA256()
        return self._key.sign(data, ec.ECDSA(digest))


def test_another_signer_implementation_is_used_as_is(tmp_path, platform, nss_db):
    from esign.ca import seal_key_label
    from esign.keys import decrypt_private_key
    from tests.esign.conftest import KEK

    key = decrypt_private_key(platform.seal.encrypted_key, KEK, seal_key_label(platform.seal.serial_number))
    custom = _KeySigner(platform.seal.certificate, key, [platform.ca.certificate], mechanism="sha384_ecdsa")
    assert isinstance(custom, SealSigner)
    rendered = render_certificate(construction_permit())
    pdf = sign_pdf(rendered.pdf, custom, seal_image_png=platform.seal_image, seal_box=rendered.seal_box)
    assert custom.calls == 1  # no dry-run signature: an HSM or remote service is called once per document
    assert verify_pdf(pdf, [platform.ca.certificate]).valid
    out = pdfsig(write(tmp_path, pdf), nss_db)
    assert "Signature is Valid." in out and "SHA-384" in out, out


# --- command line ---------------------------------------------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "esign", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_cli_verify(tmp_path, platform, signed_pdf, outsider):
    good = write(tmp_path, signed_pdf)
    done = run_cli("verify", str(good), "--ca", str(platform.ca_pem_path))
    assert done.returncode == 0, done.stderr
    assert "签名有效" in done.stdout and IDENTIFIER in done.stdout

    bad = write(tmp_path, flip_byte(signed_pdf, signed_pdf.index(b"/Keywords") + 12), "bad.pdf")
    done = run_cli("verify", str(bad), "--ca", str(platform.ca_pem_path))
    assert done.returncode == 1 and "TAMPERED" in done.stdout

    done = run_cli("verify", str(good), "--ca", str(outsider.ca_pem_path))
    assert done.returncode == 1 and "NOT_TRUSTED" in done.stdout

    revoked = tmp_path / "revoked.json"
    revoked.write_text('{"%s": "2000-01-01T00:00:00+08:00"}' % hex(platform.seal.serial_number), encoding="utf-8")
    done = run_cli("verify", str(good), "--ca", str(platform.ca_pem_path), "--revoked", str(revoked))
    assert done.returncode == 1 and "SEAL_REVOKED" in done.stdout


def test_seal_stamp_is_the_seal_image(platform, signed_pdf):
    """The stamp's image XObject (kept deflated per seal image, issue #13) decodes to the seal PNG's pixels, its
    alpha as the /SMask, as pyHanko's own image writer gives them."""
    import io

    from PIL import Image
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(signed_pdf))
    (embedded,) = reader.embedded_regular_signatures
    appearance = embedded.sig_field["/Kids"][0] if "/Kids" in embedded.sig_field else embedded.sig_field
    images = []

    def walk(xobjects):
        for ref in xobjects.values():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                images.append(obj)
            elif "/Resources" in obj and "/XObject" in obj["/Resources"]:
                walk(obj["/Resources"]["/XObject"])

    walk(appearance["/AP"]["/N"].get_object()["/Resources"]["/XObject"])
    (image,) = images
    seal = Image.open(io.BytesIO(platform.seal_image)).convert("RGBA")
    assert (int(image["/Width"]), int(image["/Height"])) == seal.size
    assert image.data == seal.convert("RGB").tobytes()
    smask = image["/SMask"].get_object()
    assert smask["/ColorSpace"] == "/DeviceGray" and smask.data == seal.getchannel("A").tobytes()
