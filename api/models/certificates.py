"""Electronic seals (电子印章) and electronic certificates (电子证照), DOMAIN.md §6–7.

The signing itself lives in ``esign``: here are the records. A seal's private key is stored only encrypted under the
key-encryption key (esign/keys.py) and never leaves the services. A certificate's printed check code is derived from
its identifier and a server secret (api/domain/certificates.py), so it is not stored.
"""

from enum import Enum

from tortoise import fields
from tortoise.models import Model


class SealStatus(str, Enum):
    ACTIVE = "ACTIVE"
    REVOKED = "REVOKED"


class StoredCertificateStatus(str, Enum):
    """What is written. EXPIRED is never stored: it follows from the validity and the clock (DOMAIN.md §6)."""

    VALID = "VALID"
    REVOKED = "REVOKED"
    SUPERSEDED = "SUPERSEDED"


class Seal(Model):
    """A seal of a department: its image, an ECDSA key (encrypted) and the X.509 certificate issued by the platform CA"""

    id = fields.IntField(primary_key=True)
    department = fields.ForeignKeyField("models.Department", related_name="seals", on_delete=fields.RESTRICT)
    name = fields.CharField(max_length=200)  # 珠海市住房和城乡建设局行政审批专用章
    seal_type = fields.CharField(max_length=50)  # 行政审批专用章
    serial = fields.CharField(max_length=64, unique=True)  # the X.509 serial number, decimal
    certificate_pem = fields.TextField()
    encrypted_key = fields.BinaryField()  # AES-256-GCM envelope under the key-encryption key
    image_png = fields.BinaryField()
    valid_from = fields.DatetimeField()
    valid_to = fields.DatetimeField()
    status = fields.CharEnumField(SealStatus, max_length=16, default=SealStatus.ACTIVE)
    revoked_at = fields.DatetimeField(null=True)
    revoke_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "seal"
        indexes = (("department_id", "status"),)


class Certificate(Model):
    """One version of an electronic certificate, with the metadata of the national sharing table (GB/T 36903)"""

    id = fields.IntField(primary_key=True)
    case = fields.ForeignKeyField("models.Case", related_name="certificates", on_delete=fields.RESTRICT)
    organization = fields.ForeignKeyField(
        "models.Organization", related_name="certificates", on_delete=fields.RESTRICT
    )  # the holder, when it is an organisation of the platform
    department = fields.ForeignKeyField("models.Department", related_name="certificates", on_delete=fields.RESTRICT)
    type_code = fields.CharField(max_length=64)  # 证照类型代码
    type_name = fields.CharField(max_length=200)  # 证照类型名称
    name = fields.CharField(max_length=200)  # 证照名称 (the approval document's title)
    number = fields.CharField(max_length=100)  # 证照编号, the department's licence number
    identifier = fields.CharField(max_length=120, unique=True)  # 证照标识 with its check character
    version = fields.IntField(default=1)
    holder_name = fields.CharField(max_length=200)  # 持证主体
    holder_code = fields.CharField(max_length=18)  # 持证主体代码
    holder_code_type = fields.CharField(max_length=3)  # 001 USCC, 111 ID card
    issuer_name = fields.CharField(max_length=200)  # 颁发机构
    issuer_uscc = fields.CharField(max_length=18)  # 颁发机构代码
    issue_date = fields.DateField()  # 颁发日期
    valid_from = fields.DateField()  # 有效期起
    valid_until = fields.DateField()  # 有效期止, 9999-01-01 = 长期有效
    region_code = fields.CharField(max_length=6)  # 管辖属地编码
    fields_data = fields.JSONField(default=list)  # the type's own fields, [[label, value], ...]
    status = fields.CharEnumField(StoredCertificateStatus, max_length=16, default=StoredCertificateStatus.VALID)
    revoked_at = fields.DatetimeField(null=True)
    revoke_reason = fields.CharField(max_length=500, null=True)
    superseded_by = fields.ForeignKeyField(
        "models.Certificate", related_name="supersedes", null=True, on_delete=fields.RESTRICT
    )
    issued_at = fields.DatetimeField()
    # The signed PDF: produced right after the approval's commit, or later by the sweep (never lost).
    seal = fields.ForeignKeyField("models.Seal", related_name="certificates", null=True, on_delete=fields.RESTRICT)
    pdf_path = fields.CharField(max_length=300, null=True)  # relative to the certificate directory
    pdf_sha256 = fields.CharField(max_length=64, null=True)
    signed_at = fields.DatetimeField(null=True)
    pdf_pending_reason = fields.CharField(max_length=300, null=True)  # why the PDF is not there yet, for staff
    # The request that issued it: the log lines of sealing its PDF (a sweep, a worker) name it (api/logs.py).
    request_id = fields.CharField(max_length=64, null=True)
    # Issued by the department's own system (a case it received or imported, issue #15): the certificate's number,
    # dates and file are the department's; this platform seals nothing. ``pdf_path`` is the department's PDF when it
    # sent one, ``file_ref`` its own reference to the file it keeps.
    issued_by_department_system = fields.BooleanField(default=False)
    file_ref = fields.CharField(max_length=500, null=True)

    class Meta:
        table = "certificate"
        indexes = (("organization_id", "id"), ("department_id", "id"))
