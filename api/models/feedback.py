"""Suggestions and complaints (建议和投诉) with their chat-style threads, and service ratings (好差评) with the follow-up of
bad ones (DOMAIN.md §8–9). A complaint's state is a projection of its events, written in the same transaction."""

from tortoise import fields
from tortoise.models import Model

from api.domain.feedback import ComplaintAction, ComplaintCategory, ComplaintKind, ComplaintState


class Complaint(Model):
    id = fields.IntField(primary_key=True)
    filer = fields.ForeignKeyField("models.User", related_name="complaints", on_delete=fields.RESTRICT)
    kind = fields.CharEnumField(ComplaintKind, max_length=16)
    category = fields.CharEnumField(ComplaintCategory, max_length=32)
    text = fields.TextField()
    images = fields.JSONField(default=list)  # [{"uploadId", "name"}], at most 9
    project_code = fields.CharField(max_length=24, null=True)
    department = fields.ForeignKeyField(  # the department it is assigned to (or that the filer named)
        "models.Department", related_name="complaints", null=True, on_delete=fields.RESTRICT
    )
    contact_phone = fields.CharField(max_length=20, null=True)
    flagged_for_review = fields.BooleanField(default=False)  # msgSecCheck said "review": a person looks at it
    state = fields.CharEnumField(ComplaintState, max_length=16)
    round_started_at = fields.DatetimeField()  # filing, or the latest reopening: the reply clock runs from here
    replied_at = fields.DatetimeField(null=True)  # the reply of the current round
    closed_at = fields.DatetimeField(null=True)
    satisfied = fields.BooleanField(null=True)  # the filer's word when closing
    idempotency_key = fields.CharField(max_length=120, unique=True, null=True)
    last_seq = fields.IntField(default=0)
    created_at = fields.DatetimeField()

    class Meta:
        table = "complaint"
        indexes = (("department_id", "state"), ("filer_id", "created_at"))


class ComplaintEvent(Model):
    """One step of the flow, append-only: who moved it, when, and to whom it was assigned."""

    id = fields.BigIntField(primary_key=True)
    complaint = fields.ForeignKeyField("models.Complaint", related_name="events", on_delete=fields.RESTRICT)
    seq = fields.IntField()
    action = fields.CharEnumField(ComplaintAction, max_length=16)
    state_after = fields.CharEnumField(ComplaintState, max_length=16)
    actor = fields.ForeignKeyField("models.User", related_name="complaint_events", null=True, on_delete=fields.RESTRICT)
    department = fields.ForeignKeyField(
        "models.Department", related_name="complaint_events", null=True, on_delete=fields.RESTRICT
    )
    note = fields.TextField(null=True)
    dedupe_key = fields.CharField(max_length=200, unique=True, null=True)
    occurred_at = fields.DatetimeField()

    class Meta:
        table = "complaint_event"
        unique_together = (("complaint", "seq"),)


class ComplaintMessage(Model):
    """One message of the thread between the filer and the handling department."""

    id = fields.BigIntField(primary_key=True)
    complaint = fields.ForeignKeyField("models.Complaint", related_name="messages", on_delete=fields.RESTRICT)
    author = fields.ForeignKeyField("models.User", related_name="complaint_messages", on_delete=fields.RESTRICT)
    from_filer = fields.BooleanField()
    text = fields.TextField()
    images = fields.JSONField(default=list)
    dedupe_key = fields.CharField(max_length=200, unique=True, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "complaint_message"
        indexes = (("complaint_id", "id"),)


class Rating(Model):
    """好评/差评 of one matter (a case or a complaint) by the person served: one per matter and rater."""

    id = fields.IntField(primary_key=True)
    rater = fields.ForeignKeyField("models.User", related_name="ratings", on_delete=fields.RESTRICT)
    case = fields.ForeignKeyField("models.Case", related_name="ratings", null=True, on_delete=fields.RESTRICT)
    complaint = fields.ForeignKeyField("models.Complaint", related_name="ratings", null=True, on_delete=fields.RESTRICT)
    matter_key = fields.CharField(max_length=40)  # "case:12" / "complaint:3": with the rater, unique = 一事一评
    department = fields.ForeignKeyField("models.Department", related_name="ratings", on_delete=fields.RESTRICT)
    item_code = fields.CharField(max_length=64, null=True)  # for statistics per item
    level = fields.IntField()
    reasons = fields.JSONField(default=list)
    comment = fields.TextField(default="")
    created_at = fields.DatetimeField()
    # The follow-up of a 差评 [国办发〔2019〕51号]: contact, rectification, result reported back.
    contact_due = fields.DateField(null=True)
    contacted_at = fields.DatetimeField(null=True)
    contact_note = fields.TextField(null=True)
    rectify_due = fields.DateField(null=True)
    rectified_at = fields.DatetimeField(null=True)
    rectification = fields.TextField(null=True)
    result = fields.TextField(null=True)
    result_reported_at = fields.DatetimeField(null=True)
    rater_satisfied = fields.BooleanField(null=True)
    deadline_provisional = fields.BooleanField(default=False)
    # 申诉复核: NONE / PENDING / UPHELD (excluded from the statistics) / REJECTED
    appeal_status = fields.CharField(max_length=12, default="NONE")
    appeal_reason = fields.TextField(null=True)
    appeal_decided_at = fields.DatetimeField(null=True)
    appeal_decision_note = fields.TextField(null=True)

    class Meta:
        table = "rating"
        unique_together = (("rater", "matter_key"),)
        indexes = (("department_id", "created_at"),)
