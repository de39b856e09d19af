"""Subscribe-message consents (订阅消息, DOMAIN.md §10–11): what ``wx.requestSubscribeMessage`` returned, per template.

Each ``accept`` of a one-time template allows exactly one message; the notices take one per message with
``take_consent`` (an atomic decrement, so two workers can never spend the same consent).
"""

from __future__ import annotations

from enum import Enum

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.domain.errors import DomainError
from api.models import SubscribeConsent
from api.services.access import Viewer, require_viewer

MAX_RESULTS = 20  # wx.requestSubscribeMessage asks for at most a handful of templates at once
MAX_TEMPLATE_ID = 128


class SubscribeResult(str, Enum):
    """The values ``wx.requestSubscribeMessage`` reports per template, as the phone receives them."""

    accept = "accept"
    reject = "reject"
    ban = "ban"  # the template was banned by WeChat
    filter = "filter"  # the template was filtered (its title is duplicated in the mini-program)


async def record_consents(viewer: Viewer | None, results: list[tuple[str, SubscribeResult]]) -> list[SubscribeConsent]:
    viewer = require_viewer(viewer)
    if len(results) > MAX_RESULTS:
        raise DomainError("INVALID_INPUT", f"一次最多记录 {MAX_RESULTS} 个模板", "results")
    for n, (template_id, _result) in enumerate(results):
        if not template_id or len(template_id) > MAX_TEMPLATE_ID:
            raise DomainError("INVALID_INPUT", "模板编号不正确", f"results.{n}.templateId")
    async with in_transaction():
        for template_id, result in results:
            if result is SubscribeResult.accept:
                row, _ = await SubscribeConsent.get_or_create(user_id=viewer.user_id, template_id=template_id)
                await SubscribeConsent.filter(id=row.id).update(remaining=F("remaining") + 1)
    return await consents_of(viewer.user_id)


async def consents_of(user_id: int) -> list[SubscribeConsent]:
    return await SubscribeConsent.filter(user_id=user_id, remaining__gt=0).order_by("template_id")


async def take_consent(user_id: int, template_id: str) -> bool:
    """Spend one consent of ``user_id`` for ``template_id``; False when none is left (then do not send)."""
    return bool(
        await SubscribeConsent.filter(user_id=user_id, template_id=template_id, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
    )
