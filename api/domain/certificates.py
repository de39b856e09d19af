"""Electronic certificates (电子证照): the national identifier, the printed check code and the status rules (DOMAIN.md §6).

Pure: no I/O. The secret of the check code and "now" are passed in by the caller, so the rules can be tested on fixed
values and the same module serves the API, the public verification page and the offline verifier.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum

from api.domain.codes import is_valid_uscc
from api.domain.timing import local_date

# --- 证照标识 ---------------------------------------------------------------------------------------------------------
# 1.2.156.3005.2.{类型代码}.{颁发机构USCC}.{流水号}.{版本号3位}.{校验位} (national e-licence sharing rules, DOMAIN.md §6).
# 1.2.156 is China's OID arc; 3005.2 the e-licence branch. The type code is the issuing ministry's USCC plus 3 digits.
IDENTIFIER_PREFIX = "1.2.156.3005.2"
MINISTRY_OF_HOUSING_USCC = "11100000000013338W"  # 住房和城乡建设部: type codes of construction licences start with it

# ISO/IEC 7064 MOD 37,36 works on the 36 characters 0-9A-Z (M = 36, M + 1 = 37).
_MOD36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD36_VALUE = {ch: i for i, ch in enumerate(_MOD36_ALPHABET)}

_TYPE_CODE_RE = re.compile(r"^[0-9A-Z]{18}\d{3}$", re.ASCII)
_SERIAL_RE = re.compile(r"^[0-9A-Z]{1,32}$", re.ASCII)
_VERSION_RE = re.compile(r"^\d{3}$", re.ASCII)
_IDENTIFIER_RE = re.compile(
    r"^1\.2\.156\.3005\.2\.([0-9A-Z]{21})\.([0-9A-Z]{18})\.([0-9A-Z]{1,32})\.(\d{3})\.([0-9A-Z])$", re.ASCII
)


def mod37_36_check_char(data: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character of ``data`` (characters 0-9 and A-Z, upper case).

    Hybrid system: ``P = M``; for each character ``S = (P + value) mod M`` (0 counts as M), ``P = 2S mod (M + 1)``;
    the check character is the one whose value is ``(M + 1 - P) mod M``. It catches every single-character error and
    every transposition of adjacent characters.
    """
    if not isinstance(data, str) or not data or any(ch not in _MOD36_VALUE for ch in data):
        raise ValueError("校验位只能对数字和大写字母计算")
    m = len(_MOD36_ALPHABET)
    p = m
    for ch in data:
        s = (p + _MOD36_VALUE[ch]) % m or m
        p = (s * 2) % (m + 1)
    return _MOD36_ALPHABET[(m + 1 - p) % m]


@dataclass(frozen=True)
class CertificateIdentifier:
    """A parsed 证照标识. ``str()`` gives the dotted form with its check character."""

    type_code: str  # 证照类型代码: ministry USCC + 3 digits, e.g. 11100000000013338W011 (建筑工程施工许可证)
    issuer_uscc: str  # 颁发机构代码
    serial: str  # 流水号, e.g. 20230000403
    version: int  # 版本号 1..999: a re-issued certificate (SUPERSEDED → new) gets the next version

    def __post_init__(self) -> None:
        if not _TYPE_CODE_RE.fullmatch(self.type_code) or not is_valid_uscc(self.type_code[:18]):
            raise ValueError("证照类型代码须为发证部委的统一社会信用代码加3位数字")
        if not is_valid_uscc(self.issuer_uscc):
            raise ValueError("颁发机构代码须为有效的统一社会信用代码")
        if not _SERIAL_RE.fullmatch(self.serial):
            raise ValueError("流水号须为1至32位数字或大写字母")
        if not isinstance(self.version, int) or not 1 <= self.version <= 999:
            raise ValueError("版本号须为1至999")

    @property
    def check_char(self) -> str:
        """MOD 37,36 over type code + issuer + serial + version, concatenated without the dots (DOMAIN.md §6).

        This is what reproduces the national example ``…20230000403.001.U``: the dots and the fixed
        ``1.2.156.3005.2`` prefix are not part of the checked string.
        """
        return mod37_36_check_char(f"{self.type_code}{self.issuer_uscc}{self.serial}{self.version:03d}")

    def __str__(self) -> str:
        return f"{IDENTIFIER_PREFIX}.{self.type_code}.{self.issuer_uscc}.{self.serial}.{self.version:03d}.{self.check_char}"

    def next_version(self) -> CertificateIdentifier:
        """The identifier of the certificate that supersedes this one (same serial, version + 1)."""
        return CertificateIdentifier(self.type_code, self.issuer_uscc, self.serial, self.version + 1)


def parse_identifier(s: object) -> CertificateIdentifier:
    """Parse and check a 证照标识; raises ``ValueError`` (Chinese message) for a malformed one or a wrong check char.

    No normalisation beyond that of the caller: the identifier is printed in upper case, and the verification page
    upper-cases and strips what a person types before calling this.
    """
    match = _IDENTIFIER_RE.fullmatch(s) if isinstance(s, str) else None
    if match is None:
        raise ValueError("证照标识格式不正确")
    type_code, issuer, serial, version, check = match.groups()
    identifier = CertificateIdentifier(type_code, issuer, serial, int(version))
    if identifier.check_char != check:
        raise ValueError("证照标识校验位不正确")
    return identifier


def is_valid_identifier(s: object) -> bool:
    """True when ``s`` is a well-formed 证照标识 with the right check character (total, like ``codes.is_valid_*``)."""
    try:
        parse_identifier(s)
    except ValueError:
        return False
    return True


# --- 校验码 (printed short check code) -------------------------------------------------------------------------------
# Anyone holding a printed certificate types its identifier and this code on the verification page (DOMAIN.md §6,
# [珠海]). It is an HMAC of the identifier under a server secret, so knowing an identifier (which is structured and
# partly guessable) does not let anyone produce the code. 32 symbols without 0/O and 1/I: 5 bits each, 8 → 40 bits.
CHECK_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CHECK_CODE_LENGTH = 8
_CHECK_CODE_CONTEXT = b"jianshen/certificate-check-code/v1\x00"


def check_code(secret: bytes, identifier: str) -> str:
    """The 8-character check code printed on the certificate ``identifier``."""
    if not isinstance(secret, bytes | bytearray) or len(secret) < 16:
        raise ValueError("check code secret must be at least 16 bytes")
    digest = hmac.new(bytes(secret), _CHECK_CODE_CONTEXT + identifier.encode("ascii"), hashlib.sha256).digest()
    number = int.from_bytes(digest[:5], "big")  # 40 bits = 8 × 5
    return "".join(CHECK_CODE_ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(CHECK_CODE_LENGTH)))


def normalize_check_code(typed: str) -> str:
    """What a person typed → canonical form: upper case, without spaces or dashes (``abcd-2345`` → ``ABCD2345``)."""
    return re.sub(r"[\s\-]", "", typed).upper()


def check_code_matches(secret: bytes, identifier: str, typed: str) -> bool:
    """Constant-time comparison of a typed check code with the right one (normalised first)."""
    return hmac.compare_digest(normalize_check_code(typed).encode("utf-8"), check_code(secret, identifier).encode())


def format_check_code(code: str) -> str:
    """``ABCD2345`` → ``ABCD-2345`` for printing (the dash is ignored when typed back)."""
    return f"{code[:4]}-{code[4:]}"


# --- Status ------------------------------------------------------------------------------------------------------------
# 有效期 "9999-01-01" means "长期有效" (no expiry) in the national metadata (DOMAIN.md §6).
NO_EXPIRY = date(9999, 1, 1)


class CertificateStatus(str, Enum):
    VALID = "VALID"
    REVOKED = "REVOKED"  # the approval was revoked (撤销)
    EXPIRED = "EXPIRED"  # past 有效期止
    SUPERSEDED = "SUPERSEDED"  # a new version was issued

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS = {
    CertificateStatus.VALID: "有效",
    CertificateStatus.REVOKED: "已撤销",
    CertificateStatus.EXPIRED: "已过期",
    CertificateStatus.SUPERSEDED: "已被新版本替代",
}


def is_no_expiry(valid_until: date | None) -> bool:
    """True for a certificate without expiry (``None`` or 9999-01-01 and later)."""
    return valid_until is None or valid_until >= NO_EXPIRY


def certificate_status(
    *,
    now: datetime,
    valid_until: date | None,
    revoked_at: datetime | None = None,
    superseded_at: datetime | None = None,
) -> CertificateStatus:
    """The status of a certificate at ``now`` (an aware datetime).

    Precedence: a revoked certificate shows as revoked even if it also expired or was superseded (revocation says the
    approval itself no longer stands, the strongest statement); then superseded; then expired. ``valid_until`` is the
    last day of validity, inclusive, as a date in Asia/Shanghai: the certificate expires at the first local midnight
    after it, whatever the server's time zone.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if revoked_at is not None and revoked_at <= now:
        return CertificateStatus.REVOKED
    if superseded_at is not None and superseded_at <= now:
        return CertificateStatus.SUPERSEDED
    if not is_no_expiry(valid_until) and local_date(now) > valid_until:
        return CertificateStatus.EXPIRED
    return CertificateStatus.VALID


def validity_label(valid_from: date, valid_until: date | None) -> str:
    """The 有效期 line printed on the certificate: ``2023年5月1日至2026年4月30日`` or ``2023年5月1日起长期有效``."""
    start = format_chinese_date(valid_from)
    if is_no_expiry(valid_until):
        return f"{start}起长期有效"
    return f"{start}至{format_chinese_date(valid_until)}"


def format_chinese_date(d: date) -> str:
    """``2023-05-01`` → ``2023年5月1日`` (the form printed on licences)."""
    return f"{d.year}年{d.month}月{d.day}日"
