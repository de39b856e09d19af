"""GraphQL of electronic certificates and seals (DOMAIN.md §6–7): the holder's certificates with a short-lived download
link, the public check by identifier and check code, and the admins' seals. A seal's private key has no field here."""

from __future__ import annotations

import datetime as dt
from enum import Enum

import strawberry

from api import models
from api.domain import certificates as rules
from api.domain.errors import DomainError
from api.models.certificates import SealStatus as SealStatusModel
from api.services import certificates as service
from api.services import seals as seal_service
from api.services.progress import check_first
from api.schema.base import Node, UserError, graphql_error, payload_or_errors, pk_of
from api.schema.types import Connection, Department, _backed_by, connection_of

CertificateStatus = strawberry.enum(
    rules.CertificateStatus, description="VALID 有效, REVOKED 已撤销, EXPIRED 已过期, SUPERSEDED 已被新版本替代."
)
SealStatus = strawberry.enum(SealStatusModel, description="ACTIVE 有效, REVOKED 已吊销.")


@strawberry.enum(description="持证主体代码类型: 001 统一社会信用代码, 111 身份证.")
class HolderCodeType(Enum):
    USCC = "001"
    ID_CARD = "111"


@strawberry.type(description="A field of the certificate's own type (e.g. 工程名称 of a 施工许可证).")
class CertificateField:
    label: str
    value: str


@strawberry.type(description="电子证照: one version of an electronic certificate, with the national metadata (GB/T 36903).")
class Certificate(Node):
    is_type_of = _backed_by(models.Certificate)
    name: str = strawberry.field(description="证照名称")
    type_code: str = strawberry.field(description="证照类型代码")
    type_name: str = strawberry.field(description="证照类型名称")
    number: str = strawberry.field(description="证照编号 (the department's licence number)")
    identifier: str = strawberry.field(description="证照标识, with its MOD 37,36 check character")
    version: int
    holder_name: str = strawberry.field(description="持证主体")
    holder_code: str = strawberry.field(description="持证主体代码")
    issuer_name: str = strawberry.field(description="颁发机构")
    issuer_uscc: str = strawberry.field(description="颁发机构代码")
    issue_date: dt.date = strawberry.field(description="颁发日期")
    valid_from: dt.date = strawberry.field(description="有效期起")
    valid_until: dt.date = strawberry.field(description="有效期止; 9999-01-01 = 长期有效")
    region_code: str = strawberry.field(description="管辖属地编码")
    revoked_at: dt.datetime | None
    revoke_reason: str | None
    issued_at: dt.datetime
    signed_at: dt.datetime | None = strawberry.field(description="When the PDF was sealed; null while it waits")

    @strawberry.field
    def holder_code_type(self) -> HolderCodeType:
        return HolderCodeType(self.holder_code_type)

    @strawberry.field(description="Status now: EXPIRED follows from the validity.")
    def status(self, info: strawberry.Info) -> CertificateStatus:
        return service.status_of(self, info.context.now)

    @strawberry.field
    def status_label(self, info: strawberry.Info) -> str:
        return service.status_of(self, info.context.now).label

    @strawberry.field(description="The type's own fields, in order.")
    def fields(self) -> list[CertificateField]:
        return [CertificateField(label=str(k), value=str(v)) for k, v in self.fields_data or []]

    @strawberry.field(description="校验码 printed on the certificate (ABCD-2345), for checking it by identifier.")
    def check_code(self, info: strawberry.Info) -> str:
        return rules.format_check_code(service.check_code_of(info.context.settings, self))

    @strawberry.field(description="The public verification page (the QR code's target).")
    def verify_url(self, info: strawberry.Info) -> str:
        return service.verify_url(info.context.settings, self)

    @strawberry.field(
        description="True when the department's own system issued it (a case it received or imported, issue #15): "
        "number, dates and file are the department's, this platform sealed nothing."
    )
    def issued_by_department_system(self) -> bool:
        return self.issued_by_department_system

    @strawberry.field(description="Who issued it, in Chinese (the department's system, or this platform's seal).")
    def issued_by(self) -> str:
        return service.issued_by_label(self)

    @strawberry.field(description="The department's own reference to the certificate's file, when it keeps it.")
    def file_ref(self) -> str | None:
        return self.file_ref

    @strawberry.field(description="True when the PDF exists here (sealed here, or the department's own file).")
    def pdf_ready(self) -> bool:
        return self.pdf_path is not None

    @strawberry.field(description="Why the PDF is not there yet (e.g. the department has no active seal); else null.")
    def pdf_pending_reason(self) -> str | None:
        return None if self.pdf_path else self.pdf_pending_reason

    @strawberry.field(
        description="A short-lived signed link to the sealed PDF (see JIANSHEN_CERTIFICATE_DOWNLOAD_TTL); null once the "
        "certificate is revoked or superseded, and for a department's certificate whose file is not here (fileRef). "
        "The PDF is made on first download if it is not there yet."
    )
    def download_url(self, info: strawberry.Info) -> str | None:
        if self.status is not models.certificates.StoredCertificateStatus.VALID:
            return None
        if self.issued_by_department_system and not self.pdf_path:
            return None  # the department keeps the file (fileRef): nothing to download here
        return service.download_url(info.context.settings, self, info.context.now)

    @strawberry.field
    async def department(self, info: strawberry.Info) -> Department:
        return await info.context.loaders.department.load(self.department_id)


@strawberry.type(description="电子印章 of a department. Its private key never leaves the server.")
class Seal(Node):
    is_type_of = _backed_by(models.Seal)
    name: str
    seal_type: str
    serial: str = strawberry.field(description="Serial number of the seal's X.509 certificate (decimal)")
    certificate_pem: str = strawberry.field(description="The seal's X.509 certificate (public)")
    valid_from: dt.datetime
    valid_to: dt.datetime
    status: SealStatus
    revoked_at: dt.datetime | None
    revoke_reason: str | None

    @strawberry.field
    async def department(self, info: strawberry.Info) -> Department:
        return await info.context.loaders.department.load(self.department_id)


@strawberry.input
class CertificateFilter:
    status: CertificateStatus | None = None
    project_code: str | None = strawberry.field(default=None, description="Certificates of this project")


@strawberry.input
class SealFilter:
    department_id: strawberry.ID | None = None
    status: SealStatus | None = None


@strawberry.input
class VerifyCertificateInput:
    identifier: str = strawberry.field(description="证照标识 as printed")
    check_code: str = strawberry.field(description="校验码 as printed (case, spaces and dashes ignored)")


@strawberry.type(description="The public answer about a certificate; everything null when it is not found.")
class CertificateVerification:
    found: bool
    message: str = strawberry.field(description="The answer in Chinese")
    status: CertificateStatus | None = None
    status_label: str | None = None
    name: str | None = None
    type_name: str | None = None
    number: str | None = None
    holder: str | None = strawberry.field(default=None, description="持证主体, partly masked")
    issuer_name: str | None = None
    issue_date: dt.date | None = None
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None
    issued_by_department_system: bool | None = strawberry.field(
        default=None, description="Issued by the department's own system and registered here (issue #15)"
    )
    issued_by: str | None = strawberry.field(default=None, description="Who issued it, in Chinese")


NOT_FOUND_MESSAGE = "未查询到该证照：证照标识或校验码不正确，或本平台未签发该证照"


def verification_of(view: service.PublicView | None) -> CertificateVerification:
    if view is None:
        return CertificateVerification(found=False, message=NOT_FOUND_MESSAGE)
    c = view.certificate
    return CertificateVerification(
        found=True,
        message=f"该证照{view.status.label}" + (f"；{service.issued_by_label(c)}" if c.issued_by_department_system else ""),
        status=view.status,
        status_label=view.status.label,
        name=c.name,
        type_name=c.type_name,
        number=c.number,
        holder=view.holder_masked,
        issuer_name=c.issuer_name,
        issue_date=c.issue_date,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        issued_by_department_system=c.issued_by_department_system,
        issued_by=service.issued_by_label(c),
    )


@strawberry.type
class CertificateQuery:
    @strawberry.field(
        description="Certificates you may see, newest first: an applicant its organisation's, an approver its "
        "department's, supervisors and admins all."
    )
    async def certificates(
        self, info: strawberry.Info, first: int = 20, after: str | None = None, filter: CertificateFilter | None = None
    ) -> Connection[Certificate]:
        ctx = info.context
        f = filter or CertificateFilter()
        try:
            page = await service.list_certificates(
                ctx.viewer,
                first=check_first(first, ctx.settings.page_max),
                after=after,
                status=f.status,
                project_code=f.project_code,
                now=ctx.now,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)

    @strawberry.field(description="A certificate by its global id; null when it does not exist or you may not see it.")
    async def certificate(self, info: strawberry.Info, id: strawberry.ID) -> Certificate | None:
        try:
            pk = pk_of(id, "Certificate")
        except DomainError:
            return None
        return await service.get_certificate(info.context.viewer, pk)

    @strawberry.field(description="Public, no sign-in: check a printed certificate by its 证照标识 and 校验码.")
    async def verify_certificate(self, info: strawberry.Info, input: VerifyCertificateInput) -> CertificateVerification:
        ctx = info.context
        if await ctx.public_rate_limited("verify-certificate"):
            raise graphql_error(DomainError("RATE_LIMITED", "核验请求过于频繁，请稍后再试", None))
        return verification_of(await service.lookup_public(ctx.settings, input.identifier, input.check_code, ctx.now))

    @strawberry.field(description="Admins: the departments' electronic seals, newest first.")
    async def seals(
        self, info: strawberry.Info, first: int = 20, after: str | None = None, filter: SealFilter | None = None
    ) -> Connection[Seal]:
        ctx = info.context
        f = filter or SealFilter()
        try:
            page = await seal_service.list_seals(
                ctx.viewer,
                first=check_first(first, ctx.settings.page_max),
                after=after,
                department_id=pk_of(f.department_id, "Department", "departmentId") if f.department_id else None,
                status=f.status,
            )
        except DomainError as error:
            raise graphql_error(error) from None
        return connection_of(page)


@strawberry.input
class CreateSealInput:
    department_id: strawberry.ID
    name: str | None = strawberry.field(default=None, description="Default: the department's name + the seal type")
    seal_type: str | None = strawberry.field(default=None, description="Default: 行政审批专用章")
    valid_years: int = 5


@strawberry.input
class RevokeSealInput:
    seal_id: strawberry.ID
    reason: str


@strawberry.type
class SealPayload:
    seal: Seal | None = None
    errors: list[UserError]


@strawberry.type
class CertificateMutation:
    @strawberry.mutation(description="Admins: a new seal for a department (key, X.509 certificate, red round image).")
    async def create_seal(self, info: strawberry.Info, input: CreateSealInput) -> SealPayload:
        ctx = info.context

        async def run() -> dict:
            seal = await seal_service.create_seal(
                ctx.viewer,
                settings=ctx.settings,
                department_id=pk_of(input.department_id, "Department", "departmentId"),
                name=input.name,
                seal_type=input.seal_type,
                valid_years=input.valid_years,
                now=ctx.now,
            )
            return {"seal": seal}

        return await payload_or_errors(SealPayload, run)

    @strawberry.mutation(
        description="Admins: revoke a seal. Signatures made from now on are invalid; earlier ones stay valid."
    )
    async def revoke_seal(self, info: strawberry.Info, input: RevokeSealInput) -> SealPayload:
        ctx = info.context

        async def run() -> dict:
            seal = await seal_service.revoke_seal(
                ctx.viewer, seal_id=pk_of(input.seal_id, "Seal", "sealId"), reason=input.reason, now=ctx.now
            )
            return {"seal": seal}

        return await payload_or_errors(SealPayload, run)
