"""Checking a sealed certificate PDF (DOMAIN.md §6 "Verification", §7).

Answers the four questions of the public verification service, in this order, and stops at the first "no":
1. Is it a signed PDF at all?
2. Is the signature intact: the digest matches and it covers the whole file but the signature itself? Any byte
   changed or appended after signing → TAMPERED. That includes the bytes of the signature container that CMS leaves
   unsigned (zero padding, carried certificates, digest list): for a trusted signature they must be exactly what esign
   writes (``_unsigned_parts_untouched``).
3. Does the signer's certificate chain to the platform CA (checked as of the signing time, so a seal certificate that
   has since expired does not void what it signed while valid)? Otherwise → NOT_TRUSTED.
4. Was the seal active when it signed: signing time earlier than the seal's revocation (DOMAIN.md §7)? Otherwise →
   SEAL_REVOKED.
It also reads back the 证照标识 the renderer put in the document information, so the caller can look up the
certificate's own status (revoked / expired / superseded), which is a database question, not a cryptographic one.

The signing time is the signer's signed ``signingTime`` attribute: the platform signs with its own clock and there is
no timestamp authority, so it is as trustworthy as the platform's key — enough to order a signature and a revocation
made on the same platform.
"""

from __future__ import annotations

import asyncio
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Callable, Iterable

from asn1crypto import x509 as asn1_x509
from asn1crypto.parser import parse as asn1_parse
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from esign.document import identifier_from_keywords

RevocationLookup = Callable[[int], "datetime | None"]  # seal certificate serial → revoked_at (aware) or None
logger = logging.getLogger(__name__)


class VerificationStatus(str, Enum):
    VALID = "VALID"
    UNREADABLE = "UNREADABLE"  # not a PDF, or so damaged that it cannot be parsed
    NOT_SIGNED = "NOT_SIGNED"
    TAMPERED = "TAMPERED"
    NOT_TRUSTED = "NOT_TRUSTED"
    SEAL_REVOKED = "SEAL_REVOKED"


@dataclass(frozen=True)
class VerificationResult:
    status: VerificationStatus
    message: str  # Chinese, for the person who asked
    identifier: str | None = None  # 证照标识 found in the document information
    signed_at: datetime | None = None
    seal_name: str | None = None  # the signer certificate's CN
    department: str | None = None  # its O
    seal_serial: int | None = None
    seal_revoked_at: datetime | None = None

    @property
    def valid(self) -> bool:
        return self.status is VerificationStatus.VALID


def verify_pdf(
    data: bytes, trusted: Iterable[x509.Certificate], revoked_at: RevocationLookup = lambda serial: None
) -> VerificationResult:
    """Synchronous form of ``async_verify_pdf`` (for the command line and scripts; not inside an event loop)."""
    return asyncio.run(async_verify_pdf(data, trusted, revoked_at))


async def async_verify_pdf(
    data: bytes, trusted: Iterable[x509.Certificate], revoked_at: RevocationLookup = lambda serial: None
) -> VerificationResult:
    """Verify ``data`` against the ``trusted`` roots (the platform CA) and the seals' revocations."""
    roots = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in trusted]
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        signatures = reader.embedded_regular_signatures
        identifier = _identifier(reader)
    except Exception:  # noqa: BLE001 - any parse failure of an untrusted upload is an answer, not a crash
        logger.info("esign: unreadable PDF", exc_info=True)
        if data.startswith(b"%PDF-"):
            return VerificationResult(VerificationStatus.TAMPERED, "文件已损坏或被篡改，无法读取签名")
        return VerificationResult(VerificationStatus.UNREADABLE, "无法读取该文件：不是PDF文件")
    if not signatures:
        return VerificationResult(VerificationStatus.NOT_SIGNED, "该文件没有电子印章签名", identifier=identifier)

    result: VerificationResult | None = None
    for index, embedded in enumerate(signatures):
        is_last = index == len(signatures) - 1
        result = await _verify_one(embedded, roots, revoked_at, identifier, must_cover_file=is_last)
        if not result.valid:
            return result
    assert result is not None
    return result


async def _verify_one(embedded, roots, revoked_at: RevocationLookup, identifier, *, must_cover_file: bool):
    # The signature container of an uploaded file is untrusted input: whatever fails to parse or to check in it (pyHanko
    # raises a variety of exception types on malformed CMS) means the signature is damaged, i.e. tampered.
    try:
        signed_at = embedded.self_reported_timestamp
        cert = embedded.signer_cert
        who = dict(
            identifier=identifier,
            signed_at=signed_at,
            seal_name=_name_part(cert, "common_name"),
            department=_name_part(cert, "organization_name"),
            seal_serial=cert.serial_number,
        )
    except Exception:  # noqa: BLE001
        logger.info("esign: signature container unreadable", exc_info=True)
        return VerificationResult(VerificationStatus.TAMPERED, "签名数据已损坏，文件已被篡改", identifier=identifier)
    try:
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail", moment=signed_at)
        status = await async_validate_pdf_signature(embedded, context)
        covers = status.coverage == SignatureCoverageLevel.ENTIRE_FILE or (
            not must_cover_file and status.coverage >= SignatureCoverageLevel.ENTIRE_REVISION
        )
        intact = status.intact and status.valid and covers and _padding_untouched(embedded)
        trusted = status.trusted
        # For a trusted signature, the parts of the container no signature covers must be exactly what we write.
        container_ok = not (intact and trusted) or _unsigned_parts_untouched(embedded, status.validation_path)
    except Exception:  # noqa: BLE001
        logger.info("esign: signature could not be validated", exc_info=True)
        return VerificationResult(VerificationStatus.TAMPERED, "签名数据已损坏，文件已被篡改", **who)
    if not (intact and container_ok):
        return VerificationResult(VerificationStatus.TAMPERED, "文件在盖章签名后被修改过，内容不可信（已被篡改）", **who)
    if not trusted:
        return VerificationResult(
            VerificationStatus.NOT_TRUSTED, "签名完好，但签名印章不是本平台签发的有效印章，无法确认其来源", **who
        )
    revoked = revoked_at(cert.serial_number)
    if revoked is not None and (signed_at is None or signed_at >= revoked):
        return VerificationResult(
            VerificationStatus.SEAL_REVOKED,
            f"签名无效：签署时该电子印章已于{_local(revoked)}被吊销",
            seal_revoked_at=revoked,
            **who,
        )
    return VerificationResult(
        VerificationStatus.VALID,
        f"签名有效：文件未被篡改，由本平台电子印章「{who['seal_name']}」于{_local(signed_at)}签署",
        seal_revoked_at=revoked,
        **who,
    )


def _padding_untouched(embedded) -> bool:
    """The signature container is a fixed-size hole (/Contents) excluded from the signed byte ranges; what follows the
    DER of the CMS must be the zero padding the signer wrote. Otherwise bytes were changed after signing without
    touching the signature — harmless to the content, but "any change after signing" is reported (issue #4)."""
    raw = bytes(embedded.sig_object["/Contents"])
    try:
        _, _, _, header, contents, trailer = asn1_parse(raw)
    except ValueError:
        return False
    end = len(header) + len(contents) + len(trailer)
    # And the DER is tight: a length byte bent to swallow a padding zero leaves slack inside a constructed value.
    return not raw[end:].strip(b"\x00") and _tight_der(raw[:end])


def _tight_der(data: bytes, depth: int = 0) -> bool:
    """True when ``data`` is one DER value whose constructed parts are exactly filled by their children, each with a
    minimal length. (Structure only: what the values mean is pyHanko's and ``_unsigned_parts_untouched``'s job.)"""
    class_, method, tag, header, contents, trailer = asn1_parse(data, strict=True)
    if trailer or not _minimal_length(header, len(contents)) or (class_, tag) == (0, 0):  # 00 00 (EOC) is not DER
        return False
    if method == 0 or depth > 40:
        return True
    pointer = 0
    while pointer < len(contents):
        _, _, _, child_header, child_contents, child_trailer = asn1_parse(contents[pointer:])
        size = len(child_header) + len(child_contents) + len(child_trailer)
        if not _tight_der(contents[pointer : pointer + size], depth + 1):
            return False
        pointer += size
    return True


def _minimal_length(header: bytes, length: int) -> bool:
    tag_bytes = 1 if header[0] & 0x1F != 0x1F else next(i for i in range(1, len(header)) if not header[i] & 0x80) + 1
    encoded = header[tag_bytes:]
    if length < 0x80:
        return encoded == bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return encoded == bytes([0x80 | len(body)]) + body


def _unsigned_parts_untouched(embedded, path) -> bool:
    """CMS leaves parts of a SignedData outside the signature: the certificate set, the digest algorithm list, the
    content type, unsigned attributes. A byte changed there cannot alter the document or the signer, but "any change
    after signing" is to be reported (issue #4), so for a signature that validated they must be what esign writes:
    every carried certificate is one of the validated path (seal certificate and platform root, byte for byte), the
    digest list names only the signer's digest, the content is external ``data``, one signer, no unsigned attributes."""
    signed_data = embedded.signed_data
    path_ders = {cert.dump() for cert in path.iter_certs(include_root=True)}
    carried = signed_data["certificates"]
    if carried.native is None or any(c.name != "certificate" or c.chosen.dump() not in path_ders for c in carried):
        return False
    signer_info = embedded.signer_info
    digest = signer_info["digest_algorithm"].dump()
    return (
        len(signed_data["signer_infos"]) == 1
        and signed_data["version"].native == "v1"
        and all(algo.dump() == digest for algo in signed_data["digest_algorithms"])
        and signed_data["encap_content_info"]["content_type"].native == "data"
        and signed_data["encap_content_info"]["content"].native is None
        and signer_info["unsigned_attrs"].native is None
        and signer_info["version"].native == "v1"
        and signer_info["sid"].chosen["serial_number"].native == embedded.signer_cert.serial_number
        and signer_info["sid"].chosen["issuer"].dump() == embedded.signer_cert.issuer.dump()
    )


def _identifier(reader: PdfFileReader) -> str | None:
    try:
        info = reader.trailer["/Info"]
    except KeyError:
        return None
    keywords = info.get_object().get("/Keywords")
    return identifier_from_keywords(str(keywords)) if keywords is not None else None


def _name_part(cert: asn1_x509.Certificate, part: str) -> str | None:
    value = cert.subject.native.get(part)
    return value if isinstance(value, str) else None


def _local(moment: datetime | None) -> str:
    if moment is None:
        return "未知时间"
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y年%m月%d日 %H:%M:%S")
