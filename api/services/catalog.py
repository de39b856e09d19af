"""The catalogue as data: departments, items with their 办事指南, process templates and stage forms, read from the
hand-edited TOML files of ``api/data/catalog`` (or another folder), validated, and loaded into the database.

``read_catalog`` checks everything before anything is written and reports every error with the file and the field
(``departments/ZH-HC.toml: items[HC-SGXK].limit.days: …``). ``load_catalog`` writes the catalogue in one transaction:
departments and items are updated in place (by code), templates and stages too, and each item's guide becomes a new
version only when its content changed. A case copies its limit, predecessors and certificate type when received, and
its application stores the materials it was received with, so a later catalogue change never alters the rules of a case
already received; the case also records the guide version it was received under.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tortoise.transactions import in_transaction

from api.domain.catalog import ItemKind, Stage
from api.domain.codes import is_valid_region_code, is_valid_uscc
from api.domain.timing import LimitUnit

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "data" / "catalog"

FIELD_TYPES = {"string", "number", "date", "choice"}
SOURCES = {"申请人自备", "政府部门核发"}
FORMS = {"原件", "复印件", "电子材料"}
CASE_TYPES = {"即办件", "承诺件"}
SHARED_MATERIAL = "M00"  # asked in every stage and reused from the project's first application (不重复提交)
PROJECT_FIELDS = {"address", "name", "investment", "code"}
_KNOWN_FROM = re.compile(r"^(?:project\.(?P<attr>\w+)|stage(?P<stage>[1-5])\.(?P<name>\w+))$")
UNIT_WORDS = {"WD": "个工作日", "ND": "个自然日"}


@dataclass(frozen=True)
class CatalogError:
    file: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


class CatalogInvalid(Exception):
    def __init__(self, errors: list[CatalogError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


@dataclass
class Catalog:
    root: Path
    meta: dict[str, Any]
    defaults: dict[str, Any]
    departments: dict[str, dict[str, Any]]  # code → {code, name, uscc, region_code, pushes_events, guide}
    items: dict[str, dict[str, Any]]  # code → item table (with "department" = department code)
    stages: dict[int, dict[str, Any]]  # stage → {fields, materials}
    templates: dict[int, dict[str, Any]]  # process type → {name, stages: {stage: {lead, items: [code]}}}
    synonyms: dict[str, list[str]]
    stopwords: list[str] = field(default_factory=list)
    item_stage: dict[str, int] = field(default_factory=dict)  # item code → its stage (items in a template)

    def guide(self, code: str) -> dict[str, Any]:
        """The item's resolved guide: defaults ← department ← item, materials from its stage."""
        item = self.items[code]
        dept = self.departments[item["department"]]
        pick = lambda key: item.get(key, dept["guide"].get(key, self.defaults.get(key)))  # noqa: E731
        stage = self.item_stage.get(code)
        materials = item.get("materials") or (self.stages[stage]["materials"] if stage else [])
        legal = item.get("legal_limit")
        return {
            "demo": bool(self.meta.get("demo")),
            "notice": self.meta.get("notice", ""),
            "code": code,
            "name": item["name"],
            "kind": item["kind"],
            "department": dept["name"],
            "department_code": dept["code"],
            "stage": stage,
            "service_object": list(pick("service_object") or []),
            "case_type": pick("case_type"),
            "visits": pick("visits"),
            "online_depth": pick("online_depth"),
            "conditions": list(item["conditions"]),
            "materials": [dict(m) for m in materials],
            "steps": [dict(s) for s in pick("steps") or []],
            "legal_limit": dict(legal) if legal else None,
            "legal_limit_text": item.get("legal_limit_text")
            or item.get("legal_limit_note")
            or (limit_text(legal) if legal else ""),
            "promised_limit": dict(item["limit"]),
            "fees": [dict(f) for f in item.get("fees", [])],
            "fee_note": item["fee_note"],
            "basis": [{"law": b["law"], "articles": list(b.get("articles", []))} for b in item["basis"]],
            "location": pick("location"),
            "hours": pick("hours"),
            "phone": pick("phone"),
            "complaint_phone": pick("complaint_phone"),
            "result": item["result"],
            "faq": [{"q": f["q"], "a": f["a"]} for f in item["faq"]],
        }


def limit_text(limit: dict[str, Any]) -> str:
    return f"{limit['days']}{UNIT_WORDS[limit['unit']]}"


def _natural_days(limit: dict[str, Any]) -> float:
    """A rough natural-day length, only to compare a committed limit with the legal one across units."""
    return limit["days"] * 7 / 5 if limit["unit"] == "WD" else limit["days"]


class _Checker:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.errors: list[CatalogError] = []
        self.file = ""

    def error(self, path: str, message: str) -> None:
        self.errors.append(CatalogError(self.file, path, message))

    def load(self, path: Path) -> dict[str, Any] | None:
        self.file = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        try:
            return tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.error("-", "文件不存在")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            self.error("-", f"不是合法的 TOML：{exc}")
        return None

    # -- typed getters: report and return None when wrong -----------------------------------------------------------
    def _get(self, table: dict, key: str, path: str, required: bool) -> tuple[Any, str]:
        where = f"{path}.{key}" if path else key
        value = table.get(key)
        if value is None and required:
            self.error(where, "缺少必填项")
        return value, where

    def text(self, table: dict, key: str, path: str, *, required: bool = True) -> str | None:
        value, where = self._get(table, key, path, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.error(where, "应为非空文字")
            return None
        return value

    def integer(self, table: dict, key: str, path: str, *, minimum: int = 0, required: bool = True) -> int | None:
        value, where = self._get(table, key, path, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.error(where, f"应为不小于{minimum}的整数")
            return None
        return value

    def boolean(self, table: dict, key: str, path: str) -> bool | None:
        value = table.get(key)
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", "缺少必填项或不是 true/false")
            return None
        return value

    def texts(self, table: dict, key: str, path: str, *, required: bool = True) -> list[str] | None:
        value, where = self._get(table, key, path, required)
        if value is None:
            return None
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            self.error(where, "应为非空的文字列表")
            return None
        return value

    def tables(self, table: dict, key: str, path: str, *, required: bool = True) -> list[dict]:
        value, where = self._get(table, key, path, required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value) or (required and not value):
            self.error(where, "应为非空的表列表")
            return []
        return value

    def limit(self, table: dict, key: str, path: str, *, required: bool = True) -> dict[str, Any] | None:
        value, where = self._get(table, key, path, required)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.error(where, "应为 { days = 天数, unit = \"WD\" | \"ND\" }")
            return None
        days = self.integer(value, "days", where, minimum=1)
        unit = value.get("unit")
        if unit not in {u.value for u in LimitUnit}:
            self.error(f"{where}.unit", "应为 WD（工作日）或 ND（自然日）")
            return None
        return None if days is None else {"days": days, "unit": unit}

    def materials(self, entries: list[dict], path: str) -> list[dict[str, Any]]:
        out, seen = [], set()
        for i, m in enumerate(entries):
            where = f"{path}[{m.get('code', i)}]"
            code = self.text(m, "code", where)
            if code in seen:
                self.error(f"{where}.code", "材料编码重复")
            seen.add(code)
            name = self.text(m, "name", where)
            if m.get("source") not in SOURCES:
                self.error(f"{where}.source", f"来源应为{'或'.join(sorted(SOURCES))}")
            if m.get("form") not in FORMS:
                self.error(f"{where}.form", f"形式应为{'、'.join(sorted(FORMS))}之一")
            copies = self.integer(m, "copies", where, minimum=1)
            required = self.boolean(m, "required", where)
            when = self.text(m, "when", where, required=required is False)
            entry = {"code": code, "name": name, "required": bool(required), "source": m.get("source"),
                     "form": m.get("form"), "copies": copies, "when": when}
            for key in ("notes", "blank_form", "sample"):
                if key in m:
                    entry[key] = self.text(m, key, where)
            if "certificate_types" in m:  # held certificates of these types satisfy the material
                entry["certificate_types"] = self.texts(m, "certificate_types", where) or []
            out.append(entry)
        return out


def read_catalog(root: Path | str | None = None) -> Catalog:
    """Read and validate the catalogue folder; raise ``CatalogInvalid`` listing every error (file, field, why)."""
    root = Path(root) if root else DEFAULT_ROOT
    c = _Checker(root)
    meta_doc = c.load(root / "catalog.toml") or {}
    meta = meta_doc.get("catalog", {})
    defaults = meta_doc.get("defaults", {})
    if meta_doc:
        if not isinstance(meta.get("demo"), bool):
            c.error("catalog.demo", "缺少必填项或不是 true/false（演示数据须标明 demo = true）")
        if meta.get("demo"):
            c.text(meta, "notice", "catalog")
        for key in ("hours", "complaint_phone", "online_depth"):
            c.text(defaults, key, "defaults")
        c.integer(defaults, "visits", "defaults")
        _check_steps(c, defaults, "defaults")

    stages = _read_forms(c, root)
    departments, items = _read_departments(c, root, defaults)
    templates, item_stage = _read_templates(c, root, departments, items, stages)

    c.file = "departments"
    for code, item in items.items():
        c.file = item["_file"]
        where = f"items[{code}]"
        if code not in item_stage and not item.get("materials"):
            c.error(f"{where}.materials", "事项不在任何流程模板中，须自带申请材料清单")
        for p in item.get("predecessors", []):
            if p not in items:
                c.error(f"{where}.predecessors", f"前置事项 {p} 不在事项清单中")
            elif p == code:
                c.error(f"{where}.predecessors", "事项不能以自身为前置事项")

    synonyms: dict[str, list[str]] = {}
    stopwords: list[str] = []
    syn_doc = c.load(root / "synonyms.toml")
    if syn_doc is not None:
        for term, words in (syn_doc.get("synonyms") or {}).items():
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
                c.error(f"synonyms.{term}", "应为非空的文字列表")
            else:
                synonyms[term] = words
        stopwords = (syn_doc.get("stopwords") or {}).get("words", [])
        if not isinstance(stopwords, list) or not all(isinstance(w, str) and w for w in stopwords):
            c.error("stopwords.words", "应为文字列表")
            stopwords = []

    if c.errors:
        raise CatalogInvalid(c.errors)
    for item in items.values():
        item.pop("_file", None)
    return Catalog(root, meta, defaults, departments, items, stages, templates, synonyms, stopwords, item_stage)


def _check_steps(c: _Checker, table: dict, path: str, *, required: bool = True) -> None:
    for i, step in enumerate(c.tables(table, "steps", path, required=required)):
        c.text(step, "name", f"{path}.steps[{i}]")
        c.text(step, "text", f"{path}.steps[{i}]")


def _read_forms(c: _Checker, root: Path) -> dict[int, dict[str, Any]]:
    doc = c.load(root / "forms.toml")
    if doc is None:
        return {}
    stages: dict[int, dict[str, Any]] = {}
    material_stage: dict[str, int] = {}
    for i, entry in enumerate(c.tables(doc, "stages", "")):
        where = f"stages[{i}]"
        number = c.integer(entry, "stage", where, minimum=1)
        if number is None:
            continue
        if number not in {s.value for s in Stage}:
            c.error(f"{where}.stage", "审批阶段应为1至5")
            continue
        if number in stages:
            c.error(f"{where}.stage", f"阶段 {number} 重复定义")
            continue
        where = f"stages[{number}]"
        fields_out, names = [], set()
        for f in c.tables(entry, "fields", where):
            fwhere = f"{where}.fields[{f.get('name', len(fields_out))}]"
            name = c.text(f, "name", fwhere)
            if name in names:
                c.error(f"{fwhere}.name", "字段名重复")
            names.add(name)
            label = c.text(f, "label", fwhere)
            kind = f.get("type")
            if kind not in FIELD_TYPES:
                c.error(f"{fwhere}.type", f"类型应为{'、'.join(sorted(FIELD_TYPES))}之一")
            required = c.boolean(f, "required", fwhere)
            spec: dict[str, Any] = {"name": name, "label": label, "type": kind, "required": bool(required)}
            if kind == "choice":
                spec["choices"] = c.texts(f, "choices", fwhere) or []
            if "known_from" in f:
                source = f["known_from"]
                m = _KNOWN_FROM.match(source) if isinstance(source, str) else None
                if m is None or (m["attr"] and m["attr"] not in PROJECT_FIELDS):
                    c.error(f"{fwhere}.known_from", f"应为 project.<{'|'.join(sorted(PROJECT_FIELDS))}> 或 stage<N>.<字段名>")
                elif m["stage"]:
                    earlier = stages.get(int(m["stage"]))
                    if int(m["stage"]) >= number or earlier is None:
                        c.error(f"{fwhere}.known_from", "只能引用本阶段之前已定义的阶段")
                    elif m["name"] not in {x["name"] for x in earlier["fields"]}:
                        c.error(f"{fwhere}.known_from", f"阶段 {m['stage']} 的表单中没有字段 {m['name']}")
                spec["known_from"] = source
            fields_out.append(spec)
        materials = c.materials(c.tables(entry, "materials", where), f"{where}.materials")
        for m in materials:
            if m["code"] and m["code"] != SHARED_MATERIAL:
                if m["code"] in material_stage:
                    c.error(f"{where}.materials[{m['code']}].code", f"材料编码已在阶段 {material_stage[m['code']]} 使用")
                material_stage[m["code"]] = number
        stages[number] = {"fields": fields_out, "materials": materials}
    return stages


def _read_departments(c: _Checker, root: Path, defaults: dict) -> tuple[dict, dict]:
    departments: dict[str, dict[str, Any]] = {}
    items: dict[str, dict[str, Any]] = {}
    files = sorted((root / "departments").glob("*.toml"))
    if not files:
        c.file = "departments"
        c.error("-", "没有部门文件（departments/*.toml）")
    for path in files:
        doc = c.load(path)
        if doc is None:
            continue
        dept = doc.get("department")
        if not isinstance(dept, dict):
            c.error("department", "缺少必填项")
            continue
        code = c.text(dept, "code", "department")
        name = c.text(dept, "name", "department")
        uscc = c.text(dept, "uscc", "department")
        if uscc and not is_valid_uscc(uscc):
            c.error("department.uscc", "统一社会信用代码不正确（GB 32100）")
        region = dept.get("region_code")
        if not is_valid_region_code(region):
            c.error("department.region_code", "行政区划代码应为6位数字")
        pushes = c.boolean(dept, "pushes_events", "department")
        guide = dept.get("guide", {})
        if not isinstance(guide, dict):
            c.error("department.guide", "应为表")
            guide = {}
        for key in ("location", "phone"):
            c.text(guide, key, "department.guide")
        if code in departments:
            c.error("department.code", f"部门编码 {code} 已在 {departments[code]['_file']} 中定义")
            continue
        departments[code] = {"code": code, "name": name, "uscc": uscc, "region_code": region,
                             "pushes_events": bool(pushes), "guide": guide, "_file": c.file}
        for i, item in enumerate(c.tables(doc, "items", "")):
            _read_item(c, item, i, code, items, defaults)
    for d in departments.values():
        d.pop("_file")
    return departments, items


def _read_item(c: _Checker, item: dict, index: int, dept: str, items: dict, defaults: dict) -> None:
    code = item.get("code")
    where = f"items[{code if isinstance(code, str) else index}]"
    code = c.text(item, "code", where)
    if code is None:
        return
    if code in items:
        c.error(f"{where}.code", f"事项编码已在 {items[code]['_file']} 中定义")
        return
    c.text(item, "name", where)
    if item.get("kind") not in {k.value for k in ItemKind}:
        c.error(f"{where}.kind", f"事项类型应为{'、'.join(k.value for k in ItemKind)}之一")
    c.text(item, "certificate_type", where, required=False)
    c.text(item, "document_number", where)
    c.text(item, "document_title", where)
    c.integer(item, "valid_years", where, minimum=1, required=False)
    promised = c.limit(item, "limit", where)
    legal = c.limit(item, "legal_limit", where, required=False)
    if "legal_limit" not in item:
        if c.text(item, "legal_limit_note", where, required=False) is None:
            c.error(f"{where}.legal_limit", "缺少法定时限（或以 legal_limit_note 说明法律未规定时限）")
    if promised and legal and _natural_days(promised) > _natural_days(legal):
        c.error(f"{where}.limit", f"承诺时限（{limit_text(promised)}）不能长于法定时限（{limit_text(legal)}）")
    preds = item.get("predecessors", [])
    if not isinstance(preds, list) or not all(isinstance(p, str) for p in preds):
        c.error(f"{where}.predecessors", "应为事项编码列表")
    objects = item.get("service_object", defaults.get("service_object"))
    if not isinstance(objects, list) or not objects:
        c.error(f"{where}.service_object", "缺少服务对象")
    if item.get("case_type", defaults.get("case_type")) not in CASE_TYPES:
        c.error(f"{where}.case_type", f"办件类型应为{'或'.join(sorted(CASE_TYPES))}")
    c.texts(item, "conditions", where)
    c.text(item, "result", where)
    c.text(item, "fee_note", where)
    for i, fee in enumerate(c.tables(item, "fees", where, required=False)):
        for key in ("name", "amount", "basis"):
            c.text(fee, key, f"{where}.fees[{i}]")
    for i, basis in enumerate(c.tables(item, "basis", where)):
        c.text(basis, "law", f"{where}.basis[{i}]")
        if "articles" in basis:
            c.texts(basis, "articles", f"{where}.basis[{i}]")
    for i, qa in enumerate(c.tables(item, "faq", where)):
        c.text(qa, "q", f"{where}.faq[{i}]")
        c.text(qa, "a", f"{where}.faq[{i}]")
    if "steps" in item:
        _check_steps(c, item, where)
    if "materials" in item:
        item = dict(item, materials=c.materials(c.tables(item, "materials", where), f"{where}.materials"))
    items[code] = dict(item, department=dept, _file=c.file)


def _read_templates(c: _Checker, root: Path, departments: dict, items: dict, stages: dict) -> tuple[dict, dict]:
    doc = c.load(root / "templates.toml")
    templates: dict[int, dict[str, Any]] = {}
    item_stage: dict[str, int] = {}
    if doc is None:
        return templates, item_stage
    for i, t in enumerate(c.tables(doc, "templates", "")):
        where = f"templates[{i}]"
        process_type = c.integer(t, "process_type", where, minimum=1)
        if process_type is not None and process_type > 10:
            c.error(f"{where}.process_type", "审批流程类型应为1至10")
        if process_type in templates:
            c.error(f"{where}.process_type", f"流程类型 {process_type} 重复定义")
            continue
        name = c.text(t, "name", where)
        out_stages: dict[int, dict[str, Any]] = {}
        for j, s in enumerate(c.tables(t, "stages", where)):
            swhere = f"{where}.stages[{j}]"
            number = c.integer(s, "stage", swhere, minimum=1)
            if number is not None and number not in stages:
                c.error(f"{swhere}.stage", f"forms.toml 中没有阶段 {number} 的表单")
            if number in out_stages:
                c.error(f"{swhere}.stage", f"阶段 {number} 重复")
            lead = s.get("lead")
            if lead not in departments:
                c.error(f"{swhere}.lead", f"牵头部门 {lead} 不在部门文件中")
            codes: list[str] = []
            entries = s.get("items")
            if not isinstance(entries, list) or not entries:
                c.error(f"{swhere}.items", "缺少必填项")
                entries = []
            for k, entry in enumerate(entries):
                iwhere = f"{swhere}.items[{k}]"
                code = entry.get("code") if isinstance(entry, dict) else entry
                if code not in items:
                    c.error(iwhere, f"事项 {code} 不在任何部门文件的事项清单中")
                    continue
                if code in codes:
                    c.error(iwhere, f"事项 {code} 重复")
                    continue
                if isinstance(entry, dict):
                    promised = items[code].get("limit") or {}
                    if "limit_days" in entry and entry["limit_days"] != promised.get("days"):
                        c.error(f"{iwhere}.limit_days", f"与事项 {code} 的承诺时限（{limit_text(promised)}）不一致")
                    if "limit_unit" in entry and entry["limit_unit"] != promised.get("unit"):
                        c.error(f"{iwhere}.limit_unit", f"与事项 {code} 的承诺时限（{limit_text(promised)}）不一致")
                if number is not None:
                    if item_stage.setdefault(code, number) != number:
                        c.error(iwhere, f"事项 {code} 在其他模板中属于阶段 {item_stage[code]}，同一事项只能属于一个阶段")
                codes.append(code)
            if number is not None:
                out_stages[number] = {"lead": lead, "items": codes}
        if process_type is not None:
            templates[process_type] = {"name": name, "stages": out_stages}
    return templates, item_stage


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


@dataclass
class LoadReport:
    departments: int = 0
    items: int = 0
    templates: int = 0
    new_guide_versions: int = 0


async def load_catalog(catalog: Catalog, *, now: dt.datetime | None = None) -> LoadReport:
    """Write the catalogue into the database (idempotent; one transaction)."""
    from api.models import ApprovalItem, Department, ItemGuide, ProcessTemplate, TemplateItem, TemplateStage

    now = now or dt.datetime.now(dt.timezone.utc)
    report = LoadReport()
    async with in_transaction():
        depts: dict[str, Any] = {}
        for code, d in catalog.departments.items():
            row = await Department.get_or_none(code=code)
            if row is None:
                row = await Department.create(code=code, name=d["name"], uscc=d["uscc"], region_code=d["region_code"])
            elif (row.name, row.uscc, row.region_code) != (d["name"], d["uscc"], d["region_code"]):
                row.name, row.uscc, row.region_code = d["name"], d["uscc"], d["region_code"]
                await row.save(update_fields=["name", "uscc", "region_code"])
            depts[code] = row
            report.departments += 1
        rows: dict[str, Any] = {}
        for code, item in catalog.items.items():
            dept = depts[item["department"]]
            row = await ApprovalItem.get_or_none(code=code)
            if row is None:
                row = await ApprovalItem.create(code=code, name=item["name"], kind=item["kind"], department=dept)
            elif (row.name, row.kind, row.department_id) != (item["name"], item["kind"], dept.id):
                row.name, row.kind, row.department_id = item["name"], ItemKind(item["kind"]), dept.id
                await row.save(update_fields=["name", "kind", "department_id"])
            rows[code] = row
            report.items += 1
            content = catalog.guide(code)
            digest = _digest(content)
            latest = await ItemGuide.filter(item_id=row.id).order_by("-version").first()
            if latest is None or latest.digest != digest:
                await ItemGuide.create(
                    item=row, version=(latest.version + 1) if latest else 1, digest=digest, content=content,
                    created_at=now,
                )
                report.new_guide_versions += 1
        for process_type, t in catalog.templates.items():
            template = await ProcessTemplate.get_or_none(process_type=process_type)
            if template is None:
                template = await ProcessTemplate.create(process_type=process_type, name=t["name"])
            elif template.name != t["name"]:
                template.name = t["name"]
                await template.save(update_fields=["name"])
            report.templates += 1
            for number, s in t["stages"].items():
                form = catalog.stages[number]
                stage = await TemplateStage.get_or_none(template_id=template.id, stage=number)
                if stage is None:
                    stage = await TemplateStage.create(
                        template=template, stage=number, lead_department=depts[s["lead"]],
                        form_fields=form["fields"], materials=form["materials"],
                    )
                else:
                    stage.lead_department_id = depts[s["lead"]].id
                    stage.form_fields, stage.materials = form["fields"], form["materials"]
                    await stage.save(update_fields=["lead_department_id", "form_fields", "materials"])
                await TemplateItem.filter(template_stage_id=stage.id).exclude(
                    item_id__in=[rows[c].id for c in s["items"]]
                ).delete()
                for sort, code in enumerate(s["items"], start=1):
                    item = catalog.items[code]
                    values = {
                        "limit_days": item["limit"]["days"],
                        "limit_unit": LimitUnit(item["limit"]["unit"]),
                        "warning_days": 2,
                        "sort": sort,
                        "certificate_type": item.get("certificate_type"),
                        # An item's predecessors, kept only when the template's stage has them.
                        "predecessor_codes": [p for p in item.get("predecessors", []) if p in s["items"]],
                    }
                    await TemplateItem.update_or_create(values, template_stage_id=stage.id, item_id=rows[code].id)
    return report
