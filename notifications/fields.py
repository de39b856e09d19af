"""WeChat subscribe-message field values: what each field type accepts, and how a value is made to fit (DOMAIN.md §10).

A value WeChat does not accept fails the whole message with 47003 and uses nothing up, so the message is lost for
that channel. Every value is therefore made acceptable here, before sending: long text is cut (with an ellipsis where
the type allows symbols), characters the type forbids are dropped, an empty value becomes a neutral placeholder.
The limits are WeChat's "订阅消息参数值内容限制说明": a field key is ``<type><number>``, e.g. ``thing1``, ``time4``.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"

# Type → most characters. ``time``/``date``/``amount`` have a format instead of a length.
FIELD_LIMITS: dict[str, int | None] = {
    "thing": 20,  # 汉字、数字、字母或符号
    "number": 32,  # digits, may have a decimal point
    "letter": 32,  # letters only
    "symbol": 5,  # symbols only
    "character_string": 32,  # ASCII digits, letters or symbols
    "time": None,  # 24-hour time, optionally with the date: 15:01 or 2019年10月1日 15:01
    "date": None,  # 2019年10月1日, optionally with the time
    "amount": None,  # one currency sign + ≤ 10 digits, may have decimals, may end in 元
    "phone_number": 17,  # digits and symbols
    "car_number": 8,
    "name": 10,  # ≤ 10 汉字, or ≤ 20 letters/symbols
    "phrase": 5,  # ≤ 5 汉字 only
}

_KEY = re.compile(r"([a-z_]+?)(\d+)")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TIME = re.compile(r"(\d{4}年\d{1,2}月\d{1,2}日 )?([01]?\d|2[0-3]):[0-5]\d")
_DATE = re.compile(r"\d{4}年\d{1,2}月\d{1,2}日( ([01]?\d|2[0-3]):[0-5]\d)?")
_AMOUNT = re.compile(r"[¥$€£]\d{1,10}(\.\d{1,2})?元?")


class FieldError(ValueError):
    """A field key of an unknown type, or a value that cannot be made to fit (a time that is not a time)."""


def field_type(key: str) -> str:
    """``thing12`` → ``thing``; ``character_string2`` → ``character_string``. Unknown types are an error."""
    match = _KEY.fullmatch(key)
    if not match or match.group(1) not in FIELD_LIMITS:
        known = ", ".join(FIELD_LIMITS)
        raise FieldError(f"field {key!r}: unknown WeChat field type (expected <type><number>, type one of {known})")
    return match.group(1)


def _cut(value: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    if len(value) <= limit:
        return value
    return value[: limit - len(ellipsis)] + ellipsis if ellipsis else value[:limit]


def fit(key: str, value: str) -> str:
    """The value made acceptable for the field ``key`` (see the module docstring)."""
    kind = field_type(key)
    text = " ".join(str(value).split())  # newlines and runs of spaces are not welcome in one-line fields
    if kind == "thing":
        return _cut(text, 20) or "无"
    if kind == "phrase":
        return "".join(_HAN.findall(text))[:5] or "无"
    if kind == "name":
        if _HAN.search(text):
            return text.replace(" ", "")[:10]
        return _cut(text, 20, "...") or "无"
    if kind == "character_string":
        ascii_only = "".join(ch for ch in text if "!" <= ch <= "~")
        return _cut(ascii_only, 32, "...") or "-"
    if kind == "number":
        digits = re.sub(r"[^\d.]", "", text)
        return digits[:32] or "0"
    if kind == "letter":
        return "".join(ch for ch in text if ch.isascii() and ch.isalpha())[:32] or "NA"
    if kind == "symbol":
        return "".join(ch for ch in text if not ch.isalnum() and not ch.isspace())[:5] or "-"
    if kind == "phone_number":
        return "".join(ch for ch in text if ch.isdigit() or ch in "+-")[:17] or "-"
    if kind == "car_number":
        return text.replace(" ", "")[:8] or "-"
    pattern = {"time": _TIME, "date": _DATE, "amount": _AMOUNT}[kind]
    if not pattern.fullmatch(text):
        raise FieldError(f"field {key!r}: {text!r} is not a valid {kind} value")
    return text
