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
    # The key before the last rotation, still accepted until ``previous_ingest_secret_until`` (the grace period,
    # JIANSHEN_INGEST_SECRET_GRACE_SECONDS) while the department's system is reconfigured (issue #12).
    previous_ingest_secret = fields.CharField(max_length=128, null=True)
    previous_ingest_secret_until = fields.DatetimeField(null=True)
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
    unionid = fields.CharField(max_length=64, null=True)
    # The WeChat session_key, AES-GCM encrypted with a key derived from the secret key; never stored in clear.
    wechat_session_key = fields.CharField(max_length=255, null=True)
    phone = fields.CharField(max_length=20, null=True)  # verified by WeChat (getuserphonenumber) when phone_verified_at
    phone_verified_at = fields.DatetimeField(null=True)
    username = fields.CharField(max_length=64, unique=True, null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "app_user"


class LoginSession(Model):
    """One sign-in (a family of refresh tokens). Access tokens carry its id: revoking it ends them all at once."""

    id = fields.UUIDField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="login_sessions", on_delete=fields.CASCADE)
    kind = fields.CharField(max_length=16)  # WECHAT, STAFF, DEMO
    created_at = fields.DatetimeField()
    last_refreshed_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    revoke_reason = fields.CharField(max_length=32, null=True)  # LOGOUT, REPLAY

    class Meta:
        table = "login_session"


class RefreshToken(Model):
    """A refresh token, stored as its SHA-256 only. Used once: the next one replaces it (rotation)."""

    id = fields.IntField(primary_key=True)
    session = fields.ForeignKeyField("models.LoginSession", related_name="refresh_tokens", on_delete=fields.CASCADE)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "refresh_token"


class StaffLoginThrottle(Model):
    """Failed staff sign-ins per username, whether or not the username exists (so lock-out reveals nothing)."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=64, unique=True)
    failures = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_login_throttle"


class AgentAuthorization(Model):
    """经办人授权: an organisation authorises a verified phone number to act for it. Withdrawn = ``revoked_at`` set.

    ``is_admin``: this agent may itself authorise and withdraw the organisation's agents.
    """

    id = fields.IntField(primary_key=True)
    organization = fields.ForeignKeyField(
        "models.Organization", related_name="agent_authorizations", on_delete=fields.CASCADE
    )
    phone = fields.CharField(max_length=20, db_index=True)
    agent_name = fields.CharField(max_length=100)
    is_admin = fields.BooleanField(default=False)
    granted_by = fields.ForeignKeyField("models.User", related_name="granted_authorizations", null=True,
                                        on_delete=fields.SET_NULL)
    granted_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)
    revoked_by = fields.ForeignKeyField("models.User", related_name="revoked_authorizations", null=True,
                                        on_delete=fields.SET_NULL)

    class Meta:
        table = "agent_authorization"


class SubscribeConsent(Model):
    """One-time subscribe-message consents a user has left per template (wx.requestSubscribeMessage → accept)."""

    id = fields.IntField(primary_key=True)
    user = fields.ForeignKeyField("models.User", related_name="subscribe_consents", on_delete=fields.CASCADE)
    template_id = fields.CharField(max_length=128)
    remaining = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "subscribe_consent"
        unique_together = (("user", "template_id"),)
