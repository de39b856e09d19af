"""Templates: the shipped file, rendering to WeChat field limits, SMS parameters, in-app text, and load-time errors."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from notifications.fields import FIELD_LIMITS, FieldError, field_type, fit
from notifications.kinds import NOTICE_VARIABLES, NoticeKind, VariableType
from notifications.templates import (
    DEFAULT_TEMPLATES_FILE,
    NoticeRenderError,
    TemplateConfigError,
    load_templates,
    parse_templates,
)

LONG_ITEM = "建设工程规划许可证核发（建筑类，含临时建设工程及其附属设施）"
AT = datetime(2026, 11, 24, 17, 30, tzinfo=timezone.utc)  # 01:30 on the 25th in Shanghai


def sample(kind: NoticeKind) -> dict:
    values = {VariableType.DATETIME: AT, VariableType.DATE: date(2026, 12, 24)}
    variables = {name: values.get(vtype, f"{name}的值") for name, vtype in NOTICE_VARIABLES[kind].items()}
    variables.update({k: v for k, v in {"item_name": LONG_ITEM, "case_code": "44040020261124000123",
                                        "case_id": "Q2FzZToxMjM=", "corrections": "1. 缺少规划总平面图\n2. 设计说明未盖章"}.items()
                      if k in variables})
    return variables


TEMPLATES = load_templates()


@pytest.mark.parametrize("kind", list(NoticeKind))
@pytest.mark.parametrize("provider", ["aliyun", "tencent", "console"])
def test_every_kind_renders_within_every_limit(kind, provider):
    variables = sample(kind)

    wechat = TEMPLATES.wechat(kind, variables)
    sms = TEMPLATES.sms(kind, variables, provider)
    inapp = TEMPLATES.inapp(kind, variables)

    for key, field in wechat.data.items():
        value, ftype = field["value"], field_type(key)
        assert value and fit(key, value) == value  # already acceptable: fitting again changes nothing
        if FIELD_LIMITS[ftype]:
            assert len(value) <= FIELD_LIMITS[ftype]
        if ftype == "phrase":
            assert re.fullmatch(r"[\u4e00-\u9fff]{1,5}", value)
        if ftype == "character_string":
            assert value.isascii() and " " not in value
    assert wechat.template_id and wechat.page.startswith("pages/")
    assert sms.params and all(value for _, value in sms.params)
    assert inapp.title and "{" not in inapp.body


def test_case_accepted_in_detail():
    variables = sample(NoticeKind.CASE_ACCEPTED)

    wechat = TEMPLATES.wechat(NoticeKind.CASE_ACCEPTED, variables)
    tencent = TEMPLATES.sms(NoticeKind.CASE_ACCEPTED, variables, "tencent")
    aliyun = TEMPLATES.sms(NoticeKind.CASE_ACCEPTED, variables, "aliyun")
    inapp = TEMPLATES.inapp(NoticeKind.CASE_ACCEPTED, variables)

    assert wechat.page == "pages/case/detail?id=Q2FzZToxMjM%3D"  # the variable is URL-encoded in the page
    assert wechat.data["thing1"]["value"] == LONG_ITEM[:19] + "…"
    assert wechat.data["character_string2"]["value"] == "44040020261124000123"
    assert wechat.data["phrase3"]["value"] == "已受理"
    assert wechat.data["time4"]["value"] == "2026年11月25日 01:30"  # Shanghai time, across midnight
    assert wechat.data["thing5"]["value"] == "预计2026年12月24日前办结"
    assert tencent.template_id == "1000001" and tencent.as_list()[1:] == ["44040020261124000123", "已受理"]
    assert tencent.as_list()[0] == LONG_ITEM[:19] + "…"  # Tencent's 20-character parameters
    assert aliyun.as_json_object().startswith('{"item":"建设工程规划许可证核发') and dict(aliyun.params)["status"] == "已受理"
    assert LONG_ITEM in inapp.body and "2026年11月25日 01:30" in inapp.body


def test_the_correction_list_is_whole_in_app_and_one_line_in_wechat():
    variables = sample(NoticeKind.CORRECTION_REQUESTED)

    inapp = TEMPLATES.inapp(NoticeKind.CORRECTION_REQUESTED, variables)
    thing = TEMPLATES.wechat(NoticeKind.CORRECTION_REQUESTED, variables).data["thing5"]["value"]

    assert "1. 缺少规划总平面图\n2. 设计说明未盖章" in inapp.body
    assert "\n" not in thing and len(thing) <= 20


@pytest.mark.parametrize(
    "key, value, fitted",
    [
        ("thing1", "一二三四五六七八九十一二三四五六七八九十一", "一二三四五六七八九十一二三四五六七八九…"),
        ("thing1", "", "无"),
        ("phrase3", "Approved 通过", "通过"),
        ("phrase3", "已经办结完毕了", "已经办结完"),
        ("character_string2", "编号ABC-123 456", "ABC-123456"),
        ("character_string2", "A" * 40, "A" * 29 + "..."),
        ("name7", "欧阳 娜娜娜娜娜娜娜娜娜", "欧阳娜娜娜娜娜娜娜娜"),
        ("number9", "共 12.5 个", "12.5"),
        ("phone_number8", "+86 138-1234-5678", "+86138-1234-5678"),
        ("time4", "2026年11月25日 01:30", "2026年11月25日 01:30"),
        ("date5", "2026年12月24日", "2026年12月24日"),
    ],
)
def test_values_are_made_acceptable_to_wechat(key, value, fitted):
    assert fit(key, value) == fitted


@pytest.mark.parametrize("key, value", [("time4", "明天"), ("date5", "2026-12-24"), ("amount6", "100")])
def test_a_value_that_cannot_be_made_acceptable_is_an_error(key, value):
    with pytest.raises(FieldError):
        fit(key, value)


def test_variables_must_match_the_kinds_contract():
    variables = sample(NoticeKind.CASE_APPROVED)
    with pytest.raises(NoticeRenderError, match=r"missing variables \['decided_at'\]"):
        TEMPLATES.wechat(NoticeKind.CASE_APPROVED, {k: v for k, v in variables.items() if k != "decided_at"})
    with pytest.raises(NoticeRenderError, match=r"unknown variables \['typo'\]"):
        TEMPLATES.inapp(NoticeKind.CASE_APPROVED, {**variables, "typo": "x"})
    with pytest.raises(NoticeRenderError, match="expected a datetime"):
        TEMPLATES.inapp(NoticeKind.CASE_APPROVED, {**variables, "decided_at": "昨天"})


# -- configuration errors --------------------------------------------------------------------------------------------

SHIPPED = DEFAULT_TEMPLATES_FILE.read_text(encoding="utf-8")


def broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in SHIPPED
    path = tmp_path / "templates.toml"
    path.write_text(SHIPPED.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("[notices.case_accepted]\n", "[notices.case_acepted]\n", "notices.case_acepted: unknown notice kind"),
        ('thing1 = "{item_name}", character_string2 = "{case_code}", phrase3 = "已受理"',
         'thing1 = "{item_title}", character_string2 = "{case_code}", phrase3 = "已受理"',
         "case_accepted.wechat.data.thing1: {item_title} is not a variable of this notice"),
        ('phrase3 = "已受理"', 'colour3 = "已受理"', "colour3': unknown WeChat field type"),
        ('phrase3 = "已受理"', 'phrase3 = "Accepted"', "'Accepted' is not a valid phrase value"),
        ('time4 = "{accepted_at}"', 'time4 = "{item_name}"', "a time field must be exactly one time variable"),
        ('time4 = "{accepted_at}"', 'time4 = "{due_date}"', "a time field must be exactly one time variable"),
        ('body = "您申请的「{item_name}」（办件编号 {case_code}）已由', 'body = "{item_name!r}已由',
         "write a plain {variable}"),
        ('params = ["{item_name}", "{case_code}", "已受理"]', 'params = { a = "{item_name}" }',
         "sms.tencent.params: expected a list of positional parameters"),
        ('template_code = "SMS_CASE_ACCEPTED"', 'template_code = ""', "sms.aliyun.template_code"),
        ("max_param_length = 35", 'max_param_length = "35"', "sms.aliyun.max_param_length"),
        ('page = "pages/case/detail?id={case_id}"', 'page = "pages/case/detail?id={case_id"', "notices.case_accepted.page"),
    ],
)
def test_a_bad_templates_file_is_a_clear_startup_error(tmp_path, old, new, message):
    with pytest.raises(TemplateConfigError) as error:
        load_templates(broken(tmp_path, old, new))

    assert message in str(error.value) and str(tmp_path) in str(error.value)


def test_every_kind_must_be_there(tmp_path):
    path = tmp_path / "templates.toml"
    path.write_text(SHIPPED.split("[notices.rating_followup_result]")[0], encoding="utf-8")

    with pytest.raises(TemplateConfigError, match="notices.rating_followup_result: missing"):
        load_templates(path)


def test_every_problem_is_reported_at_once(tmp_path):
    path = broken(tmp_path, 'phrase3 = "已受理"', 'colour3 = "已受理", thing9 = "{nope}"')

    with pytest.raises(TemplateConfigError) as error:
        load_templates(path)

    assert "colour3" in str(error.value) and "{nope}" in str(error.value)


def test_a_provider_without_templates_for_every_kind_is_refused(tmp_path):
    path = broken(tmp_path, '[notices.case_accepted.sms.tencent]\ntemplate_id = "1000001"\n'
                            'params = ["{item_name}", "{case_code}", "已受理"]\n', "")

    assert load_templates(path, sms_provider="aliyun")
    with pytest.raises(TemplateConfigError, match="no tencent SMS template for: case_accepted"):
        load_templates(path, sms_provider="tencent")


def test_a_file_that_is_not_toml_or_not_there(tmp_path):
    with pytest.raises(TemplateConfigError, match="templates.toml"):
        load_templates(broken(tmp_path, "[sms.aliyun]", "[sms.aliyun"))
    with pytest.raises(TemplateConfigError, match="missing.toml"):
        load_templates(tmp_path / "missing.toml")
    with pytest.raises(TemplateConfigError, match="notices: missing or not a table"):
        parse_templates({"sms": {"aliyun": {"max_param_length": 35}, "tencent": {"max_param_length": 20}}})
