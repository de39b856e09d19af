"""Shapes and check characters of the codes the service accepts (DOMAIN.md §2).

Every ``is_valid_*`` function is total: it returns ``False`` for anything that is not a well-formed code (including
non-strings), so callers can turn a bad code into a field-level error instead of a 500. The patterns are ASCII-only:
full-width or other Unicode digits are rejected, and no surrounding whitespace is stripped (normalise first).
"""

from __future__ import annotations

import re

# --- 项目代码 (GB/T 40058-2021) ---------------------------------------------------------------------------------------
# TTTT-RRRRRR-DD-KK-NNNNNC. The check-digit algorithm is not public, so only the shape is checked (DOMAIN.md §2);
# codes issued before 2020-11-01 have the same shape.
PROJECT_CODE_RE = re.compile(r"^\d{4}-\d{6}-\d{2}-\d{2}-\d{6}$", re.ASCII)


def is_valid_project_code(s: object) -> bool:
    """True when ``s`` has the shape of a national project code, e.g. ``2304-441900-04-01-135254``."""
    return isinstance(s, str) and PROJECT_CODE_RE.fullmatch(s) is not None


# --- 统一社会信用代码 (GB 32100-2015) -------------------------------------------------------------------------------
# 18 characters from a 31-character alphabet (no I, O, Z, S, V); the 18th is a check character over the first 17.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_ALPHABET)}


def uscc_check_char(first17: str) -> str:
    """The check character of a USCC whose first 17 characters are ``first17``.

    ``c = 31 - (Σ value × weight mod 31)``, and ``c = 31`` means ``0`` (GB 32100-2015 §5.2, DOMAIN.md §2).
    Raises ``ValueError`` when ``first17`` is not 17 characters of the alphabet.
    """
    if not isinstance(first17, str) or len(first17) != 17 or any(ch not in _USCC_VALUE for ch in first17):
        raise ValueError("统一社会信用代码前17位须由数字和大写字母（不含I、O、Z、S、V）组成")
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS))
    c = 31 - total % 31
    return USCC_ALPHABET[0 if c == 31 else c]


def is_valid_uscc(s: object) -> bool:
    """True when ``s`` is 18 characters of the USCC alphabet with the correct check character (upper case only)."""
    if not isinstance(s, str) or len(s) != 18 or any(ch not in _USCC_VALUE for ch in s):
        return False
    return uscc_check_char(s[:17]) == s[17]


def make_uscc(first17: str) -> str:
    """Complete ``first17`` with its check character (for demo data and tests)."""
    return first17 + uscc_check_char(first17)


# --- Mobile numbers -------------------------------------------------------------------------------------------------
# Mainland mobile numbers; shown masked to anyone but the owner (DOMAIN.md §2).
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)


def is_valid_mobile(s: object) -> bool:
    """True for an 11-digit mainland mobile number such as ``13812341234``."""
    return isinstance(s, str) and MOBILE_RE.fullmatch(s) is not None


def mask_mobile(s: str) -> str:
    """``13812341234`` → ``138****1234``.

    Total, because it is used for display: a value that is not a mainland mobile number (a landline, a ``+86`` form)
    keeps at most its first 3 and last 4 characters, and a value of fewer than 8 characters is hidden entirely.
    """
    if len(s) < 8:
        return "*" * len(s)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


# --- Region codes (管辖属地编码, GB/T 2260) -------------------------------------------------------------------------
REGION_CODE_RE = re.compile(r"^\d{6}$", re.ASCII)


def is_valid_region_code(s: object) -> bool:
    """True for a 6-digit administrative region code such as ``440400`` (珠海市)."""
    return isinstance(s, str) and REGION_CODE_RE.fullmatch(s) is not None


def region_prefix(code: str) -> str:
    """The prefix shared by a region and all its sub-regions (GB/T 2260: 2 digits province, 2 city, 2 county).

    ``440000`` (广东省) → ``44``; ``440400`` (珠海市) → ``4404``; ``440402`` (香洲区) → ``440402``.
    A region ``r`` lies within ``code`` exactly when ``r.startswith(region_prefix(code))``.
    """
    if not is_valid_region_code(code):
        raise ValueError("管辖属地编码须为6位数字")
    if code[2:] == "0000":
        return code[:2]
    if code[4:] == "00":
        return code[:4]
    return code
