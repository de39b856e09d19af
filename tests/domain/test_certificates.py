"""证照标识, check code and status rules (DOMAIN.md §6)."""

from datetime import date, datetime, timedelta, timezone

import pytest

from api.domain.certificates import (
    CHECK_CODE_ALPHABET,
    NO_EXPIRY,
    CertificateIdentifier,
    CertificateStatus,
    certificate_status,
    check_code,
    check_code_matches,
    format_check_code,
    is_valid_identifier,
    mod37_36_check_char,
    parse_identifier,
    validity_label,
)
from api.domain.timing import SHANGHAI

EXAMPLE = "1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U"  # DOMAIN.md §6
SECRET = b"0123456789abcdef-test-secret"


def test_example_identifier_reproduced():
    identifier = CertificateIdentifier("11100000000013338W011", "11430000006122244L", "20230000403", 1)
    assert identifier.check_char == "U"
    assert str(identifier) == EXAMPLE


def test_example_identifier_parses():
    parsed = parse_identifier(EXAMPLE)
    assert parsed == CertificateIdentifier("11100000000013338W011", "11430000006122244L", "20230000403", 1)
    assert is_valid_identifier(EXAMPLE)


def test_check_char_is_over_the_concatenation_without_dots_or_prefix():
    assert mod37_36_check_char("11100000000013338W01111430000006122244L20230000403001") == "U"


def test_iso7064_property_appending_check_char_verifies():
    # ISO 7064 hybrid systems: over data + check character, the last sum S = (P + value) mod M is 1.
    for data in ["0", "A", "11430000006122244L", "ZZZZ9999", "20230000403001"]:
        c = mod37_36_check_char(data)
        p = 36
        for ch in data + c:
            s = (p + int(ch, 36)) % 36 or 36
            p = s * 2 % 37
        assert s == 1, data


@pytest.mark.parametrize(
    "bad",
    [
        EXAMPLE[:-1] + "V",  # wrong check character
        EXAMPLE.replace("20230000403", "20230000404"),  # one digit changed
        EXAMPLE.replace("20230000403", "20230004003"),  # adjacent transposition
        EXAMPLE.replace(".001.", ".01."),  # version not 3 digits
        EXAMPLE.replace("1.2.156.3005.2.", "1.2.156.3005.1."),
        EXAMPLE.replace("11430000006122244L", "11430000006122244M"),  # issuer USCC check char wrong
        EXAMPLE.lower(),
        EXAMPLE + " ",
        "",
        None,
        12,
    ],
)
def test_malformed_identifiers_rejected(bad):
    assert not is_valid_identifier(bad)
    with pytest.raises(ValueError):
        parse_identifier(bad)


def test_next_version_changes_check_char():
    identifier = parse_identifier(EXAMPLE)
    new = identifier.next_version()
    assert new.version == 2 and str(new).endswith(".002." + new.check_char)
    assert is_valid_identifier(str(new))


def test_identifier_fields_validated():
    with pytest.raises(ValueError):
        CertificateIdentifier("11100000000013338W011", "11430000006122244L", "2023-1", 1)
    with pytest.raises(ValueError):
        CertificateIdentifier("11100000000013338W011", "11430000006122244L", "1", 1000)
    with pytest.raises(ValueError):
        CertificateIdentifier("11100000000013338X011", "11430000006122244L", "1", 1)


def test_check_code_shape_and_determinism():
    code = check_code(SECRET, EXAMPLE)
    assert len(code) == 8 and set(code) <= set(CHECK_CODE_ALPHABET)
    assert not set(code) & set("01OI")
    assert check_code(SECRET, EXAMPLE) == code
    assert check_code(SECRET + b"x", EXAMPLE) != code  # depends on the secret
    assert check_code(SECRET, str(parse_identifier(EXAMPLE).next_version())) != code


def test_check_code_typed_forms_accepted():
    code = check_code(SECRET, EXAMPLE)
    assert check_code_matches(SECRET, EXAMPLE, code)
    assert check_code_matches(SECRET, EXAMPLE, format_check_code(code).lower())
    assert check_code_matches(SECRET, EXAMPLE, " " + code[:4] + " " + code[4:])
    wrong = code[:-1] + ("2" if code[-1] != "2" else "3")
    assert not check_code_matches(SECRET, EXAMPLE, wrong)
    assert not check_code_matches(SECRET, EXAMPLE, "")


def test_check_code_needs_a_real_secret():
    with pytest.raises(ValueError):
        check_code(b"short", EXAMPLE)


def test_check_codes_spread_over_alphabet():
    codes = {check_code(SECRET, f"id-{i}") for i in range(500)}
    assert len(codes) == 500
    assert set("".join(codes)) == set(CHECK_CODE_ALPHABET)


NOW = datetime(2025, 6, 30, 12, 0, tzinfo=SHANGHAI)


def test_status_valid_and_expired_by_local_date():
    assert certificate_status(now=NOW, valid_until=date(2025, 6, 30)) is CertificateStatus.VALID
    assert certificate_status(now=NOW, valid_until=date(2025, 6, 29)) is CertificateStatus.EXPIRED
    # 2025-06-30 16:30 UTC is already 07-01 00:30 in Shanghai: a certificate valid until 06-30 has expired.
    late_utc = datetime(2025, 6, 30, 16, 30, tzinfo=timezone.utc)
    assert certificate_status(now=late_utc, valid_until=date(2025, 6, 30)) is CertificateStatus.EXPIRED
    just_before = datetime(2025, 6, 30, 15, 59, tzinfo=timezone.utc)
    assert certificate_status(now=just_before, valid_until=date(2025, 6, 30)) is CertificateStatus.VALID


def test_status_no_expiry():
    far = datetime(9998, 12, 31, tzinfo=timezone.utc)
    assert certificate_status(now=far, valid_until=NO_EXPIRY) is CertificateStatus.VALID
    assert certificate_status(now=far, valid_until=None) is CertificateStatus.VALID


def test_status_precedence():
    past = NOW - timedelta(days=1)
    expired = date(2020, 1, 1)
    assert certificate_status(now=NOW, valid_until=expired, revoked_at=past, superseded_at=past) is CertificateStatus.REVOKED
    assert certificate_status(now=NOW, valid_until=expired, superseded_at=past) is CertificateStatus.SUPERSEDED
    # A revocation recorded for the future (clock skew between instances) does not count yet.
    assert certificate_status(now=NOW, valid_until=NO_EXPIRY, revoked_at=NOW + timedelta(hours=1)) is CertificateStatus.VALID


def test_status_needs_aware_now():
    with pytest.raises(ValueError):
        certificate_status(now=datetime(2025, 1, 1), valid_until=NO_EXPIRY)


def test_labels():
    assert CertificateStatus.REVOKED.label == "已撤销"
    assert validity_label(date(2023, 5, 1), date(2026, 4, 30)) == "2023年5月1日至2026年4月30日"
    assert validity_label(date(2023, 5, 1), NO_EXPIRY) == "2023年5月1日起长期有效"
