"""Notice templates: configuration, not code (issue #5). Loading, validation and rendering — all pure.

The file (``templates.toml`` next to this module by default, or ``JIANSHEN_NOTICE_TEMPLATES_FILE``) maps each notice
kind to: the WeChat subscribe template id, its field keys and their values, the mini-program page that opens the
object; the SMS template per provider with its parameters; and the in-app title and body. Values are Python format
strings over the kind's variables (``kinds.NOTICE_VARIABLES``): ``"{item_name}"``, ``"已受理"``, ``"{case_code} 已受理"``.

Everything that can be checked without a message is checked at load, so a bad file stops the service at startup
instead of losing notices later: an unknown or missing kind, a placeholder that is not a variable of its kind, a WeChat
field of unknown type, a ``time``/``date`` field that is not fed by a time, a fixed value WeChat would refuse.
"""

from __future__ import annotations

import json
import string
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote
from zoneinfo import ZoneInfo

from notifications.fields import FieldError, field_type, fit
from notifications.kinds import NOTICE_VARIABLES, NoticeKind, VariableType

DEFAULT_TEMPLATES_FILE = Path(__file__).resolve().parent / "templates.toml"
SMS_PROVIDERS = ("aliyun", "tencent")
# Notices are read in China: times are shown in China's time (DOMAIN.md §5).
SHANGHAI = ZoneInfo("Asia/Shanghai")

_formatter = string.Formatter()


class TemplateConfigError(ValueError):
    """The templates file is wrong; the message lists every problem, each with its place in the file."""


class NoticeRenderError(ValueError):
    """The variables given for a notice do not match its kind's contract (a bug in the caller)."""


@dataclass(frozen=True)
class WechatMessage:
    """What ``subscribeMessage.send`` takes besides ``touser``: ``data`` is ``{key: {"value": text}}``."""

    template_id: str
    page: str
    data: dict[str, dict[str, str]]


@dataclass(frozen=True)
class SmsContent:
    """An SMS: the provider's template and its parameters, in the template's order.

    Aliyun names its parameters (``TemplateParam`` is a JSON object); Tencent numbers them (``TemplateParamSet`` is a
    list) and the names are then ``"1"``, ``"2"``, …
    """

    template_id: str
    params: tuple[tuple[str, str], ...]

    def as_json_object(self) -> str:
        return json.dumps(dict(self.params), ensure_ascii=False, separators=(",", ":"))

    def as_list(self) -> list[str]:
        return [value for _, value in self.params]


@dataclass(frozen=True)
class InAppText:
    title: str
    body: str


@dataclass(frozen=True)
class _SmsTemplate:
    template_id: str
    params: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _NoticeTemplate:
    kind: NoticeKind
    page: str
    wechat_template_id: str
    wechat_data: tuple[tuple[str, str], ...]
    sms: dict[str, _SmsTemplate]
    inapp_title: str
    inapp_body: str


def format_value(value: Any, vtype: VariableType) -> str:
    """A variable as users read it: times in Asia/Shanghai as ``2026年11月24日 09:05``, dates as ``2026年11月24日``.

    A naive datetime is taken as UTC, which is how the service stores times.
    """
    if vtype is VariableType.TEXT:
        return "" if value is None else str(value)
    if isinstance(value, datetime):
        local = (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(SHANGHAI)
        if vtype is VariableType.DATE:
            return f"{local.year}年{local.month}月{local.day}日"
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    if isinstance(value, date) and vtype is VariableType.DATE:
        return f"{value.year}年{value.month}月{value.day}日"
    raise NoticeRenderError(f"expected a {vtype.value}, got {value!r}")


def _placeholders(text: str) -> list[str]:
    """The variable names ``text`` uses; plain ``{name}`` only (no format spec, conversion or indexing)."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in _formatter.parse(text) if name is not None]
    except ValueError as exc:  # unbalanced braces
        raise TemplateConfigError(str(exc)) from None
    for name, spec, conv in fields:
        if spec or conv or not name.isidentifier():
            raise TemplateConfigError(f"{{{name}}}: write a plain {{variable}} (no format spec, conversion or index)")
    return [name for name, _, _ in fields]


class NoticeTemplates:
    """The validated templates of every notice kind; renders messages (pure functions of kind + variables)."""

    def __init__(self, notices: dict[NoticeKind, _NoticeTemplate], sms_max_length: dict[str, int]) -> None:
        self._notices = notices
        self._sms_max_length = sms_max_length

    # -- rendering ---------------------------------------------------------------------------------------------------

    def _texts(self, kind: NoticeKind, variables: Mapping[str, Any]) -> dict[str, str]:
        contract = NOTICE_VARIABLES[kind]
        missing = sorted(set(contract) - set(variables))
        unknown = sorted(set(variables) - set(contract))
        if missing or unknown:
            raise NoticeRenderError(f"{kind.value}: missing variables {missing}, unknown variables {unknown}")
        return {name: format_value(variables[name], vtype) for name, vtype in contract.items()}

    def wechat(self, kind: NoticeKind, variables: Mapping[str, Any]) -> WechatMessage:
        """The subscribe message, every value made to fit its field (``fields.fit``)."""
        template = self._notices[NoticeKind(kind)]
        texts = self._texts(template.kind, variables)
        data = {key: {"value": fit(key, value.format_map(texts))} for key, value in template.wechat_data}
        page = template.page.format_map({name: quote(text, safe="") for name, text in texts.items()})
        return WechatMessage(template.wechat_template_id, page, data)

    def sms(self, kind: NoticeKind, variables: Mapping[str, Any], provider: str) -> SmsContent:
        """The SMS for ``provider`` (``aliyun``, ``tencent``; ``console`` gets the in-app text as one parameter)."""
        template = self._notices[NoticeKind(kind)]
        texts = self._texts(template.kind, variables)
        if provider == "console":
            inapp = self.inapp(kind, variables)
            return SmsContent(template.kind.value, (("text", f"{inapp.title}：{inapp.body}"),))
        if provider not in template.sms:
            raise NoticeRenderError(f"{template.kind.value}: no SMS template for provider {provider!r}")
        sms = template.sms[provider]
        limit = self._sms_max_length[provider]
        params = []
        for name, value in sms.params:
            text = " ".join(value.format_map(texts).split())
            params.append((name, text if len(text) <= limit else text[: limit - 1] + "…"))
        return SmsContent(sms.template_id, tuple(params))

    def inapp(self, kind: NoticeKind, variables: Mapping[str, Any]) -> InAppText:
        template = self._notices[NoticeKind(kind)]
        texts = self._texts(template.kind, variables)
        return InAppText(template.inapp_title.format_map(texts), template.inapp_body.format_map(texts))

    def wechat_template_id(self, kind: NoticeKind) -> str:
        """The template the mini-program must ask consent for (``wx.requestSubscribeMessage``) to get this notice."""
        return self._notices[NoticeKind(kind)].wechat_template_id

    def has_sms(self, kind: NoticeKind, provider: str) -> bool:
        return provider == "console" or provider in self._notices[NoticeKind(kind)].sms


# -- loading and validation ------------------------------------------------------------------------------------------


class _Checker:
    """Collects every problem of the file, so one start shows them all."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def text(self, where: str, value: Any, variables: Mapping[str, VariableType]) -> str | None:
        """``value`` if it is a string using only the notice's variables; else ``None`` and a problem."""
        if not isinstance(value, str):
            self.problems.append(f"{where}: expected a string, got {value!r}")
            return None
        try:
            names = _placeholders(value)
        except TemplateConfigError as exc:
            self.problems.append(f"{where}: {exc}")
            return None
        unknown = [name for name in names if name not in variables]
        for name in unknown:
            self.problems.append(f"{where}: {{{name}}} is not a variable of this notice (it has: {', '.join(variables)})")
        return None if unknown else value

    def table(self, where: str, value: Any) -> dict:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: missing or not a table")
            return {}
        return value

    def wechat_field(self, where: str, key: str, value: str | None, variables: Mapping[str, VariableType]) -> None:
        if value is None:
            return
        try:
            ftype = field_type(key)
        except FieldError as exc:
            self.problems.append(f"{where}: {exc}")
            return
        names = _placeholders(value)
        if not names:  # a fixed value must already be acceptable
            try:
                if fit(key, value) != value:
                    self.problems.append(f"{where}: {value!r} is not a valid {ftype} value for WeChat")
            except FieldError as exc:
                self.problems.append(f"{where}: {exc}")
            return
        if ftype in ("time", "date"):
            allowed = (VariableType.DATETIME,) if ftype == "time" else (VariableType.DATETIME, VariableType.DATE)
            if value != "{%s}" % names[0] or len(names) != 1 or variables.get(names[0]) not in allowed:
                self.problems.append(f"{where}: a {ftype} field must be exactly one time variable, like '{{decided_at}}'")


def parse_templates(document: Mapping[str, Any], source: str = "<templates>") -> NoticeTemplates:
    """Validate a parsed templates document; raise ``TemplateConfigError`` listing every problem."""
    check = _Checker()
    sms_max_length: dict[str, int] = {}
    sms_settings = check.table("sms", document.get("sms", {}))
    for provider in SMS_PROVIDERS:
        limit = check.table(f"sms.{provider}", sms_settings.get(provider, {})).get("max_param_length")
        if not isinstance(limit, int) or limit < 2:
            check.problems.append(f"sms.{provider}.max_param_length: expected an integer ≥ 2, got {limit!r}")
            limit = 2
        sms_max_length[provider] = limit
    for provider in set(sms_settings) - set(SMS_PROVIDERS):
        check.problems.append(f"sms.{provider}: unknown SMS provider (known: {', '.join(SMS_PROVIDERS)})")

    raw_notices = check.table("notices", document.get("notices"))
    known = {kind.value for kind in NoticeKind}
    for name in sorted(set(raw_notices) - known):
        check.problems.append(f"notices.{name}: unknown notice kind (known: {', '.join(sorted(known))})")
    for name in sorted(known - set(raw_notices)):
        check.problems.append(f"notices.{name}: missing (every notice kind needs its templates)")

    notices: dict[NoticeKind, _NoticeTemplate] = {}
    for kind in NoticeKind:
        if kind.value not in raw_notices:
            continue
        where = f"notices.{kind.value}"
        variables = NOTICE_VARIABLES[kind]
        raw = check.table(where, raw_notices[kind.value])
        page = check.text(f"{where}.page", raw.get("page"), variables)
        wechat = check.table(f"{where}.wechat", raw.get("wechat"))
        template_id = wechat.get("template_id")
        if not isinstance(template_id, str) or not template_id:
            check.problems.append(f"{where}.wechat.template_id: expected the WeChat template id")
        data = check.table(f"{where}.wechat.data", wechat.get("data"))
        wechat_data = []
        for key, value in data.items():
            text = check.text(f"{where}.wechat.data.{key}", value, variables)
            check.wechat_field(f"{where}.wechat.data.{key}", key, text, variables)
            wechat_data.append((key, text or ""))
        sms: dict[str, _SmsTemplate] = {}
        for provider, raw_sms in check.table(f"{where}.sms", raw.get("sms", {})).items():
            swhere = f"{where}.sms.{provider}"
            if provider not in SMS_PROVIDERS:
                check.problems.append(f"{swhere}: unknown SMS provider (known: {', '.join(SMS_PROVIDERS)})")
                continue
            raw_sms = check.table(swhere, raw_sms)
            id_key = "template_code" if provider == "aliyun" else "template_id"
            sms_id = raw_sms.get(id_key)
            if not isinstance(sms_id, str) or not sms_id:
                check.problems.append(f"{swhere}.{id_key}: expected the provider's template id")
            params = raw_sms.get("params", {} if provider == "aliyun" else [])
            if provider == "aliyun" and isinstance(params, dict):
                pairs = [(k, check.text(f"{swhere}.params.{k}", v, variables) or "") for k, v in params.items()]
            elif provider == "tencent" and isinstance(params, list):
                pairs = [
                    (str(i), check.text(f"{swhere}.params[{i}]", v, variables) or "") for i, v in enumerate(params, 1)
                ]
            else:
                shape = "a table of named parameters" if provider == "aliyun" else "a list of positional parameters"
                check.problems.append(f"{swhere}.params: expected {shape}")
                pairs = []
            sms[provider] = _SmsTemplate(str(sms_id), tuple(pairs))
        inapp = check.table(f"{where}.inapp", raw.get("inapp"))
        title = check.text(f"{where}.inapp.title", inapp.get("title"), variables)
        body = check.text(f"{where}.inapp.body", inapp.get("body"), variables)
        notices[kind] = _NoticeTemplate(
            kind, page or "", str(template_id), tuple(wechat_data), sms, title or "", body or ""
        )

    if check.problems:
        raise TemplateConfigError(f"{source}:\n  " + "\n  ".join(check.problems))
    return NoticeTemplates(notices, sms_max_length)


def load_templates(path: Path | str | None = None, *, sms_provider: str | None = None) -> NoticeTemplates:
    """Read and validate a templates file. With ``sms_provider``, every kind must have an SMS template for it."""
    path = Path(path) if path else DEFAULT_TEMPLATES_FILE
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TemplateConfigError(f"{path}: {exc}") from None
    templates = parse_templates(document, str(path))
    if sms_provider in SMS_PROVIDERS:
        lacking = [kind.value for kind in NoticeKind if not templates.has_sms(kind, sms_provider)]
        if lacking:
            raise TemplateConfigError(f"{path}: no {sms_provider} SMS template for: {', '.join(lacking)}")
    return templates


@lru_cache(maxsize=4)
def cached_templates(path: str | None, sms_provider: str | None) -> NoticeTemplates:
    """The templates a process uses, read once per (file, provider)."""
    return load_templates(path, sms_provider=sms_provider)
