"""Notices (通知) and their delivery: the outbox of DESIGN.md §5.

A ``Notice`` is written in the same transaction as the change that causes it (an accepted case, a decision, an issued
certificate, …), so a notice exists if and only if the change happened. It is at once the in-app notice the person
reads and the outbox row of its external delivery: its ``Delivery`` row is the dispatcher's work item (WeChat
subscribe message, else SMS), and every attempt is kept as a ``DeliveryAttempt`` for staff to see.
"""

from enum import Enum

from tortoise import fields
from tortoise.models import Model


class DeliveryStatus(str, Enum):
    PENDING = "PENDING"  # due at next_attempt_at
    SENDING = "SENDING"  # a dispatcher holds the lease and may be talking to a provider right now
    DELIVERED = "DELIVERED"  # a provider accepted it (provider_message_id)
    DEAD = "DEAD"  # permanent failure, or out of attempts: visible to staff, who may re-send
    IN_APP_ONLY = "IN_APP_ONLY"  # no external channel reaches this person (no consent, no phone): in-app only


class Notice(Model):
    id = fields.BigIntField(primary_key=True)
    recipient = fields.ForeignKeyField("models.User", related_name="notices", on_delete=fields.RESTRICT)
    kind = fields.CharField(max_length=40)  # notifications.kinds.NoticeKind
    # What caused it, e.g. "case_event:42": with the recipient and kind it makes writing a notice idempotent.
    source_key = fields.CharField(max_length=120)
    variables = fields.JSONField(default=dict)  # the kind's variables (notifications.kinds.NOTICE_VARIABLES)
    title = fields.CharField(max_length=100)
    body = fields.TextField()
    created_at = fields.DatetimeField()
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notice"
        unique_together = (("recipient", "kind", "source_key"),)
        indexes = (("recipient_id", "read_at"),)


class Delivery(Model):
    """The external delivery of one notice: one row per notice, whose channel may change on fallback."""

    id = fields.BigIntField(primary_key=True)
    notice = fields.OneToOneField("models.Notice", related_name="delivery", on_delete=fields.RESTRICT)
    status = fields.CharEnumField(DeliveryStatus, max_length=16, default=DeliveryStatus.PENDING)
    channel = fields.CharField(max_length=16, null=True)  # the channel of the current / last attempt
    channels_done = fields.JSONField(default=list)  # channels given up on (fell back from), in order
    wechat_consent_taken = fields.BooleanField(default=False)  # one consent is used by one message, once
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    lease_owner = fields.CharField(max_length=64, null=True)
    provider_message_id = fields.CharField(max_length=128, null=True)
    last_error_code = fields.CharField(max_length=64, null=True)
    last_error = fields.TextField(null=True)
    updated_at = fields.DatetimeField()
    # The request that caused the notice: the dispatcher's log lines name it, in whatever process (api/logs.py).
    request_id = fields.CharField(max_length=64, null=True)

    class Meta:
        table = "notice_delivery"
        indexes = (("status", "next_attempt_at"),)


class DeliveryAttempt(Model):
    """One try on one channel, never changed after it ends: what staff read to see why a notice did not arrive."""

    id = fields.BigIntField(primary_key=True)
    delivery = fields.ForeignKeyField("models.Delivery", related_name="attempt_log", on_delete=fields.RESTRICT)
    number = fields.IntField()
    channel = fields.CharField(max_length=16)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    outcome = fields.CharField(max_length=24, null=True)  # notifications.channels.base.OutcomeKind, or LOST (crashed)
    error_code = fields.CharField(max_length=64, null=True)
    reason = fields.TextField(null=True)
    provider_message_id = fields.CharField(max_length=128, null=True)

    class Meta:
        table = "notice_delivery_attempt"
        unique_together = (("delivery", "number"),)
