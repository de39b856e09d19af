"""Code shapes and check characters (DOMAIN.md §2)."""

import pytest

from api.domain.codes import (
    USCC_ALPHABET,
    is_valid_mobile,
    is_valid_project_code,
    is_valid_region_code,
    is_valid_uscc,
    make_uscc,
    mask_mobile,
    region_prefix,
    uscc_check_char,
)


@pytest.mark.parametrize("code", ["2304-441900-04-01-135254", "2019-440300-70-01-000001"])
def test_project_code_shape_accepted(code):
    assert is_valid_project_code(code)


@pytest.mark.parametrize(
    "code",
    [
        "",
        "2304-441900-04-01-13525",  # 5 final digits
        "2304-441900-04-01-1352540",
        "2304441900-04-01-135254",
        "2304-441900-04-01-135254\n",
        " 2304-441900-04-01-135254",
        "2304-44190A-04-01-135254",
        "２３０４-441900-04-01-135254",  # full-width digits
        None,
        2304,
    ],
)
def test_project_code_shape_rejected(code):
    assert not is_valid_project_code(code)


@pytest.mark.parametrize(
    "uscc",
    [
        "91350100M000100Y43",
        "11100000000013338W",  # 住建部 (DOMAIN.md §6)
        "11430000006122244L",  # issuer in the DOMAIN.md §6 example identifier
    ],
)
def test_real_uscc_valid(uscc):
    assert is_valid_uscc(uscc)
    assert uscc_check_char(uscc[:17]) == uscc[17]
    assert make_uscc(uscc[:17]) == uscc


def test_uscc_one_changed_character_invalid():
    valid = "91350100M000100Y43"
    for i in range(18):
        for ch in USCC_ALPHABET:
            if ch != valid[i]:
                changed = valid[:i] + ch + valid[i + 1 :]
                assert not is_valid_uscc(changed), changed


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_uscc_excluded_letters_rejected(letter):
    valid = "91350100M000100Y43"
    assert not is_valid_uscc(valid[:8] + letter + valid[9:])
    with pytest.raises(ValueError):
        uscc_check_char("9135010" + letter + "M000100Y4")


@pytest.mark.parametrize("value", ["", "91350100M000100Y4", "91350100M000100Y433", "91350100m000100y43", None, 42])
def test_uscc_malformed_rejected(value):
    assert not is_valid_uscc(value)


def test_uscc_check_value_31_is_zero():
    # Worked by hand, not with the function under test: "91440400MA0000003" has the values
    # 9 1 4 4 0 4 0 0 M=21 A=10 0 0 0 0 0 0 3 under the weights 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28:
    # 9 + 3 + 36 + 108 + 0 + 104 + 0 + 0 + 420 + 290 + 0 + 0 + 0 + 0 + 0 + 0 + 84 = 1054 = 34 × 31 ≡ 0 (mod 31),
    # so c = 31 − 0 = 31, which the rule maps to "0" (GB 32100-2015).
    assert uscc_check_char("91440400MA0000003") == "0"
    assert is_valid_uscc("91440400MA00000030")
    for wrong in "1Y":  # 31 itself has no character; the alphabet's last one ("Y" = 30) is not it either
        assert not is_valid_uscc("91440400MA0000003" + wrong)


def test_make_uscc_generates_valid_codes():
    for n in range(50):
        assert is_valid_uscc(make_uscc(f"91440400MA{n:07d}"))


@pytest.mark.parametrize("phone", ["13812341234", "19912345678", "16600000000"])
def test_mobile_valid(phone):
    assert is_valid_mobile(phone)


@pytest.mark.parametrize("phone", ["12812341234", "1381234123", "138123412345", "+8613812341234", "1381234123a", None])
def test_mobile_invalid(phone):
    assert not is_valid_mobile(phone)


def test_mask_mobile():
    assert mask_mobile("13812341234") == "138****1234"
    assert mask_mobile("+8613812341234") == "+86*******1234"
    assert mask_mobile("12345") == "*****"


@pytest.mark.parametrize(
    ("code", "ok"),
    [("440400", True), ("440402", True), ("44040", False), ("4404000", False), ("44040a", False), (440400, False)],
)
def test_region_code(code, ok):
    assert is_valid_region_code(code) is ok


@pytest.mark.parametrize(
    ("code", "prefix"),
    [("440000", "44"), ("440400", "4404"), ("440402", "440402"), ("110101", "110101"), ("429004", "429004")],
)
def test_region_prefix(code, prefix):
    assert region_prefix(code) == prefix


def test_region_prefix_covers_sub_regions():
    assert "440403".startswith(region_prefix("440400"))
    assert not "440503".startswith(region_prefix("440400"))
    with pytest.raises(ValueError):
        region_prefix("4404")
