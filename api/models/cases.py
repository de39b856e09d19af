"""Applications (申报), cases (办件) and their append-only events.

A case's ``state``, ``blzt`` and ``last_seq`` are a projection of its events, written in the same transaction as each
event; so is its clock's read model (``CaseClock``): the timing and the lights are derived from the events alone
(DOMAIN.md §4), the row only keeps the part of that derivation that does not depend on today.
"""

from tortoise import fields
from tortoise.models import Model

from api.domain.lifecycle import Action, Party
from api.domain.timing import CaseState, LimitUnit


class Application(Model):
    id = fields.IntField(primary_key=True)
    project = fields.ForeignKeyField("models.Project", related_name="applications", on_delete=fields.RESTRICT)
    stage = fields.IntField()
    form = fields.JSONField(default=dict)  # the stage's one form (一张表单)
    materials = fields.JSONField(default=list)  # [{"code", "name", "uploads": [id], "reusedFrom": code|null}]
    parallel_instance_code = fields.CharField(max_length=40, unique=True)  # 并联审批实例编码
    applicant = fields.ForeignKeyField("models.User", related_name="applications", on_delete=fields.RESTRICT)
    idempotency_key = fields.CharField(max_length=120, unique=True, null=True)  # "<user id>:<client key>"
    submitted_at = fields.DatetimeField()

    class Meta:
        table = "application"


class Case(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=48, unique=True)  # 审批事项实例编码
    application = fields.ForeignKeyField("models.Application", related_name="cases", on_delete=fields.RESTRICT)
    project = fields.ForeignKeyField("models.Project", related_name="cases", on_delete=fields.RESTRICT)
    item = fields.ForeignKeyField("models.ApprovalItem", related_name="cases", on_delete=fields.RESTRICT)
    department = fields.ForeignKeyField("models.Department", related_name="cases", on_delete=fields.RESTRICT)
    stage = fields.IntField()
    # Snapshot of the template at submission, so a later change of the catalogue does not rewrite history.
    limit_days = fields.IntField()
    limit_unit = fields.CharEnumField(LimitUnit, max_length=2)
    warning_days = fields.IntField()
    predecessor_codes = fields.JSONField(default=list)
    certificate_type = fields.CharField(max_length=64, null=True)
    guide_version = fields.IntField(null=True)  # the item's 办事指南 version the case was received under
    # Projection of the events.
    state = fields.CharEnumField(CaseState, max_length=24)
    blzt = fields.IntField()
    last_seq = fields.IntField(default=0)
    correction_requested = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "case_instance"
        indexes = (("department_id", "state"), ("project_id", "stage"))


class CaseEvent(Model):
    """One transition, never updated nor deleted: who, when, the BLZT code, the opinion and the data it carried."""

    id = fields.BigIntField(primary_key=True)
    case = fields.ForeignKeyField("models.Case", related_name="events", on_delete=fields.RESTRICT)
    seq = fields.IntField()  # 1, 2, … per case; (case, seq) unique = two concurrent writers cannot both succeed
    action = fields.CharEnumField(Action, max_length=32)
    blzt = fields.IntField()
    state_after = fields.CharEnumField(CaseState, max_length=24)
    party = fields.CharEnumField(Party, max_length=16)
    actor = fields.ForeignKeyField("models.User", related_name="case_events", null=True, on_delete=fields.RESTRICT)
    department = fields.ForeignKeyField(
        "models.Department", related_name="pushed_events", null=True, on_delete=fields.RESTRICT
    )  # set when the event came from the department's own system
    external_id = fields.CharField(max_length=128, null=True)  # the department system's own event id
    dedupe_key = fields.CharField(max_length=200, unique=True, null=True)  # makes retries change nothing
    occurred_at = fields.DatetimeField()
    recorded_at = fields.DatetimeField(auto_now_add=True)
    data = fields.JSONField(default=dict)  # reason, corrections, special procedure, approval document, ...
    attachments = fields.JSONField(default=list)  # upload ids

    class Meta:
        table = "case_event"
        unique_together = (("case", "seq"),)
        # caseStats counts a period's events of each action from this index alone (api/services/supervision.py).
        indexes = (("action", "occurred_at", "case_id"),)
        ordering = ["case_id", "seq"]


class CaseClock(Model):
    """The read model of a case's clock (api/services/clocks.py): the fold of its events that does not depend on
    today, written in the transaction of every event and recomputed whenever the calendar changes. A case's timing at
    any date then needs at most one working-day count between two dates (O(log n)), never its events."""

    case_id = fields.IntField(primary_key=True, generated=False)
    # The case's committed limit (a snapshot that never changes), so a clock is read from this one table.
    limit_days = fields.IntField()
    limit_unit = fields.CharEnumField(LimitUnit, max_length=2)
    warning_days = fields.IntField()
    accepted_on = fields.DateField(null=True)  # day 0 of the clock; NULL: never accepted
    last_on = fields.DateField(null=True)  # local date of the latest event: the row holds the clock as of that day
    used = fields.IntField(null=True)  # counting days used through last_on (final when stopped)
    due_on = fields.DateField(null=True)  # due date as computed on last_on (final when stopped)
    running = fields.BooleanField(default=False)  # the clock counts every counting day after last_on
    stopped = fields.BooleanField(default=False)  # ended for good (its figures are final)
    provisional = fields.BooleanField(default=False)  # final when stopped; else recomputed at the read

    class Meta:
        table = "case_clock"
        table_description = "Read model of each case's clock (api/services/clocks.py), kept with its events."
