"""The item catalogue (事项清单) and the process templates (审批流程类型 → 阶段 → 事项)."""

from tortoise import fields
from tortoise.models import Model

from api.domain.catalog import ItemKind
from api.domain.timing import LimitUnit


class ApprovalItem(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    kind = fields.CharEnumField(ItemKind, max_length=32)
    department = fields.ForeignKeyField("models.Department", related_name="items", on_delete=fields.RESTRICT)

    class Meta:
        table = "approval_item"


class ProcessTemplate(Model):
    id = fields.IntField(primary_key=True)
    process_type = fields.IntField(unique=True)  # SPLCLX 1–10
    name = fields.CharField(max_length=100)

    class Meta:
        table = "process_template"


class TemplateStage(Model):
    """One stage of a template: one lead department, one form, one set of materials (一家牵头、一张表单)."""

    id = fields.IntField(primary_key=True)
    template = fields.ForeignKeyField("models.ProcessTemplate", related_name="stages", on_delete=fields.CASCADE)
    stage = fields.IntField()  # 1–5
    lead_department = fields.ForeignKeyField(
        "models.Department", related_name="led_stages", on_delete=fields.RESTRICT
    )
    # [{"name": "buildingArea", "label": "总建筑面积(平方米)", "type": "number", "required": true}, ...]
    form_fields = fields.JSONField(default=list)
    # [{"code": "M01", "name": "建设工程规划许可申请表", "required": true}, ...]
    materials = fields.JSONField(default=list)

    class Meta:
        table = "template_stage"
        unique_together = (("template", "stage"),)


class TemplateItem(Model):
    id = fields.IntField(primary_key=True)
    template_stage = fields.ForeignKeyField("models.TemplateStage", related_name="items", on_delete=fields.CASCADE)
    item = fields.ForeignKeyField("models.ApprovalItem", related_name="template_entries", on_delete=fields.RESTRICT)
    limit_days = fields.IntField()  # 承诺时限
    limit_unit = fields.CharEnumField(LimitUnit, max_length=2, default=LimitUnit.WD)
    warning_days = fields.IntField(default=2)  # YELLOW while 0 ≤ remaining ≤ warning_days
    predecessor_codes = fields.JSONField(default=list)  # item codes that must be decided first (前后时序)
    certificate_type = fields.CharField(max_length=64, null=True)  # 证照类型代码 when the item yields a licence
    sort = fields.IntField(default=0)

    class Meta:
        table = "template_item"
        unique_together = (("template_stage", "item"),)


class ItemGuide(Model):
    """One version of an item's 办事指南 (DOMAIN.md §12), as ``load-catalog`` resolved it from the data files.

    A version is never changed: a changed guide is a new version, and a case keeps the version (and the limit and
    materials) it was received under."""

    id = fields.IntField(primary_key=True)
    item = fields.ForeignKeyField("models.ApprovalItem", related_name="guides", on_delete=fields.CASCADE)
    version = fields.IntField()
    digest = fields.CharField(max_length=64)  # sha256 of the canonical JSON of ``content``
    content = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "item_guide"
        unique_together = (("item", "version"),)
