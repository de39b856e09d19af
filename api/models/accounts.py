"""Organisations (applicants' companies), departments and the people who use the service."""

from tortoise import fields
from tortoise.models import Model

from api.domain.accounts import Role
from api.models.validators import RegionCodeValidator, USCCValidator


class Organization(Model):
    """A company or body that builds: owner of projects, holder of certificates. Identified by its USCC."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    uscc = fields.CharField(max_length=18, unique=True, validators=[USCCValidator()])  # 统一社会信用代码
    region_code = fields.CharField(max_length=6, validators=[RegionCodeValidator()])
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "organization"


class Department(Model):
    """审批服务单位: decides cases and may push events from its own system (signed with ``ingest_secret``)."""

    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)  # short code, used by the department's system
    name = fields.CharField(max_length=200)
    uscc = fields.CharField(max_length=18, unique=True, validators=[USCCValidator()])
    region_code = fields.CharField(max_length=6, validators=[RegionCodeValidator()])
    ingest_secret = fields.CharField(max_length=128, null=True)  # HMAC-SHA256 key of POST /ingest/events
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "department"


class User(Model):
    id = fields.IntField(primary_key=True)
    display_name = fields.CharField(max_length=100)
    role = fields.CharEnumField(Role, max_length=16)
    organization = fields.ForeignKeyField(
        "models.Organization", related_name="members", null=True, on_delete=fields.RESTRICT
    )
    department = fields.ForeignKeyField(
        "models.Department", related_name="staff", null=True, on_delete=fields.RESTRICT
    )
    region_code = fields.CharField(max_length=6, null=True, validators=[RegionCodeValidator()])  # a window clerk's jurisdiction (管辖属地)
    openid = fields.CharField(max_length=64, unique=True, null=True)
    phone = fields.CharField(max_length=20, null=True)
    username = fields.CharField(max_length=64, unique=True, null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"
