"""Demo complaints and ratings (issue #6), added by ``api.demo.load_demo`` after the projects, through the same services
the API uses — so every row is one the rules allow, with its events and notices.

The citizen has four complaints (new; assigned and overdue; replied with a thread; closed, satisfied and rated); the
demo applicant has rated decided cases, one of them a 差评 whose follow-up is under way and late.
"""

from __future__ import annotations

import datetime as dt

from api.domain.calendar import WorkCalendar
from api.domain.feedback import ComplaintAction, ComplaintCategory, ComplaintKind, FollowUpStep
from api.domain.timing import CaseState
from api.models import Case, CaseEvent, User
from api.services import complaints, ratings
from api.services.access import Viewer
from api.services.ratings import DECISION_ACTIONS
from api.settings import Settings


async def _pass(_text: str, _openid: str | None) -> str:
    return "pass"  # demo texts are ours: no WeChat content check while loading


class _Broker:
    async def publish(self, channel: str, message: dict) -> None:  # nobody is subscribed while the demo loads
        return None


async def load_feedback_demo(settings: Settings, now: dt.datetime, calendar: WorkCalendar) -> None:
    users = {u.username: u for u in await User.filter(username__in=["demo.citizen", "demo.clerk", "demo.applicant",
                                                                      "demo.approver", "demo.approver.wa"])}
    citizen, clerk = Viewer.of(users["demo.citizen"]), Viewer.of(users["demo.clerk"])
    housing = Viewer.of(users["demo.approver"])
    water = Viewer.of(users["demo.approver.wa"])
    applicant = Viewer.of(users["demo.applicant"])

    async def file(days_ago: int, kind, category, text, department=None) -> int:
        filed = await complaints.file_complaint(
            citizen, kind=kind, category=category, text=text, image_ids=[], project_code=None,
            department_id=department, contact_phone="13800138003", idempotency_key=f"demo-{days_ago}-{category.value}",
            settings=settings, check_text=_pass, now=now - dt.timedelta(days=days_ago),
        )
        return filed.complaint.id

    async def act(viewer, cid, action, days_ago, **kwargs) -> None:
        await complaints.act(viewer, cid, action, settings=settings, now=now - dt.timedelta(days=days_ago), **kwargs)

    async def say(viewer, cid, text, days_ago) -> None:
        await complaints.post_message(viewer, cid, text=text, image_ids=[], request_id=None, settings=settings,
                                      broker=_Broker(), now=now - dt.timedelta(days=days_ago))

    await file(0, ComplaintKind.SUGGESTION, ComplaintCategory.POLICY_SUGGESTION,
               "建议在小程序中公开各审批事项的平均实际办理时长，方便企业安排工期。")
    late = await file(20, ComplaintKind.COMPLAINT, ComplaintCategory.OVERDUE,
                      "排水许可已受理二十多天仍无进展，远超承诺时限，电话也无人接听。")
    await act(clerk, late, ComplaintAction.ASSIGN, 19, department_id=water.department_id)

    replied = await file(6, ComplaintKind.COMPLAINT, ComplaintCategory.OFF_LIST,
                         "施工许可窗口要求提供清单外的施工合同备案证明，请核实是否合规。")
    await act(clerk, replied, ComplaintAction.ASSIGN, 6, department_id=housing.department_id)
    await say(citizen, replied, "窗口工作人员说没有备案证明就不能受理。", 5)
    await act(housing, replied, ComplaintAction.REPLY, 3,
              text="经核实，施工合同备案证明不属于申请材料清单，已要求窗口按清单受理，并对相关人员进行了提醒。")
    await say(citizen, replied, "好的，我明天再去窗口办理。", 2)

    closed = await file(12, ComplaintKind.COMPLAINT, ComplaintCategory.SERVICE_ATTITUDE,
                        "窗口咨询时工作人员态度冷淡，问题没有解释清楚。")
    await act(clerk, closed, ComplaintAction.ASSIGN, 12, department_id=housing.department_id)
    await act(housing, closed, ComplaintAction.REPLY, 10, text="已约谈当事工作人员，并安排专人为您解答，电话将于今日联系您。")
    await act(citizen, closed, ComplaintAction.CLOSE, 9, satisfied=True)
    await ratings.rate_service(citizen, case_id=None, complaint_id=closed, level=4, reasons=[], comment="处理及时",
                               settings=settings, calendar=calendar, now=now - dt.timedelta(days=9))

    # The applicant rates its recently decided cases (within the 30-day window); the worst decision gets a 差评.
    decided = await Case.filter(
        application__applicant_id=applicant.user_id,
        state__in=[CaseState.APPROVED, CaseState.APPROVED_DEFICIENT, CaseState.DISAPPROVED],
    ).order_by("id")
    rated = 0
    for case in decided:
        event = await CaseEvent.filter(case_id=case.id, action__in=DECISION_ACTIONS).order_by("-seq").first()
        if event is None or now - event.occurred_at > dt.timedelta(days=settings.rating_window_days - 3):
            continue
        at = event.occurred_at + dt.timedelta(days=1)
        bad = case.state is CaseState.DISAPPROVED or rated == 2
        rating, _ = await ratings.rate_service(
            applicant, case_id=case.id, complaint_id=None, level=2 if bad else 5 - rated % 2,
            reasons=["SLOW", "UNCLEAR_GUIDE"] if bad else [], comment="审查意见不够明确，来回补充了两次" if bad else "",
            settings=settings, calendar=calendar, now=min(at, now),
        )
        if bad:
            department = Viewer.of(await User.filter(department_id=case.department_id, role="APPROVER").first()) \
                if await User.exists(department_id=case.department_id, role="APPROVER") else None
            if department is not None:
                await ratings.record_follow_up(department, rating.id, FollowUpStep.CONTACT,
                                               "已电话联系申请人，了解到审查意见表述不清的问题。", now=min(at, now))
            break
        rated += 1
