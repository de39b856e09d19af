"""A small, fully controlled world for tests: departments, an item catalogue with a template, people of every role.

Process type 3 (一般社会投资), stage 1 has three items: A (5 WD), B (10 WD, predecessor A, yields a certificate),
C (3 ND). Stage 3 has one item D. Everything in region 440402 (香洲区), the clerk covers the city (440400).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from api.domain.accounts import Role
from api.domain.catalog import ItemKind
from api.domain.codes import make_uscc
from api.domain.timing import LimitUnit
from api.models import (
    AgentAuthorization,
    ApprovalItem,
    Department,
    LoginSession,
    Organization,
    ProcessTemplate,
    Project,
    TemplateItem,
    TemplateStage,
    User,
)
from api.services.calendar import seed_bundled_years
from api.services.tokens import issue_access_token
from api.settings import Settings


def uscc(seed: int, kind: str = "91") -> str:
    return make_uscc(f"{kind}440400{seed:09d}")


@dataclass
class World:
    settings: Settings
    departments: dict[str, Department] = field(default_factory=dict)
    items: dict[str, ApprovalItem] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    organizations: dict[str, Organization] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)  # user key → id of its open login session
    authorizations: dict[str, AgentAuthorization] = field(default_factory=dict)  # applicant key → its 经办人授权

    def token(self, user_key: str) -> str:
        user = self.users[user_key]
        return issue_access_token(
            self.settings, user_id=user.id, role=user.role.value, session_id=self.sessions[user_key]
        )

    async def add_user(self, key: str, display_name: str, role: Role, **extra) -> User:
        """A user with an open login session, so ``token(key)`` works."""
        user = await User.create(display_name=display_name, role=role, **extra)
        self.users[key] = user
        session = await LoginSession.create(id=uuid.uuid4(), user=user, kind="TEST", created_at=dt.datetime.now(dt.timezone.utc))
        self.sessions[key] = str(session.id)
        return user


PROJECT_CODE = "2026-440402-47-01-000001"
OTHER_PROJECT_CODE = "2026-440402-47-01-000002"
FAR_PROJECT_CODE = "2026-441900-47-01-000003"  # another city: outside the clerk's region
APPLICANT_PHONE = "13800001111"
OTHER_APPLICANT_PHONE = "13900002222"


async def build_world(settings: Settings) -> World:
    await seed_bundled_years()
    w = World(settings)
    for seed, (key, name) in enumerate(
        [("planning", "珠海市自然资源局"), ("housing", "珠海市住房和城乡建设局"), ("water", "珠海市水务局")], start=1
    ):
        w.departments[key] = await Department.create(
            code=key.upper(), name=name, uscc=uscc(seed, "11"), region_code="440400", ingest_secret=f"secret-{key}"
        )
    specs = [
        ("A", "建设项目用地预审与选址意见书核发", "planning"),
        ("B", "建设用地规划许可证核发", "planning"),
        ("C", "取水许可", "water"),
        ("D", "建筑工程施工许可证核发", "housing"),
    ]
    for code, name, dept in specs:
        w.items[code] = await ApprovalItem.create(
            code=code, name=name, kind=ItemKind.ADMINISTRATIVE_LICENSE, department=w.departments[dept]
        )
    template = await ProcessTemplate.create(process_type=3, name="一般社会投资项目")
    s1 = await TemplateStage.create(
        template=template,
        stage=1,
        lead_department=w.departments["planning"],
        form_fields=[
            {"name": "landArea", "label": "用地面积(平方米)", "type": "number", "required": True},
            {"name": "purpose", "label": "用地用途", "type": "string", "required": False},
        ],
        materials=[
            {"code": "M01", "name": "申请表", "required": True},
            {"code": "M02", "name": "用地红线图", "required": False},
        ],
    )
    s3 = await TemplateStage.create(
        template=template,
        stage=3,
        lead_department=w.departments["housing"],
        form_fields=[],
        materials=[{"code": "M01", "name": "申请表", "required": True}],
    )
    await TemplateItem.create(template_stage=s1, item=w.items["A"], limit_days=5, sort=1)
    await TemplateItem.create(
        template_stage=s1,
        item=w.items["B"],
        limit_days=10,
        predecessor_codes=["A"],
        certificate_type="11100000000013338W002",
        sort=2,
    )
    await TemplateItem.create(template_stage=s1, item=w.items["C"], limit_days=3, limit_unit=LimitUnit.ND, sort=3)
    await TemplateItem.create(template_stage=s3, item=w.items["D"], limit_days=7, sort=1)

    w.organizations["builder"] = await Organization.create(
        name="珠海市建设发展有限公司", uscc=uscc(101), region_code="440402"
    )
    w.organizations["other"] = await Organization.create(name="别家公司", uscc=uscc(102), region_code="440402")
    verified = dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc)
    people = [
        ("applicant", "张经办", Role.APPLICANT,
         {"organization": w.organizations["builder"], "phone": APPLICANT_PHONE, "phone_verified_at": verified}),
        ("other_applicant", "李别家", Role.APPLICANT,
         {"organization": w.organizations["other"], "phone": OTHER_APPLICANT_PHONE, "phone_verified_at": verified}),
        ("clerk", "王窗口", Role.WINDOW_CLERK, {"region_code": "440400"}),
        ("far_clerk", "赵东莞", Role.WINDOW_CLERK, {"region_code": "441900"}),
        ("planner", "陈规划", Role.APPROVER, {"department": w.departments["planning"]}),
        ("water", "周水务", Role.APPROVER, {"department": w.departments["water"]}),
        ("housing", "吴住建", Role.APPROVER, {"department": w.departments["housing"]}),
        ("supervisor", "郑督查", Role.SUPERVISOR, {}),
        ("citizen", "孙市民", Role.CITIZEN, {}),
    ]
    for key, name, role, extra in people:
        await w.add_user(key, name, role, **extra)
    # The builders authorise their applicants' phones (经办人授权): without it an applicant sees nothing.
    for key, org in [("applicant", "builder"), ("other_applicant", "other")]:
        user = w.users[key]
        w.authorizations[key] = await AgentAuthorization.create(
            organization=w.organizations[org], phone=user.phone, agent_name=user.display_name, is_admin=True,
            granted_at=verified,
        )
    for key, code, org in [
        ("main", PROJECT_CODE, "builder"),
        ("other", OTHER_PROJECT_CODE, "other"),
        ("far", FAR_PROJECT_CODE, "builder"),
    ]:
        region = code.split("-")[1]
        w.projects[key] = await Project.create(
            code=code,
            name=f"测试项目{key}",
            organization=w.organizations[org],
            process_type=3,
            region_code=region,
            address="珠海市香洲区测试路1号",
            investment=Decimal("12000.00"),
        )
    return w


def shanghai(y: int, m: int, d: int, h: int = 10, minute: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, h, minute, tzinfo=dt.timezone(dt.timedelta(hours=8)))
