"""Reporting to the provincial system through the national data-sharing exchange tables (DOMAIN.md §13, issue #15).

``push(url)`` writes our projects and cases into the standard's SPGL_* tables of a separate PostgreSQL database (the
前置库 the province pulls from), creating the tables if missing:

- **incrementally**: a watermark per exchange database (``ExchangeWatermark``: the last case event and project pushed)
  so a push reads only the events and projects added since; ``since`` overrides it (events recorded and projects
  created from that moment on);
- **idempotently**: every row has a stable 地方数据主键 (DFSJZJ) and is upserted; a row whose values did not change is
  not written (``IS DISTINCT FROM``), so a re-push changes nothing; a revoked decision sets 数据有效标识 SJYXBS = 0 on its
  批复文件 row, never deletes;
- **validated**: every code (项目代码, 统一社会信用代码, 行政区划, BLZT, 审批阶段, 流程类型) is checked before writing; a
  failing row is reported with its reason and skipped, the others are written.

Table and column names are created quoted and in upper case, exactly as the standard spells them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from api.domain.catalog import STAGE_NAMES, Stage
from api.domain.codes import is_valid_project_code, is_valid_region_code, is_valid_uscc
from api.domain.lifecycle import Action, Party
from api.models import (
    Application,
    ApprovalItem,
    Case,
    CaseEvent,
    Certificate,
    Department,
    ExchangeWatermark,
    Organization,
    ProcessTemplate,
    Project,
    TemplateItem,
    TemplateStage,
    User,
)
from api.models.certificates import StoredCertificateStatus

V, N, T, D, I = "VARCHAR(500)", "NUMERIC(18,4)", "TIMESTAMPTZ", "DATE", "INTEGER"

# table → (column, SQL type); the first column is the key DFSJZJ. Column names as DOMAIN.md §13 gives them.
TABLES: dict[str, list[tuple[str, str]]] = {
    "SPGL_DFXMSPLCXXB": [  # 地方项目审批流程信息
        ("DFSJZJ", V), ("XZQHDM", V), ("SPLCBM", V), ("SPLCBBH", N), ("SPLCMC", V), ("SPLCLX", I), ("SJYXBS", I),
    ],
    "SPGL_DFXMSPLCJDXXB": [  # 审批阶段
        ("DFSJZJ", V), ("XZQHDM", V), ("SPLCBM", V), ("SPLCBBH", N), ("SPJDBM", V), ("SPJDMC", V), ("SPJDXH", I),
        ("DYBZSPJDXH", I), ("SPJDSX", N), ("SPBMBM", V), ("SPBMMC", V), ("SJYXBS", I),
    ],
    "SPGL_DFXMSPLCJDSXXXB": [  # 阶段事项
        ("DFSJZJ", V), ("XZQHDM", V), ("SPLCBM", V), ("SPLCBBH", N), ("SPJDBM", V), ("SPSXBM", V), ("SPSXMC", V),
        ("DYBZSPSXBM", V), ("SPSXBLSX", N), ("SPBMBM", V), ("SPBMMC", V), ("SJYXBS", I),
    ],
    "SPGL_XMJBXXB": [  # 项目基本信息
        ("DFSJZJ", V), ("XZQHDM", V), ("XMDM", V), ("XMMC", V), ("GCDM", V), ("GCFW", V), ("SPLCLX", I),
        ("ZTZE", N), ("JSDDXZQH", V), ("JSDD", V), ("JSGMJNR", V), ("SBSJ", T), ("SPLCBM", V), ("SPLCBBH", N),
        ("SJYXBS", I),
    ],
    "SPGL_XMDWXXB": [  # 项目单位
        ("DFSJZJ", V), ("XZQHDM", V), ("XMDM", V), ("JSDWMC", V), ("JSDWTYSHXYDM", V), ("DWLX", I), ("SJYXBS", I),
    ],
    "SPGL_XMSPSXBLXXB": [  # 事项办理
        ("DFSJZJ", V), ("XZQHDM", V), ("GCDM", V), ("SPSXBM", V), ("SPSXBBH", N), ("SPLCBM", V), ("SPLCBBH", N),
        ("SPSXSLBM", V), ("SPJDXH", I), ("SPBMBM", V), ("SPBMMC", V), ("SLFS", I), ("GKFS", I), ("BLSPSLBM", V),
        ("SXBLSX", N), ("SJYXBS", I),
    ],
    "SPGL_XMSPSXBLXXXXB": [  # 办理详细信息: one row per state change
        ("DFSJZJ", V), ("XZQHDM", V), ("GCDM", V), ("SPSXSLBM", V), ("BLCS", V), ("BLR", V), ("BLZT", I),
        ("BLYJ", "TEXT"), ("BLSJ", T), ("DWMC", V), ("DWTYSHXYDM", V), ("SJYXBS", I),
    ],
    "SPGL_XMSPSXPFWJXXB": [  # 批复文件
        ("DFSJZJ", V), ("XZQHDM", V), ("GCDM", V), ("SPSXSLBM", V), ("PFRQ", D), ("PFWH", V), ("PFWJBT", V),
        ("PFWJYXQX", D), ("FJMC", V), ("FJID", V), ("FJLX", V), ("SJYXBS", I),
    ],
    "SPGL_XMSPSXTBCXXXB": [  # 特别程序
        ("DFSJZJ", V), ("XZQHDM", V), ("GCDM", V), ("SPSXSLBM", V), ("TBCX", V), ("TBCXMC", V), ("XQR", V),
        ("TBCXKSSJ", T), ("TBCXSXYY", "TEXT"), ("TBCXSX", N), ("TBCXJSSJ", T), ("SJYXBS", I),
    ],
}

EXCHANGE_LOCK = 0x4A534558  # "JSEX": the advisory lock that serialises pushes into one exchange database
WATERMARK_OVERLAP_SECONDS = 60  # what a push re-reads before the previous one (commits out of id order)
PARTY_OFFICE = {Party.APPLICANT: "申请人", Party.WINDOW: "综合服务窗口", Party.DEPARTMENT: "审批部门"}


def q(name: str) -> str:
    return '"' + name + '"'


def target_name(url: str) -> str:
    """The exchange database a watermark belongs to: host:port/database, never the credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or 5432}{parts.path}"[:200]


def process_code(template_id: int) -> str:
    return f"LC{template_id}"


@dataclass
class Failure:
    table: str
    key: str
    reason: str


@dataclass
class PushReport:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # what was read, by table
    failures: list[Failure] = field(default_factory=list)
    inserted: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    dry_run: bool = False
    last_event_id: int = 0
    last_project_id: int = 0

    def written(self, table: str) -> int:
        return self.inserted[table] + self.updated[table]

    def summary(self) -> str:
        lines = []
        for table in TABLES:
            valid = len(self.rows.get(table, ()))
            if self.dry_run:
                lines.append(f"{table:22} would upsert {valid}")
            else:
                lines.append(f"{table:22} inserted {self.inserted[table]}, updated {self.updated[table]}, "
                             f"unchanged {self.unchanged[table]}")
        for failure in self.failures:
            lines.append(f"refused {failure.table} {failure.key}: {failure.reason}")
        lines.append(("dry run: nothing written" if self.dry_run else "pushed")
                     + f"; {len(self.failures)} row(s) refused")
        return "\n".join(lines)


# --- validation -----------------------------------------------------------------------------------------------------

def row_problem(table: str, row: dict[str, Any]) -> str | None:
    """Why ``row`` may not be written (the standard's codes, DOMAIN.md §2-§4), or None."""
    for column in ("XMDM", "GCDM"):
        if column in row and not is_valid_project_code(row[column]):
            return f"{column} 项目代码格式不正确: {row[column]!r}"
    for column in ("XZQHDM", "JSDDXZQH"):
        if column in row and not is_valid_region_code(row[column]):
            return f"{column} 行政区划代码须为6位数字: {row[column]!r}"
    for column in ("JSDWTYSHXYDM", "DWTYSHXYDM"):
        if column in row and row[column] is not None and not is_valid_uscc(row[column]):
            return f"{column} 统一社会信用代码不正确: {row[column]!r}"
    if "BLZT" in row and row["BLZT"] not in range(1, 16):
        return f"BLZT 办理状态须为1-15: {row['BLZT']!r}"
    for column in ("DYBZSPJDXH", "SPJDXH"):
        if column in row and row[column] not in range(1, 6):
            return f"{column} 审批阶段须为1-5: {row[column]!r}"
    if "SPLCLX" in row and row["SPLCLX"] not in range(1, 11):
        return f"SPLCLX 审批流程类型须为1-10: {row['SPLCLX']!r}"
    return None


# --- reading our side -----------------------------------------------------------------------------------------------

async def collect(*, after_event: int = 0, after_project: int = 0, since: dt.datetime | None = None,
                  recent: dt.datetime | None = None) -> PushReport:
    """The rows to push: processes (always; unchanged ones are not written), the projects created and the cases
    that moved after the watermark (or since ``since``), their new events, approval documents, special procedures."""
    report = PushReport()
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    departments = {d.id: d for d in await Department.all()}
    templates = {t.process_type: t for t in await ProcessTemplate.all()}

    # Processes, stages, stage items.
    for template in templates.values():
        region = "440400"
        code = process_code(template.id)
        out["SPGL_DFXMSPLCXXB"].append({"DFSJZJ": code, "XZQHDM": region, "SPLCBM": code, "SPLCBBH": Decimal(1),
                                        "SPLCMC": template.name, "SPLCLX": template.process_type, "SJYXBS": 1})
        for stage in await TemplateStage.filter(template_id=template.id).order_by("stage"):
            lead = departments.get(stage.lead_department_id)
            items = await TemplateItem.filter(template_stage_id=stage.id).prefetch_related("item").order_by("sort")
            stage_code = f"{code}-JD{stage.stage}"
            out["SPGL_DFXMSPLCJDXXB"].append({
                "DFSJZJ": stage_code, "XZQHDM": region, "SPLCBM": code, "SPLCBBH": Decimal(1), "SPJDBM": stage_code,
                "SPJDMC": STAGE_NAMES.get(Stage(stage.stage), str(stage.stage)) if stage.stage in range(1, 6)
                else str(stage.stage),
                "SPJDXH": stage.stage, "DYBZSPJDXH": stage.stage,
                "SPJDSX": Decimal(max((entry.limit_days for entry in items), default=0)),  # parallel: the longest
                "SPBMBM": lead.code if lead else None, "SPBMMC": lead.name if lead else None, "SJYXBS": 1,
            })
            for entry in items:
                item: ApprovalItem = entry.item
                dept = departments.get(item.department_id)
                out["SPGL_DFXMSPLCJDSXXXB"].append({
                    "DFSJZJ": f"{stage_code}-{item.code}", "XZQHDM": region, "SPLCBM": code, "SPLCBBH": Decimal(1),
                    "SPJDBM": stage_code, "SPSXBM": item.code, "SPSXMC": item.name, "DYBZSPSXBM": item.code,
                    "SPSXBLSX": Decimal(entry.limit_days), "SPBMBM": dept.code if dept else None,
                    "SPBMMC": dept.name if dept else None, "SJYXBS": 1,
                })

    # Projects and their units.
    if since:
        projects_q = Project.filter(created_at__gte=since)
    else:
        condition = Q(id__gt=after_project)
        projects_q = Project.filter(condition | Q(created_at__gte=recent) if recent else condition)
    for project in await projects_q.order_by("id"):
        report.last_project_id = max(report.last_project_id, project.id)
        organization = await Organization.get(id=project.organization_id)
        template = templates.get(project.process_type)
        out["SPGL_XMJBXXB"].append({
            "DFSJZJ": project.code, "XZQHDM": project.region_code, "XMDM": project.code, "XMMC": project.name,
            "GCDM": project.code, "GCFW": project.name, "SPLCLX": project.process_type,
            "ZTZE": Decimal(project.investment), "JSDDXZQH": project.region_code, "JSDD": project.address,
            "JSGMJNR": project.name, "SBSJ": project.created_at,
            "SPLCBM": process_code(template.id) if template else None, "SPLCBBH": Decimal(1), "SJYXBS": 1,
        })
        out["SPGL_XMDWXXB"].append({
            "DFSJZJ": f"{project.code}-{organization.uscc}", "XZQHDM": project.region_code, "XMDM": project.code,
            "JSDWMC": organization.name, "JSDWTYSHXYDM": organization.uscc, "DWLX": 1, "SJYXBS": 1,
        })

    # Cases that moved: their row, their new events, their approval documents and special procedures.
    if since:
        events_q = CaseEvent.filter(recorded_at__gte=since)
    else:
        condition = Q(id__gt=after_event)
        events_q = CaseEvent.filter(condition | Q(recorded_at__gte=recent) if recent else condition)
    new_events = await events_q.order_by("id")
    report.last_event_id = max((e.id for e in new_events), default=0)
    by_case: dict[int, list[CaseEvent]] = defaultdict(list)
    for event in new_events:
        by_case[event.case_id].append(event)
    users = {u.id: u for u in await User.filter(id__in={e.actor_id for e in new_events if e.actor_id})}
    for case_id in sorted(by_case):
        case = await Case.get(id=case_id)
        project = await Project.get(id=case.project_id)
        application = await Application.get(id=case.application_id)
        item = await ApprovalItem.get(id=case.item_id)
        dept = departments.get(case.department_id)
        template = templates.get(project.process_type)
        every = await CaseEvent.filter(case_id=case.id).order_by("seq")
        received_by_system = bool(every) and every[0].department_id is not None
        base = {"XZQHDM": project.region_code, "GCDM": project.code, "SPSXSLBM": case.code}
        out["SPGL_XMSPSXBLXXB"].append({
            "DFSJZJ": case.code, "XZQHDM": project.region_code, "GCDM": project.code, "SPSXBM": item.code,
            "SPSXBBH": Decimal(case.guide_version or 1), "SPLCBM": process_code(template.id) if template else None,
            "SPLCBBH": Decimal(1), "SPSXSLBM": case.code, "SPJDXH": case.stage,
            "SPBMBM": dept.code if dept else None, "SPBMMC": dept.name if dept else None,
            "SLFS": 1 if received_by_system else 4, "GKFS": 1, "BLSPSLBM": application.parallel_instance_code,
            "SXBLSX": Decimal(case.limit_days), "SJYXBS": 1,
        })
        for event in by_case[case_id]:
            actor = users.get(event.actor_id) if event.actor_id else None
            data = event.data or {}
            out["SPGL_XMSPSXBLXXXXB"].append({
                "DFSJZJ": f"{case.code}-{event.seq}", **base,
                "BLCS": (dept.name if event.party == Party.DEPARTMENT and dept else PARTY_OFFICE[Party(event.party)]),
                "BLR": actor.display_name if actor else (f"{dept.name}审批业务系统" if dept else None),
                "BLZT": event.blzt, "BLYJ": data.get("opinion") or data.get("reason"), "BLSJ": event.occurred_at,
                "DWMC": dept.name if dept else None, "DWTYSHXYDM": dept.uscc if dept else None, "SJYXBS": 1,
            })
        # Approval documents and special procedures are rebuilt from the whole timeline of a case that moved, so a
        # revocation (a new event) voids the document it revokes (SJYXBS 0) and an end fills in its procedure.
        special: dict[str, Any] | None = None
        for index, event in enumerate(every):
            action = Action(event.action)
            data = event.data or {}
            if action in (Action.APPROVE, Action.APPROVE_DEFICIENT) and data.get("document"):
                doc = data["document"]
                revoked = any(Action(later.action) == Action.REVOKE for later in every[index + 1:])
                out["SPGL_XMSPSXPFWJXXB"].append({
                    "DFSJZJ": f"{case.code}-{event.seq}", **base,
                    "PFRQ": dt.date.fromisoformat(doc["approval_date"]), "PFWH": doc["document_number"],
                    "PFWJBT": doc["document_title"], "PFWJYXQX": dt.date.fromisoformat(doc["valid_until"]),
                    "FJMC": doc["document_title"], "FJID": ",".join(map(str, event.attachments or [])) or None,
                    "FJLX": "pdf" if event.attachments else None, "SJYXBS": 0 if revoked else 1,
                })
            elif action == Action.BEGIN_SPECIAL_PROCEDURE:
                special = {
                    "DFSJZJ": f"{case.code}-{event.seq}", **base, "TBCX": data.get("kind"),
                    "TBCXMC": data.get("kind"), "XQR": event.occurred_at.date().isoformat(),
                    "TBCXKSSJ": event.occurred_at, "TBCXSXYY": data.get("reason"),
                    "TBCXSX": Decimal(data.get("expected_days") or 0), "TBCXJSSJ": None, "SJYXBS": 1,
                }
                out["SPGL_XMSPSXTBCXXXB"].append(special)
            elif action == Action.END_SPECIAL_PROCEDURE and special is not None:
                special["TBCXJSSJ"] = event.occurred_at
                special = None
        # The certificates of the case are 批复文件 too, each under its own 证照编号 (PFWH): the one sealed here, or the
        # one the department's system issued and reported (issue #15). A revoked or superseded one: SJYXBS 0.
        for certificate in await Certificate.filter(case_id=case.id).order_by("id"):
            file_name = next((str(v) for k, v in certificate.fields_data or [] if k == "证照文件" and v), None)
            out["SPGL_XMSPSXPFWJXXB"].append({
                "DFSJZJ": f"{case.code}-ZZ{certificate.version}-{certificate.id}", **base,
                "PFRQ": certificate.issue_date, "PFWH": certificate.number, "PFWJBT": certificate.name,
                "PFWJYXQX": certificate.valid_until, "FJMC": file_name or certificate.name,
                "FJID": certificate.file_ref or certificate.identifier,
                "FJLX": "pdf",
                "SJYXBS": 1 if certificate.status == StoredCertificateStatus.VALID else 0,
            })

    for table in TABLES:
        for row in out.get(table, ()):
            problem = row_problem(table, row)
            if problem:
                report.failures.append(Failure(table, str(row["DFSJZJ"]), problem))
            else:
                report.rows.setdefault(table, []).append(row)
    return report


# --- writing the exchange database ----------------------------------------------------------------------------------

def create_sql(table: str) -> str:
    columns = TABLES[table]
    body = ", ".join(f"{q(name)} {kind}" for name, kind in columns)
    return f"CREATE TABLE IF NOT EXISTS {q(table)} ({body}, PRIMARY KEY ({q('DFSJZJ')}))"


def upsert_sql(table: str) -> str:
    names = [name for name, _ in TABLES[table]]
    rest = [name for name in names if name != "DFSJZJ"]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    mine = ", ".join(f"{q(table)}.{q(n)}" for n in rest)
    theirs = ", ".join(f"EXCLUDED.{q(n)}" for n in rest)
    return (
        f"INSERT INTO {q(table)} ({', '.join(map(q, names))}) VALUES ({placeholders}) "
        f"ON CONFLICT ({q('DFSJZJ')}) DO UPDATE SET ({', '.join(map(q, rest))}) = ({theirs}) "
        f"WHERE ({mine}) IS DISTINCT FROM ({theirs}) RETURNING (xmax = 0) AS inserted"
    )


async def ensure_tables(connection) -> None:
    for table in TABLES:
        await connection.execute(create_sql(table))


async def push(url: str, *, since: dt.datetime | None = None, dry_run: bool = False,
               now: dt.datetime | None = None) -> PushReport:
    """Push what changed since the watermark (or since ``since``) to the exchange database at ``url``."""
    import asyncpg

    now = now or dt.datetime.now(dt.timezone.utc)
    target = target_name(url)
    mark = await ExchangeWatermark.get_or_none(target=target)
    # PostgreSQL hands out ids before commit: an event with a smaller id than the watermark may commit after a push.
    # Each push therefore also re-reads what was recorded shortly before the previous one (unchanged rows are not
    # written again).
    report = await collect(
        after_event=mark.last_event_id if mark else 0, after_project=mark.last_project_id if mark else 0, since=since,
        recent=mark.pushed_at - dt.timedelta(seconds=WATERMARK_OVERLAP_SECONDS) if mark else None,
    )
    report.dry_run = dry_run
    if dry_run:
        return report
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            # One push at a time per exchange database (another process, the cron job and a hand-run one): two
            # concurrent CREATE TABLE IF NOT EXISTS can collide in PostgreSQL's catalogue.
            await connection.execute("SELECT pg_advisory_xact_lock($1)", EXCHANGE_LOCK)
            await ensure_tables(connection)
            for table, rows in report.rows.items():
                statement = upsert_sql(table)
                names = [name for name, _ in TABLES[table]]
                for row in rows:
                    result = await connection.fetchrow(statement, *[row.get(name) for name in names])
                    if result is None:
                        report.unchanged[table] += 1
                    elif result["inserted"]:
                        report.inserted[table] += 1
                    else:
                        report.updated[table] += 1
    finally:
        await connection.close()
    # The watermark moves only after the exchange committed: a failed push is repeated whole by the next one.
    last_event = max(report.last_event_id, mark.last_event_id if mark else 0)
    last_project = max(report.last_project_id, mark.last_project_id if mark else 0)
    values = {"last_event_id": last_event, "last_project_id": last_project, "pushed_at": now}
    if not await ExchangeWatermark.filter(target=target).update(**values):
        try:
            await ExchangeWatermark.create(target=target, **values)
        except IntegrityError:  # a concurrent first push created it: both pushed the same rows, keep the furthest
            await ExchangeWatermark.filter(target=target, last_event_id__lte=last_event).update(**values)
    return report
