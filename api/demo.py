"""Demo data for 珠海市 (440400): ``python -m api load-demo`` / ``make demo``.

What is loaded:

- the city's approval departments and three utility companies, each with a valid USCC (GB 32100-2015);
- the catalogue of api/data/catalog (``api.services.catalog``): the city's departments, the item catalogue (事项清单)
  with each item's 办事指南, and the process templates of the five common process types (SPLCLX 1–5), four stages
  each, with committed time limits, 前后时序, the certificate types of DOMAIN.md §6 and each stage's one form;
- two builders (建设单位) with their applicants (WeChat users with verified phones the builders authorise as agents,
  经办人授权), a window clerk, one approver per government department, a supervisor,
  an administrator and a citizen; staff sign in with ``staffLogin`` and ``DEMO_STAFF_PASSWORD``, WeChat users with the
  development login code ``dev:<username>`` (console mode, no app id configured);
- an 电子印章 for every department whose items yield certificates, and so the certificates of the approved cases,
  issued by the approvals themselves, their sealed PDFs made once at load;
- 20 projects whose histories are made ONLY through the real services (``submit_application``, ``apply_case_action``)
  at moments in the past relative to today, so every rule is checked exactly as in production and the lights
  (computed with the real holiday calendar) show red, yellow and green cases whenever the demo is loaded.

Time is counted in working days before today: a stage submitted ``ago`` working days ago is accepted the next working
day, so a case still running has used ``ago - 1`` days of its limit (DOMAIN.md §5: day 1 is the day after acceptance).

Loading is idempotent: if the demo builder's USCC exists nothing is created again. Either way fresh access tokens are
returned, one per role. The only values that differ between two fresh loads, apart from dates and timestamps that
are relative to today, are the upload ids (UUIDs made by the upload service) and the tokens.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from api.demo_feedback import load_feedback_demo
from api.domain.accounts import DEMO_STAFF_PASSWORD, Role
from api.domain.calendar import WorkCalendar
from api.domain.codes import make_uscc
from api.domain.lifecycle import Action, SpecialProcedureKind
from api.domain.timing import SHANGHAI
from api.models import (
    AgentAuthorization,
    ApprovalItem,
    Building,
    Department,
    LoginSession,
    Organization,
    Project,
    User,
)
from api.services.access import Viewer
from api.services.accounts import HASHER
from api.services.applications import MaterialInput, submit_application
from api.services.calendar import get_calendar, seed_bundled_years
from api.services.cases import Actor, apply_case_action
from api.services.catalog import Catalog, load_catalog, read_catalog
from api.services.tokens import issue_access_token
from api.services.uploads import store_upload
from api.settings import DEV_INGEST_SECRET_PREFIX, Settings

CITY = "440400"  # 珠海市

# The catalogue (departments, items and their guides, process templates, stage forms) is data: api/data/catalog/*.toml,
# loaded by ``python -m api load-catalog`` and, here, by the demo itself. Demo users name departments by their key, the
# department code without the city prefix (``ZH-HC`` → ``HC``).
def _dept_key(code: str) -> str:
    return code.removeprefix("ZH-")


# ---------------------------------------------------------------------------------------------------------------------
# People and builders
# ---------------------------------------------------------------------------------------------------------------------
ORGANIZATIONS = [  # key, name, USCC body (after 91440400), region
    ("cjkf", "珠海市城建开发有限公司", "MA4W2KQ81", "440402"),  # the demo builder; its USCC marks a loaded demo
    ("jwxc", "珠海金湾新城投资有限公司", "MA53LT6P0", "440404"),
]
MARKER_USCC = make_uscc("91440400" + ORGANIZATIONS[0][2])

# username, display name, role, organisation / department / region
USERS: list[tuple[str, str, Role, dict[str, str]]] = [
    ("demo.applicant", "刘建华", Role.APPLICANT, {"org": "cjkf"}),
    ("demo.applicant.jwxc", "许文静", Role.APPLICANT, {"org": "jwxc"}),
    ("demo.citizen", "黄晓敏", Role.CITIZEN, {}),
    ("demo.clerk", "陈丽娟", Role.WINDOW_CLERK, {"region": CITY}),
    ("demo.approver", "李志强", Role.APPROVER, {"dept": "HC"}),  # 住建局
    ("demo.approver.nr", "王海涛", Role.APPROVER, {"dept": "NR"}),  # 自然资源局
    ("demo.approver.dr", "张伟明", Role.APPROVER, {"dept": "DR"}),
    ("demo.approver.ee", "何静", Role.APPROVER, {"dept": "EE"}),
    ("demo.approver.wa", "梁国栋", Role.APPROVER, {"dept": "WA"}),
    ("demo.approver.tr", "罗文斌", Role.APPROVER, {"dept": "TR"}),
    ("demo.approver.em", "谢鹏", Role.APPROVER, {"dept": "EM"}),
    ("demo.approver.ma", "郭晓峰", Role.APPROVER, {"dept": "MA"}),
    ("demo.approver.ca", "林振宇", Role.APPROVER, {"dept": "CA"}),
    ("demo.approver.um", "吴志刚", Role.APPROVER, {"dept": "UM"}),
    ("demo.supervisor", "周敏", Role.SUPERVISOR, {}),
    ("demo.admin", "赵磊", Role.ADMIN, {}),
]
# Verified phone numbers of the demo's WeChat users (demo values). The applicants' are authorised by their builders.
DEMO_PHONES = {
    "demo.applicant": "13800138001",
    "demo.applicant.jwxc": "13800138002",
    "demo.citizen": "13800138003",
}

# The user whose token ``make demo`` writes for each role.
TOKEN_USERS = {
    "APPLICANT": "demo.applicant",
    "CITIZEN": "demo.citizen",
    "WINDOW_CLERK": "demo.clerk",
    "APPROVER": "demo.approver",
    "SUPERVISOR": "demo.supervisor",
    "ADMIN": "demo.admin",
}

# What each demo account may do (printed by ``make demo`` and listed in the README, issue #12).
CAN_DO = {
    Role.APPLICANT: "its organisation's projects: submitApplication, submitCorrection, withdrawCase, retractCase; "
    "certificates; agents",
    Role.CITIZEN: "fileComplaint, rateCase; its own complaints and ratings",
    Role.WINDOW_CLERK: "its region's cases (the whole city): acceptCase, rejectCase, requestCorrection",
    Role.APPROVER: "its department's cases: startCase, beginSpecialProcedure, decideCase, revokeCase",
    Role.SUPERVISOR: "reads everything: statistics, every project and case, complaints, rating appeals",
    Role.ADMIN: "everything, plus accounts and the catalogue",
}

DESIGN_UNIT = "珠海城建设计研究院有限公司"
CONSTRUCTION_UNIT = "珠海城建工程建设有限公司"
SUPERVISION_UNIT = "珠海正衡工程监理有限公司"
PROJECT_MANAGER = "陈国强"


# ---------------------------------------------------------------------------------------------------------------------
# Case scripts: what happens to one case, in working days after its application was submitted (day 0).
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    action: Action
    day: int | None  # None: a decision on a sensible day (half the limit, after the predecessors' decisions)
    data: dict[str, Any] = field(default_factory=dict)


Script = tuple[Step, ...]
A = Action  # short, for the scripts below


def received() -> Script:
    return ()


def accepted() -> Script:
    return (Step(A.ACCEPT, 1),)


def running() -> Script:
    return (Step(A.ACCEPT, 1), Step(A.START, 1))


def approved(k: int | None = None) -> Script:
    """Approved ``k`` working days after acceptance (on time when ``k`` ≤ the limit)."""
    return running() + (Step(A.APPROVE, None if k is None else 1 + k),)


def deficient(k: int, committed: list[str]) -> Script:
    return running() + (Step(A.APPROVE_DEFICIENT, 1 + k, {"committed_items": committed}),)


def disapproved(k: int, reason: str) -> Script:
    return running() + (Step(A.DISAPPROVE, 1 + k, {"reason": reason}),)


def revoked(k: int, after: int, reason: str) -> Script:
    return approved(k) + (Step(A.REVOKE, 1 + k + after, {"reason": reason}),)


def retracted(k: int, reason: str) -> Script:
    return running() + (Step(A.RETRACT, 1 + k, {"reason": reason}),)


def withdrawn(reason: str) -> Script:
    return (Step(A.WITHDRAW, 1, {"reason": reason}),)


def not_accepted(reason: str) -> Script:
    return (Step(A.NOT_ACCEPT, 1, {"reason": reason}),)


def refused(reason: str) -> Script:
    return (Step(A.REFUSE, 1, {"reason": reason}),)


def correction(corrections: list[dict[str, str]]) -> Script:
    return (Step(A.REQUEST_CORRECTION, 1, {"corrections": corrections}),)


def corrected(corrections: list[dict[str, str]]) -> Script:
    return correction(corrections) + (Step(A.SUBMIT_CORRECTION, 3),)


def special(begin: int, kind: SpecialProcedureKind, reason: str, expected_days: int) -> Script:
    """In progress, then a special procedure (特别程序) from day ``begin`` that is still running: the clock stops."""
    data = {"kind": kind.value, "reason": reason, "expected_days": expected_days}
    return running() + (Step(A.BEGIN_SPECIAL_PROCEDURE, begin, data),)


def special_then_approved(begin: int, end: int, decide: int, kind: SpecialProcedureKind, reason: str,
                          result: str) -> Script:
    return special(begin, kind, reason, max(1, end - begin)) + (
        Step(A.END_SPECIAL_PROCEDURE, end, {"result": result}),
        Step(A.APPROVE, decide),
    )


# Time of day (Asia/Shanghai office hours) at which each kind of event happens.
TIMES = {
    A.RECEIVE: (9, 30), A.ACCEPT: (10, 0), A.NOT_ACCEPT: (10, 0), A.REFUSE: (10, 0), A.REQUEST_CORRECTION: (10, 0),
    A.WITHDRAW: (11, 0), A.RETRACT: (11, 0), A.START: (14, 30), A.SUBMIT_CORRECTION: (15, 0),
    A.BEGIN_SPECIAL_PROCEDURE: (10, 30), A.END_SPECIAL_PROCEDURE: (16, 0), A.APPROVE: (16, 30),
    A.APPROVE_DEFICIENT: (16, 30), A.DISAPPROVE: (16, 30), A.REVOKE: (10, 0),
}
WINDOW_ACTIONS = {A.ACCEPT, A.NOT_ACCEPT, A.REFUSE, A.REQUEST_CORRECTION}
APPLICANT_ACTIONS = {A.WITHDRAW, A.SUBMIT_CORRECTION, A.RETRACT}
APPROVALS = {A.APPROVE, A.APPROVE_DEFICIENT}
DECISIONS = APPROVALS | {A.DISAPPROVE}


@dataclass(frozen=True)
class Apply:
    """One application: ``stage`` submitted ``ago`` working days before today; ``default`` happens to each case
    unless ``cases`` says otherwise; ``only`` chooses some of the stage's items (default: all)."""

    stage: int
    ago: int
    default: Script = approved()
    cases: dict[str, Script] = field(default_factory=dict)
    only: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DemoProject:
    code: str  # 项目代码; its region part is the project's district
    name: str
    process_type: int
    address: str
    investment: str  # 总投资, 万元
    land_area: int  # 平方米
    land_use: str
    scale: str  # 建设规模及内容
    building_area: int = 0
    floors: int = 0
    org: str = "cjkf"
    buildings: tuple[tuple[str, int, int], ...] = ()  # (name, floor area, floors), coded at the construction permit
    history: tuple[Apply, ...] = ()


SP = SpecialProcedureKind

# ---------------------------------------------------------------------------------------------------------------------
# The 20 projects. Districts: 440402 香洲区 · 440403 斗门区 · 440404 金湾区.
# ---------------------------------------------------------------------------------------------------------------------
PROJECTS: list[DemoProject] = [
    # 1 · Government building in stage 4: joint acceptance running (YELLOW), 消防验收 GREEN, utilities' cases pushed
    #     by their own systems; stages 1–3 approved.
    DemoProject(
        "2506-440402-47-01-318604", "香洲区第十三中学扩建工程", 1, "珠海市香洲区梅华街道梅华中路以北、敬业路以东",
        "18650.00", 26800, "公共管理与公共服务用地", "新建教学综合楼、体育馆及地下停车库，新增学位1800个",
        31200, 6, buildings=(("教学综合楼", 21500, 6), ("体育馆", 6200, 3), ("地下停车库", 3500, 2)),
        history=(Apply(1, 300), Apply(2, 230), Apply(3, 150), Apply(4, 10, running(), {
            "NR-GHHS": approved(6), "CA-RFBA": approved(3), "MA-FLYS": approved(4), "GAS-RQBZ": approved(5),
        }, only=("NR-GHHS", "HC-XFYS", "CA-RFBA", "MA-FLYS", "HC-LHYS", "PG-GDBZ", "WS-GSBZ", "GAS-RQBZ"))),
    ),
    # 2 · Government building in stage 2 with a case in a SPECIAL PROCEDURE (专家评审 of the design scheme: the clock
    #     stops); in stage 1 its feasibility study went through a third-party assessment first.
    DemoProject(
        "2505-440403-47-01-205471", "斗门区人民医院新院区门诊综合楼", 1, "珠海市斗门区井岸镇港霞路以西、新青三路以南",
        "96500.00", 58300, "公共管理与公共服务用地", "新建门诊医技综合楼及配套设施，设置床位800张",
        142000, 14,
        history=(
            Apply(1, 240, cases={"DR-KXXYJ": special_then_approved(
                5, 20, 24, SP.THIRD_PARTY_ASSESSMENT, "投资规模较大，委托第三方咨询机构对可行性研究报告进行评估",
                "第三方评估报告认为项目建设必要、方案可行，建议核减投资1.2%")}),
            Apply(2, 20, cases={
                "DR-CBSJ": approved(12), "CA-RFSJ": approved(8), "EE-HPSP": approved(14),
                "NR-FASC": special(6, SP.EXPERT_REVIEW, "门诊医技楼涉及医疗工艺流程及超限高层结构，组织专家评审", 15),
            }, only=("DR-CBSJ", "NR-FASC", "CA-RFSJ", "EE-HPSP")),
        ),
    ),
    # 3 · Government building in stage 3: 消防设计审查 APPROVED_DEFICIENT (容缺通过, on a commitment); the
    #     construction permit is on its last day (YELLOW).
    DemoProject(
        "2506-440404-47-01-416032", "金湾区三灶镇文化体育中心", 1, "珠海市金湾区三灶镇金海岸大道以南、琴石路以东",
        "32800.00", 41500, "公共管理与公共服务用地", "新建文化馆、全民健身馆、室外运动场及配套用房",
        38600, 5,
        history=(Apply(1, 280), Apply(2, 200), Apply(3, 6, running(), {
            "HC-SGTSC": approved(3), "MA-FLSJ": approved(2),
            "HC-XFSJ": deficient(4, ["消防设施专项设计图纸（开工前补交）"]),
        })),
    ),
    # 4 · A new government project: stage 1 submitted yesterday, all cases RECEIVED, waiting at the window.
    DemoProject(
        "2610-440402-47-01-027318", "珠海市公共卫生应急物资储备库", 1, "珠海市香洲区南屏镇屏北二路以东",
        "12800.00", 18600, "物流仓储用地", "新建应急物资储备仓库及管理用房",
        history=(Apply(1, 1, received()),),
    ),
    # 5 · Government road in stage 3 and late: construction permit and 占道挖掘 overdue (RED), the road-works
    #     permit decided late (超期办结).
    DemoProject(
        "2505-440404-48-01-133957", "金湾区机场东路市政道路改造工程", 2, "珠海市金湾区三灶镇机场东路（金海岸大道至机场北路段）",
        "27300.00", 96000, "道路与交通设施用地", "道路改造全长4.6公里，含排水、照明、交通设施及绿化工程",
        history=(Apply(1, 320), Apply(2, 240), Apply(3, 16, running(), {
            "HC-SGTSC": approved(12), "TR-SLSG": approved(13),
        })),
    ),
    # 6 · Government pipeline in stage 2, everything GREEN; the soil-conservation case is ACCEPTED, not yet started.
    DemoProject(
        "2507-440403-48-01-275640", "斗门区白蕉镇污水管网完善工程", 2, "珠海市斗门区白蕉镇（白蕉、新沙、六乡片区）",
        "15400.00", 35000, "公用设施用地", "新建污水管网约38公里及提升泵站2座",
        history=(Apply(1, 160), Apply(2, 4, running(), {"DR-CBSJ": approved(2), "WA-SBFA": accepted()})),
    ),
    # 7 · DISAPPROVED: the feasibility study was turned down (办结不通过), revised and submitted again (GREEN).
    DemoProject(
        "2607-440402-48-01-381226", "香洲区前山河沿岸绿道提升工程", 2, "珠海市香洲区前山河沿岸（石角咀水闸至南屏大桥段）",
        "8600.00", 124000, "绿地与广场用地", "提升滨河绿道9.2公里，建设驿站3处及景观节点",
        history=(
            Apply(1, 14, cases={
                "DR-XMJYS": approved(5), "NR-YDYS": approved(6), "NR-YDGH": approved(9),
                "DR-KXXYJ": disapproved(9, "可行性研究报告投资估算依据不足：景观节点工程量与项目建议书批复规模不一致，"
                                           "估算投资超出批复投资10%以上，请修改后重新报批"),
            }),
            Apply(1, 3, running(), only=("DR-KXXYJ",)),
        ),
    ),
    # 8 · A finished housing project: all four stages approved, the 竣工验收备案 filed separately after the joint
    #     acceptance; 防雷验收 was decided late (RED, 超期办结).
    DemoProject(
        "2411-440402-47-03-092835", "城建·香湾花园住宅项目", 3, "珠海市香洲区前山街道港昌路以南、白石路以东",
        "58600.00", 36800, "居住用地", "新建住宅8栋及商业、幼儿园配套，总户数1260户",
        112000, 32, buildings=(("1栋", 28600, 32), ("2栋", 28600, 32), ("3栋", 24800, 28), ("幼儿园", 4200, 3)),
        history=(Apply(1, 420), Apply(2, 350), Apply(3, 280),
                 Apply(4, 60, cases={"MA-FLYS": approved(7)}, only=(
                     "NR-GHHS", "HC-XFYS", "CA-RFBA", "MA-FLYS", "HC-LHYS", "PG-GDBZ", "WS-GSBZ", "GAS-RQBZ")),
                 Apply(4, 40, only=("HC-JGBA",))),
    ),
    # 9 · In CORRECTION: the window asked, once and completely, for the missing construction-drawing materials.
    DemoProject(
        "2508-440404-47-03-164407", "城建·金湾航空新城商住项目二期", 3, "珠海市金湾区红旗镇藤山一路以北、金湖路以西",
        "42300.00", 29500, "居住用地", "新建住宅6栋及商业裙楼，总户数980户",
        86500, 27,
        history=(Apply(1, 200), Apply(2, 130), Apply(3, 5, correction([
            {"material": "施工图设计文件", "requirement": "缺少结构专业计算书，请补充并加盖设计单位出图章"},
            {"material": "施工合同及监理合同", "requirement": "监理合同未载明总监理工程师，请补充签字页"},
            {"material": "消防设计文件", "requirement": "消防设计说明与平面图的疏散宽度不一致，请修改后重新提交"},
        ]), only=("HC-SGTSC", "HC-XFSJ", "HC-SGXK", "MA-FLSJ"))),
    ),
    # 10 · CORRECTED: the corrections were handed in and wait for the window's second check; the EIA was accepted
    #      at once and approved.
    DemoProject(
        "2509-440403-47-03-318850", "斗门区井岸镇商业综合体", 3, "珠海市斗门区井岸镇尖峰大道以东、白藤湖路以北",
        "36800.00", 24600, "商业服务业用地", "新建购物中心、酒店及地下停车库",
        92000, 18,
        history=(Apply(1, 150), Apply(2, 7, corrected([
            {"material": "建设工程设计方案(含总平面图)", "requirement": "总平面图未标注建筑退让用地红线距离，请补充"},
            {"material": "授权委托书及经办人身份证明", "requirement": "授权委托书已过有效期，请重新出具"},
        ]), {"EE-HPSP": approved(4)}, only=("NR-FASC", "NR-GCGH", "CA-RFSJ", "EE-HPSP"))),
    ),
    # 11 · REVOKED: the construction permit was revoked (申请材料与中标通知书不符); the builder applied again and the
    #      new case is on its last day (YELLOW).
    DemoProject(
        "2503-440402-47-03-257112", "香洲区南屏科技园研发楼", 3, "珠海市香洲区南屏科技工业园屏西八路以北",
        "24500.00", 15800, "工业用地", "新建研发办公楼2栋及配套设施",
        46800, 18, buildings=(("研发楼A座", 25600, 18), ("研发楼B座", 21200, 16)),
        history=(
            Apply(1, 260), Apply(2, 190),
            Apply(3, 90, cases={"HC-SGXK": revoked(4, 45, "经核查，申请人提交的施工合同与中标通知书载明的施工单位不一致，"
                                                         "以不正当手段取得施工许可，依法予以撤销")},
                  only=("HC-SGTSC", "HC-XFSJ", "HC-SGXK", "WA-PSXK", "MA-FLSJ")),
            Apply(3, 6, running(), only=("HC-SGXK",)),
        ),
    ),
    # 12 · WITHDRAWN: the land cases were withdrawn before acceptance (wrong boundary coordinates), submitted again,
    #      and the land-use planning permit is now within its warning days (YELLOW).
    DemoProject(
        "2609-440404-47-03-086724", "金湾区红旗镇物流仓储中心", 3, "珠海市金湾区红旗镇双湖北路以西、虹晖四路以北",
        "16200.00", 52000, "物流仓储用地", "新建高标准仓库4栋及综合办公楼",
        history=(
            Apply(1, 30, withdrawn("用地红线图界址坐标有误，撤件修正后重新申报"), {"DR-XMBA": approved(1)}),
            Apply(1, 9, running(), {"NR-YDYS": approved(6)}, only=("NR-YDYS", "NR-YDGH")),
        ),
    ),
    # 13 · NOT_ACCEPTED: the soil-conservation plan is not needed for so small a site (不受理); planning permit YELLOW.
    DemoProject(
        "2603-440402-47-03-140385", "香洲区景山路社区邻里中心", 3, "珠海市香洲区吉大街道景山路以南、石花西路以东",
        "6800.00", 4200, "商业服务业用地", "新建社区邻里中心（含社区服务、菜市场、文化活动用房）",
        12600, 5,
        history=(Apply(1, 120), Apply(2, 10, running(), {
            "NR-FASC": approved(7), "CA-RFSJ": approved(5),
            "WA-SBFA": not_accepted("本项目征占地面积不足0.5公顷且挖填土石方总量不足1000立方米，依法无需编报水土保持方案，"
                                    "本申请不予受理"),
        })),
    ),
    # 14 · RETRACTED (second builder): the design scheme and the planning permit were withdrawn after acceptance to
    #      change the scheme, then submitted again and ACCEPTED.
    DemoProject(
        "2604-440404-47-03-372096", "金湾区航空产业园人才公寓", 3, "珠海市金湾区三灶镇航空产业园机场西路以东",
        "21800.00", 19800, "居住用地", "新建人才公寓4栋（1200套）及配套商业",
        68000, 24, org="jwxc",
        history=(
            Apply(1, 110),
            Apply(2, 12, running(), {
                "NR-FASC": retracted(4, "调整建筑设计方案（增设一栋人才公寓），主动撤回申请"),
                "NR-GCGH": retracted(4, "设计方案调整，一并撤回"),
                "CA-RFSJ": approved(6), "WA-SBFA": approved(8),
            }),
            Apply(2, 2, accepted(), only=("NR-FASC", "NR-GCGH")),
        ),
    ),
    # 15 · REFUSED (second builder): the applicant is not the land-use right holder (不予受理).
    DemoProject(
        "2608-440403-47-03-219563", "斗门区乾务镇康养社区", 3, "珠海市斗门区乾务镇乾务大道以北、湖心路以东",
        "28600.00", 46000, "居住用地", "新建康养公寓、护理中心及配套服务设施",
        org="jwxc",
        history=(Apply(1, 18, approved(1), {
            "NR-YDYS": refused("申请人非该宗地土地使用权人，且未提供土地权利人的授权文件，不具备申请主体资格，依法不予受理"),
        }, only=("DR-XMBA", "NR-YDYS")),),
    ),
    # 16 · Small social investment in stage 3: permit approved, drainage licence GREEN.
    DemoProject(
        "2606-440402-47-03-051827", "香洲区前山街道社区商业及办公楼", 4, "珠海市香洲区前山街道翠微西路以北",
        "3200.00", 2600, "商业服务业用地", "新建5层商业办公楼1栋",
        6800, 5, buildings=(("商业办公楼", 6800, 5),),
        history=(Apply(1, 70), Apply(2, 50), Apply(3, 7, running(), {"HC-SGXK": approved(3)})),
    ),
    # 17 · Small social investment in stage 4 (second builder): joint acceptance on its last day (YELLOW); power
    #      connection answered by the power company's own system; water connection (natural days) near its limit.
    DemoProject(
        "2510-440404-47-03-330498", "金湾区平沙镇民办幼儿园教学楼", 4, "珠海市金湾区平沙镇平沙三路以东、升平大道以南",
        "2400.00", 3800, "公共管理与公共服务用地", "新建12班幼儿园教学楼及室外活动场地",
        4600, 3, org="jwxc", buildings=(("教学楼", 4600, 3),),
        history=(Apply(1, 180), Apply(2, 150), Apply(3, 120),
                 Apply(4, 11, running(), {"PG-GDBZ": approved(8)}, only=("HC-LHYS", "PG-GDBZ", "WS-GSBZ"))),
    ),
    # 18 · Small social investment: planning permit APPROVED_DEFICIENT on a commitment; stage 3 just ACCEPTED.
    DemoProject(
        "2605-440403-47-03-287311", "斗门区白藤街道社区商业中心", 4, "珠海市斗门区白藤街道白藤六路以西",
        "2900.00", 3100, "商业服务业用地", "新建4层社区商业中心1栋",
        5200, 4,
        history=(Apply(1, 60), Apply(2, 35, deficient(6, ["设计方案总平面图盖章原件（5个工作日内补交）"])),
                 Apply(3, 2, accepted())),
    ),
    # 19 · Land sold with its scheme (带方案出让) in stage 3: the planning permit went through 批前公示 (a finished
    #      special procedure); the construction permit is YELLOW.
    DemoProject(
        "2507-440402-47-03-401562", "香洲区唐家湾科创总部基地", 5, "珠海市香洲区唐家湾镇港湾大道以西、金峰路以北",
        "45200.00", 32400, "商业服务业用地", "新建科创总部办公楼3栋及配套商业、地下停车库",
        118000, 22,
        history=(Apply(1, 200), Apply(2, 150, cases={"NR-GCGH": special_then_approved(
                     3, 10, 12, SP.PUBLICITY, "建设工程规划许可批前公示", "公示期满，未收到利害关系人异议")}),
                 Apply(3, 5, running(), {"HC-SGTSC": approved(3), "MA-FLSJ": approved(2)})),
    ),
    # 20 · Land sold with its scheme, stage 2: the planning permit is overdue (RED).
    DemoProject(
        "2604-440404-47-03-118249", "金湾区西湖片区住宅地块（带方案出让）", 5, "珠海市金湾区红旗镇西湖城区湖滨路以南",
        "33500.00", 27600, "居住用地", "新建住宅7栋及社区配套，总户数1050户",
        82000, 26,
        history=(Apply(1, 60), Apply(2, 16, running(), {"CA-RFSJ": approved(9)})),
    ),
]


def _minimal_pdf(text: str) -> bytes:
    """A tiny but valid one-page PDF (correct cross-reference table)."""
    stream = f"BT /F1 14 Tf 72 770 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


DEMO_PDF = _minimal_pdf("Jianshen demo material")


# ---------------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------------
# Sealed PDFs made by ``load_demo`` itself (~0.45 s each): the demo has ~90 certificates, and sealing them all would
# add ~40 s to ``make demo``. The rest are sealed by the server's sweep in the background right after it starts (or
# on their first download): the same path that recovers from a crash before a PDF.
DEMO_PDFS_AT_LOAD = 16


async def load_demo(
    settings: Settings, *, now: dt.datetime | None = None, pdf_limit: int | None = DEMO_PDFS_AT_LOAD
) -> dict[str, str]:
    """Load the demo (once) and return a fresh access token per role. Tortoise must be initialised.

    The certificates of the approved demo cases are issued by the approvals themselves; their sealed PDFs are made
    here, after the commit (``pdf_limit``: at most that many, the rest left to the app's sweep; ``None``: all). A
    second load makes only what is still missing, up to the limit again.
    """
    await seed_bundled_years()
    if not await Organization.exists(uscc=MARKER_USCC):
        now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(SHANGHAI)
        async with in_transaction():  # all or nothing, so the marker means "fully loaded"
            calendar = await get_calendar(max_age=0)
            await _Builder(settings, now, calendar).build()
            await load_feedback_demo(settings, now, calendar)  # complaints and ratings (issue #6)
    await _seal_certificates(settings, pdf_limit)
    users = {u.username: u for u in await User.filter(username__in=list(TOKEN_USERS.values()))}
    tokens = {}
    for role, name in TOKEN_USERS.items():
        # One long-lived demo session per user, reused by every load (loading stays idempotent).
        session = await LoginSession.filter(user=users[name], kind="DEMO", revoked_at__isnull=True).first()
        if session is None:
            session = await LoginSession.create(
                id=uuid.uuid4(), user=users[name], kind="DEMO", created_at=dt.datetime.now(dt.timezone.utc)
            )
        tokens[role] = issue_access_token(
            settings, user_id=users[name].id, role=role, session_id=str(session.id), ttl=settings.demo_token_ttl
        )
    return tokens


# What each listed action needs besides the case: an approval its 批复文件 (a refusal a reason instead), a withdrawal
# its reason, a correction the ids of the files uploaded with POST /uploads.
TRY_EXTRA = {
    "decideCase": ', decision: APPROVED, document: {{approvalDate: "{today}", documentNumber: "珠建审〔2026〕1号", '
                  'documentTitle: "同意批复", validUntil: "9999-01-01"}}',
    "withdrawCase": ', reason: "申请材料需调整，撤回申请"',
    "submitCorrection": ', uploadIds: ["<id from POST /uploads>"]',
}


@dataclass(frozen=True)
class DemoAccount:
    role: Role
    username: str
    name: str
    where: str  # organisation, department or region
    can_do: str
    token: bool  # its token is in var/demo-tokens.json
    try_cases: tuple[tuple[str, str, str, str], ...] = ()  # (action, case id, project code, item code)


async def demo_accounts() -> list[DemoAccount]:
    """Every demo account with where it belongs and, for the token holders, cases its token can act on now (the
    next step of accept → start → decide). Read from the database, so the ids are those of this load."""
    from api.domain.lifecycle import CaseState
    from api.models import Case
    from api.schema.base import to_global_id

    users = await User.filter(username__in=[u[0] for u in USERS]).prefetch_related("organization", "department")
    by_name = {user.username: user for user in users}
    holders = set(TOKEN_USERS.values())

    async def cases(action: str, states: list[CaseState], user: User | None = None, n: int = 2, order: str = "id"):
        query = Case.filter(state__in=states)
        if user is not None and user.role is Role.APPROVER:
            query = query.filter(department_id=user.department_id)
        elif user is not None and user.role is Role.APPLICANT:
            query = query.filter(project__organization_id=user.organization_id)
        found = await query.order_by(order).limit(n).prefetch_related("project", "item")
        return [(action, to_global_id("Case", case.pk), case.project.code, case.item.code) for case in found]

    accounts = []
    for username, name, role, _where in USERS:
        user = by_name[username]
        if user.organization is not None:
            where = user.organization.name
        elif user.department is not None:
            where = f"{user.department.name} ({user.department.code})"
        elif user.region_code:
            where = f"region {user.region_code}"
        else:
            where = "—"
        tries: list[tuple[str, str, str, str]] = []
        if username in holders:
            if role is Role.WINDOW_CLERK:
                tries = await cases("acceptCase", [CaseState.RECEIVED, CaseState.CORRECTED])
            elif role is Role.APPROVER:
                tries = await cases("startCase", [CaseState.ACCEPTED], user, 1)
                tries += await cases("decideCase", [CaseState.IN_PROGRESS], user)
            elif role is Role.APPLICANT:
                tries = await cases("submitCorrection", [CaseState.CORRECTION], user, 1)
                # The last waiting case: the window's first ones are listed for acceptCase.
                tries += await cases("withdrawCase", [CaseState.RECEIVED], user, 1, "-id")
        accounts.append(DemoAccount(role, username, name, where, CAN_DO[role], username in holders, tuple(tries)))
    return accounts


def demo_accounts_text(accounts: list[DemoAccount]) -> str:
    """What ``make demo`` prints: who to sign in as and what to try."""
    lines = [
        f"Demo accounts (staff: staffLogin with the password {DEMO_STAFF_PASSWORD}; WeChat users: loginWithWechat with "
        "the code dev:<username>; * = its token is in the tokens file):",
    ]
    for account in accounts:
        mark = "*" if account.token else " "
        lines.append(f" {mark} {account.role.value:12} {account.username:21} {account.name}  {account.where}")
        if account.token:
            lines.append(f"      can: {account.can_do}")
        for action, case_id, project, item in account.try_cases:
            extra = TRY_EXTRA.get(action, "").format(today=dt.datetime.now(SHANGHAI).date())
            lines.append(f"      try: {action}(input: {{caseId: \"{case_id}\"{extra}}})   project {project}, item {item}")
    lines.append("A case goes acceptCase (window) → startCase (approver) → decideCase (approver).")
    return "\n".join(lines)


async def _seal_certificates(settings: Settings, limit: int | None) -> int:
    from api.services.certificates import produce_pending

    made = 0
    while limit is None or made < limit:
        batch = await produce_pending(
            settings, now=dt.datetime.now(dt.timezone.utc), limit=20 if limit is None else min(20, limit - made)
        )
        if not batch:
            break
        made += batch
    return made


class _Builder:
    def __init__(self, settings: Settings, now: dt.datetime, calendar: WorkCalendar) -> None:
        self.settings = settings
        self.catalog: Catalog = read_catalog()
        self.now = now
        self.calendar = calendar
        self.departments: dict[str, Department] = {}
        self.system_departments: set[str] = set()
        self.items: dict[str, ApprovalItem] = {}
        self.item_codes: dict[int, str] = {}
        self.orgs: dict[str, Organization] = {}
        self.users: dict[str, User] = {}
        self.applicants: dict[str, Viewer] = {}  # organisation key → its applicant
        self.approvers: dict[str, Viewer] = {}  # department key → its approver
        self.clerk: Viewer | None = None
        self.on_file: dict[int, set[str]] = defaultdict(set)  # project id → material codes already uploaded
        self.numbers: Counter[tuple[str, int]] = Counter()  # (department, year) → last document number
        self._days: dict[int, dt.date] = {}

    async def build(self) -> None:
        await self._catalogue()
        await self._people()
        for spec in PROJECTS:
            await self._project(spec)

    # -- reference data -------------------------------------------------------------------------------------------
    async def _catalogue(self) -> None:
        await load_catalog(self.catalog, now=self.now)
        for code, spec in self.catalog.departments.items():
            department = await Department.get(code=code)
            if department.ingest_secret is None:
                department.ingest_secret = f"{DEV_INGEST_SECRET_PREFIX}-{code.lower()}"
                await department.save(update_fields=["ingest_secret"])
            self.departments[_dept_key(code)] = department
            if spec["pushes_events"]:
                self.system_departments.add(_dept_key(code))
        for item in await ApprovalItem.filter(code__in=list(self.catalog.items)):
            self.items[item.code] = item
            self.item_codes[item.id] = item.code
        await self._seals()

    async def _seals(self) -> None:
        """电子印章 for every department whose items yield certificates (DOMAIN.md §7)."""
        from api.services.seals import DEFAULT_SEAL_TYPE, make_seal

        issuing = {item["department"] for item in self.catalog.items.values() if item.get("certificate_type")}
        for dept in sorted(_dept_key(code) for code in issuing):
            department = self.departments[dept]
            await make_seal(
                self.settings, department, name=f"{department.name}{DEFAULT_SEAL_TYPE}", seal_type=DEFAULT_SEAL_TYPE,
                valid_years=5, now=self.now,
            )

    async def _people(self) -> None:
        for key, name, body, region in ORGANIZATIONS:
            self.orgs[key] = await Organization.create(
                name=name, uscc=make_uscc(f"91440400{body}"), region_code=region
            )
        # One hash for all (argon2 is slow on purpose), made directly: the password policy refuses this password.
        staff_hash = HASHER.hash(DEMO_STAFF_PASSWORD)
        for username, display_name, role, where in USERS:
            phone = DEMO_PHONES.get(username)
            user = await User.create(
                username=username, display_name=display_name, role=role,
                organization=self.orgs.get(where.get("org", "")),
                department=self.departments.get(where.get("dept", "")),
                region_code=where.get("region"),
                # WeChat users log in with the development code ``dev:<username>`` (console mode, miniapp/).
                openid=None if role.is_staff else f"dev_{username}",
                password_hash=staff_hash if role.is_staff else None,
                phone=phone, phone_verified_at=self.now if phone else None,
            )
            if role is Role.APPLICANT:  # 经办人授权: the builder authorises its applicant's verified phone
                await AgentAuthorization.create(
                    organization=user.organization, phone=phone, agent_name=display_name, is_admin=True,
                    granted_at=self.now,
                )
            self.users[username] = user
            viewer = Viewer.of(user)
            if role is Role.APPLICANT:
                self.applicants.setdefault(where["org"], viewer)
            elif role is Role.APPROVER:
                self.approvers.setdefault(where["dept"], viewer)
            elif role is Role.WINDOW_CLERK:
                self.clerk = viewer

    # -- time -----------------------------------------------------------------------------------------------------
    def day(self, n: int) -> dt.date:
        """The working day such that exactly ``n`` (≥ 1) working days lie after it up to and including today."""
        if n < 1:
            raise ValueError("demo events must lie at least one working day in the past")
        if n not in self._days:
            today = self.now.date()
            day, count = today, 0
            while not (count == n and self.calendar.is_working_day(day)):
                if self.calendar.is_working_day(day):
                    count += 1
                day -= dt.timedelta(days=1)
            self._days[n] = day
        return self._days[n]

    def moment(self, ago: int, action: Action) -> dt.datetime:
        hour, minute = TIMES[action]
        return dt.datetime.combine(self.day(ago), dt.time(hour, minute), tzinfo=SHANGHAI)

    # -- projects -------------------------------------------------------------------------------------------------
    async def _project(self, spec: DemoProject) -> None:
        project = await Project.create(
            code=spec.code, name=spec.name, organization=self.orgs[spec.org], process_type=spec.process_type,
            region_code=spec.code.split("-")[1], address=spec.address, investment=Decimal(spec.investment),
        )
        for number, (name, area, floors) in enumerate(spec.buildings, start=1):
            await Building.create(
                project=project, building_code=f"{spec.code}-{number:03d}", name=name,
                floor_area=Decimal(area), floors=floors,
            )
        for application in spec.history:
            await self._apply(spec, project, application)

    def _form(self, spec: DemoProject, stage: int, submitted: dt.date) -> dict[str, Any]:
        if stage == 1:
            return {"landArea": spec.land_area, "landUse": spec.land_use, "constructionScale": spec.scale}
        if stage == 2:
            return {"buildingArea": spec.building_area, "floorsAbove": spec.floors, "designUnit": DESIGN_UNIT}
        if stage == 3:
            return {
                "contractPrice": int(Decimal(spec.investment) * Decimal("0.55")),
                "constructionUnit": CONSTRUCTION_UNIT, "supervisionUnit": SUPERVISION_UNIT,
                "projectManager": PROJECT_MANAGER, "contractDays": 540 if spec.building_area > 20000 else 360,
            }
        applicant = self.applicants[spec.org]
        return {"completionDate": (submitted - dt.timedelta(days=14)).isoformat(),
                "acceptanceContact": applicant.display_name}

    async def _upload(self, viewer: Viewer, name: str) -> str:
        upload = await store_upload(
            viewer, filename=f"{name}.pdf", data=DEMO_PDF,
            upload_dir=self.settings.upload_dir, max_bytes=self.settings.upload_max_bytes,
        )
        return str(upload.id)

    async def _apply(self, spec: DemoProject, project: Project, app: Apply) -> None:
        applicant = self.applicants[spec.org]
        stage_codes = self.catalog.templates[spec.process_type]["stages"][app.stage]["items"]
        chosen = list(app.only or stage_codes)
        unknown = set(app.cases) - set(chosen)
        assert not unknown, f"{spec.name}: scripts for items not applied for: {unknown}"
        materials = []
        for material in self.catalog.stages[app.stage]["materials"]:
            if material["code"] not in self.on_file[project.id]:  # else reused from an earlier application
                materials.append(MaterialInput(material["code"], [await self._upload(applicant, material["name"])]))
                self.on_file[project.id].add(material["code"])
        submitted = await submit_application(
            applicant, project_code=project.code, stage=app.stage, item_codes=chosen,
            form=self._form(spec, app.stage, self.day(app.ago)), materials=materials,
            now=self.moment(app.ago, Action.RECEIVE),
        )
        decided: dict[str, int] = {}  # item code → day of its decision in this application
        for case in submitted.cases:  # in template order: predecessors first
            code = self.item_codes[case.item_id]
            await self._run(spec, project, case, code, app.cases.get(code, app.default), app.ago, decided)

    async def _run(self, spec, project, case, code: str, script: Script, ago: int, decided: dict[str, int]) -> None:
        limit = self.catalog.items[code]["limit"]["days"]
        dept = _dept_key(self.catalog.items[code]["department"])
        last = self.moment(ago, Action.RECEIVE)
        for step in script:
            day = step.day
            if step.action in DECISIONS:
                after = max((decided[p] + 1 for p in case.predecessor_codes if p in decided), default=0)
                if day is None:  # half the limit (a short 备案 the same day), after the predecessors
                    day = max(1 + (limit // 2 if limit > 3 else 0), after)
                assert day >= after, f"{spec.name} {code}: decided before its predecessors"
                decided[code] = day
            assert day is not None and day <= ago - 1, f"{spec.name} {code}: {step.action.value} not in the past"
            at = self.moment(ago - day, step.action)
            assert at > last, f"{spec.name} {code}: events out of order"
            last = at
            data = dict(step.data)
            if step.action in APPROVALS:
                data["document"] = self._document(code, project, at)
            await self._act(spec, case, dept, step.action, data, at)

    def _document(self, code: str, project: Project, at: dt.datetime) -> dict[str, str]:
        item = self.catalog.items[code]
        dept, number, title = _dept_key(item["department"]), item["document_number"], item["document_title"]
        years = item.get("valid_years")  # None: 长期有效
        day = at.date()
        self.numbers[(dept, day.year)] += 1
        n = 100 + self.numbers[(dept, day.year)]
        valid_until = dt.date(9999, 1, 1) if years is None else day.replace(year=day.year + years, day=min(day.day, 28))
        return {
            "approval_date": day.isoformat(),
            "document_number": number.format(y=day.year, n=n),
            "document_title": title.format(p=project.name),
            "valid_until": valid_until.isoformat(),
        }

    async def _act(self, spec, case, dept: str, action: Action, data: dict[str, Any], at: dt.datetime) -> None:
        attachments: list[Any] = []
        if action in WINDOW_ACTIONS:
            actor = Actor.person(self.clerk)
        elif action in APPLICANT_ACTIONS:
            actor = Actor.person(self.applicants[spec.org])
            if action is Action.SUBMIT_CORRECTION:
                attachments = [await self._upload(actor.viewer, "补正材料")]
        elif dept in self.system_departments:
            # The utility's own system pushes the event, with its own id and time [规程 7.12].
            await apply_case_action(
                Actor.department_system(self.departments[dept].id), action, case_id=case.id, data=data,
                occurred_at=at, request_id=f"{case.code}-{action.value}", now=at,
            )
            return
        else:
            actor = Actor.person(self.approvers[dept])
            if action is Action.END_SPECIAL_PROCEDURE:
                attachments = [await self._upload(actor.viewer, "特别程序结果材料")]
        await apply_case_action(actor, action, case_id=case.id, data=data, attachments=attachments, now=at)
