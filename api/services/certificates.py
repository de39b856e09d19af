"""Electronic certificates (电子证照): issuance on approval, the signed PDF, reading, reuse and verification (DOMAIN.md §6).

Issuance has two halves. The *record* (identifier, number, metadata, status VALID) is written inside the approval's own
transaction, with the CERTIFICATE_ISSUED notice: it exists if and only if the approval does (同步签发). The *PDF* is
rendered and sealed right after the commit (~0.05 s of CPU; in the API process's sealing child, api/services/sealer.py,
or in a worker thread of an arq worker) by the department's active seal. Nothing
is lost if the process dies in between: a certificate without its PDF is found by the sweep (``CertificatePdfRunner``,
at start-up and on a timer) and on its first download, and producing it is idempotent. A department without an active
seal leaves its certificates waiting, with the reason recorded for staff (``pdf_pending_reason``); creating a seal
wakes the runner, which then seals them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import contextvars
import datetime as dt
import hashlib
import hmac
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from tortoise.expressions import Q

from api.db import key_max
from api.domain.accounts import READ_ALL_ROLES, Role
from api.domain.certificates import (
    CertificateIdentifier,
    CertificateStatus,
    certificate_status,
    check_code,
    check_code_matches,
    format_chinese_date,
    is_valid_identifier,
    validity_label,
)
from api.domain.errors import DomainError
from api.domain.ids import key_of, parse_key, to_global_id
from api.domain.timing import local_date
from api.logs import bound_request_id, current_request_id
from api.models import Case, CaseEvent, Certificate, Organization, Seal
from api.models.certificates import SealStatus, StoredCertificateStatus
from api.sealing import seal_job
from api.services.access import NOTHING, Viewer, require_viewer
from api.services.notices import record_notice
from api.services.progress import Page, page_of
from api.services.sealer import ChildSealer
from api.services.seals import active_seal, esign_platform, platform_location, revoked_seals
from api.settings import Settings
from notifications.kinds import NoticeKind

log = logging.getLogger("jianshen.certificates")

HOLDER_USCC = "001"  # 持证主体代码类型: 统一社会信用代码
NO_SEAL_REASON = "颁发部门尚无有效的电子印章，证照已登记，待管理员为该部门制作印章后自动盖章生成"


# -- issuance (inside the approval's transaction) ---------------------------------------------------------------------


async def _form_rows(application, process_type: int, stage: int) -> list[list[str]]:
    """The filled fields of the application's stage form, labelled as the form labels them, in the form's order."""
    from api.models import TemplateStage

    template_stage = await TemplateStage.get_or_none(template__process_type=process_type, stage=stage)
    form = application.form or {}
    rows = []
    for spec in (template_stage.form_fields if template_stage else []) or []:
        value = form.get(spec.get("name"))
        if value is None or value == "":
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        rows.append([str(spec.get("label") or spec["name"]), str(value)])
    return rows


def _parties(case: Case, organization: Organization, identifier: CertificateIdentifier) -> dict[str, Any]:
    """What every certificate of a case records about itself, its holder and its issuer (the case's department)."""
    return {
        "case_id": case.id, "organization_id": organization.id, "department_id": case.department.id,
        "type_code": case.certificate_type, "identifier": str(identifier), "version": 1,
        "holder_name": organization.name, "holder_code": organization.uscc, "holder_code_type": HOLDER_USCC,
        "issuer_name": case.department.name, "issuer_uscc": case.department.uscc,
    }


async def record_issuance(
    case: Case, event: CaseEvent, *, now: dt.datetime, reference: "CertificateReference | None" = None
) -> Certificate | None:
    """Write the certificate of an approved case and its notice. Call inside the approval's transaction.

    ``None`` when the item yields no certificate. A malformed certificate type in the catalogue is logged and issues
    nothing rather than refusing the department's approval: the approval stands, the catalogue gets fixed.
    With ``reference`` (a department's system reports the certificate it already issued, issue #15) the record is
    the department's certificate: its number, dates and file; this platform seals nothing for it.
    """
    if not case.certificate_type:
        if reference is not None:
            raise DomainError("INVALID_INPUT", "该审批事项不颁发证照，不能登记证照", "certificate")
        return None
    existing = await Certificate.filter(case_id=case.id, status=StoredCertificateStatus.VALID).first()
    if existing is not None:
        return existing
    if reference is not None:
        return await _record_reference(case, event, reference, now=now)
    await case.fetch_related("item", "department", "project")
    department, project = case.department, case.project
    organization = await Organization.get(id=project.organization_id)
    issue_date = local_date(event.occurred_at)
    doc = (event.data or {}).get("document") or event.data or {}
    try:
        identifier = CertificateIdentifier(case.certificate_type, department.uscc, f"{issue_date.year}{case.id:07d}", 1)
        approval_date = dt.date.fromisoformat(doc.get("approval_date") or issue_date.isoformat())
        valid_until = dt.date.fromisoformat(doc.get("valid_until") or "9999-01-01")
    except ValueError:
        log.error("certificate not issued: bad certificate type or approval document", extra={"fields": {"case": case.code}})
        return None
    type_name = case.item.name.removesuffix("核发")
    application = await case.application
    certificate = await Certificate.create(
        **_parties(case, organization, identifier),
        type_name=type_name,
        name=(doc.get("document_title") or type_name)[:200],
        number=f"{department.region_code}{issue_date:%Y%m%d}{case.id:06d}",
        issue_date=issue_date,
        valid_from=min(approval_date, issue_date),
        valid_until=valid_until,
        region_code=project.region_code,
        fields_data=[
            ["项目代码", project.code],
            ["项目名称", project.name],
            ["建设单位", organization.name],
            ["建设地址", project.address],
            # The type's own fields (施工许可证: 合同价格, 施工单位, 监理单位, 项目经理, 合同工期 …) are what the stage's one
            # form asked for (一张表单, DOMAIN.md §6): printed as the form labels them.
            *await _form_rows(application, project.process_type, case.stage),
            ["审批事项", case.item.name],
            ["办件编号", case.code],
            ["批复文号", doc.get("document_number") or ""],
        ],
        issued_at=event.occurred_at,
        request_id=current_request_id(),
    )
    await _issued_notice(case, certificate, event, now=now, applicant_id=application.applicant_id)
    log.info("certificate issued", extra={"fields": {"id": certificate.id, "case": case.code}})
    return certificate


async def _issued_notice(
    case: Case, certificate: Certificate, event: CaseEvent, *, now: dt.datetime, applicant_id: int | None = None
) -> None:
    """CERTIFICATE_ISSUED to the person who applied, in the approval's transaction."""
    if applicant_id is None:
        applicant_id = (await case.application).applicant_id
    await record_notice(
        recipient_id=applicant_id,
        kind=NoticeKind.CERTIFICATE_ISSUED,
        source_key=f"certificate:{certificate.id}",
        variables={
            "case_id": to_global_id("Case", case.id),
            "case_code": case.code,
            "item_name": case.item.name,
            "department": case.department.name,
            "project_name": case.project.name,
            "certificate_id": to_global_id("Certificate", certificate.id),
            "certificate_name": certificate.name,
            "certificate_no": certificate.number,
            "issued_at": event.occurred_at,
        },
        now=now,
    )


# -- a certificate the department's own system issued (issue #15) ------------------------------------------------------

MAX_REFERENCE_PDF = 4 * 1024 * 1024  # the department's PDF, decoded; the ingest body is at most 5 MiB
MAX_CERTIFICATE_NUMBER = 100
# Where a department's certificate PDF is written: set by POST /ingest/events to the app's certificate directory; None
# (the default, and a dry run whose batch is rolled back) writes no file.
files_dir: contextvars.ContextVar[Path | None] = contextvars.ContextVar("certificate_files_dir", default=None)
NO_FILE_HERE = "该证照由颁发部门的审批业务系统签发，本平台未存其电子文件，请向颁发部门索取"


@dataclass(frozen=True)
class CertificateReference:
    """The certificate a department's system already issued: 证照编号, dates, and its file (a reference or the PDF)."""

    number: str
    issue_date: dt.date
    valid_from: dt.date
    valid_until: dt.date
    name: str | None
    file_name: str | None
    file_ref: str | None
    pdf: bytes | None


def _ref_text(raw: dict, key: str, label: str, max_length: int, *, required: bool) -> str | None:
    value = raw.get(key)
    field = f"certificate.{key}"
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DomainError("REQUIRED", f"请提供{label}", field)
        return None
    if not isinstance(value, str) or len(value) > max_length or not value.isprintable():
        raise DomainError("INVALID_INPUT", f"{label}须为不超过{max_length}个可见字符的文字", field)
    return value.strip()


def _ref_date(raw: dict, key: str, label: str, *, default: dt.date | None = None) -> dt.date:
    value = raw.get(key)
    if value is None and default is not None:
        return default
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else dt.date.fromisoformat("")
    except ValueError:
        code = "REQUIRED" if value is None else "INVALID_INPUT"
        raise DomainError(code, f"{label}须为日期（YYYY-MM-DD）", f"certificate.{key}") from None


def parse_certificate_reference(raw: Any) -> CertificateReference | None:
    """The wire form ``{"number", "issueDate", "validFrom"?, "validUntil"?, "name"?, "file"?: {"name", "ref" |
    "pdfBase64"}}`` checked; ``DomainError`` (field ``certificate.…``) for what is missing or malformed."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DomainError("INVALID_INPUT", "证照 certificate 须为对象", "certificate")
    number = _ref_text(raw, "number", "证照编号 certificate.number", MAX_CERTIFICATE_NUMBER, required=True)
    issue_date = _ref_date(raw, "issueDate", "颁发日期 certificate.issueDate")
    valid_from = _ref_date(raw, "validFrom", "有效期起 certificate.validFrom", default=issue_date)
    valid_until = _ref_date(raw, "validUntil", "有效期止 certificate.validUntil", default=dt.date(9999, 1, 1))
    if valid_until < valid_from:
        raise DomainError("INVALID_INPUT", "证照有效期止早于有效期起", "certificate.validUntil")
    name = _ref_text(raw, "name", "证照名称 certificate.name", 200, required=False)
    file = raw.get("file")
    file_name = file_ref = pdf = None
    if file is not None:
        if not isinstance(file, dict):
            raise DomainError("INVALID_INPUT", "证照文件 certificate.file 须为对象 {name, ref} 或 {name, pdfBase64}",
                              "certificate.file")
        file_name = _ref_text({"file.name": file.get("name")}, "file.name", "证照文件名称", 255, required=True)
        file_ref = _ref_text({"file.ref": file.get("ref")}, "file.ref", "证照文件引用", 500, required=False)
        encoded = file.get("pdfBase64")
        if encoded is not None:
            try:
                pdf = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
            except (binascii.Error, ValueError):
                pdf = b""
            if not pdf.startswith(b"%PDF-") or len(pdf) > MAX_REFERENCE_PDF:
                raise DomainError(
                    "INVALID_INPUT", f"证照文件须为 Base64 编码的 PDF，不超过{MAX_REFERENCE_PDF // 1024 // 1024}MiB",
                    "certificate.file.pdfBase64",
                )
        if file_ref is None and pdf is None:
            raise DomainError("REQUIRED", "证照文件须提供部门的文件引用 ref 或 PDF（pdfBase64）", "certificate.file")
    return CertificateReference(number, issue_date, valid_from, valid_until, name, file_name, file_ref, pdf)


def issued_by_label(certificate: Certificate) -> str:
    """Who issued it, in words: the department's own system (issue #15) or this platform's electronic seal."""
    if certificate.issued_by_department_system:
        kept = "本平台存有其电子文件" if certificate.pdf_path else "本平台未存其电子文件"
        return f"由{certificate.issuer_name}审批业务系统签发，本平台登记（{kept}）"
    return "由本平台以颁发机构电子印章签发"


async def _record_reference(
    case: Case, event: CaseEvent, reference: CertificateReference, *, now: dt.datetime
) -> Certificate | None:
    """The department's own certificate, recorded as issued (its number unique among the department's certificates)."""
    await case.fetch_related("item", "department", "project")
    department, project = case.department, case.project
    from api.services.locks import lock_value

    await lock_value(f"certificate-number:{department.id}:{reference.number}")  # two approvals at once: one wins
    if await Certificate.exists(department_id=department.id, number=reference.number):
        raise DomainError("CERTIFICATE_NUMBER_TAKEN", "该证照编号已登记在本部门的另一份证照上", "certificate.number")
    organization = await Organization.get(id=project.organization_id)
    doc = (event.data or {}).get("document") or {}
    type_name = case.item.name.removesuffix("核发")
    try:
        identifier = CertificateIdentifier(
            case.certificate_type, department.uscc, f"{reference.issue_date.year}{case.id:07d}", 1
        )
    except ValueError:  # as for one issued here: the approval stands, the catalogue gets fixed
        log.error("certificate not recorded: bad certificate type in the catalogue", extra={"fields": {"case": case.code}})
        return None
    pdf_path = pdf_sha = None
    if reference.pdf is not None:
        pdf_sha = hashlib.sha256(reference.pdf).hexdigest()
        pdf_path = f"external/{pdf_sha[:2]}/{pdf_sha}.pdf"
        directory = files_dir.get()
        if directory is not None:
            target = Path(directory) / pdf_path
            if not target.exists():
                await asyncio.to_thread(_write_atomic, target, reference.pdf)
    certificate = await Certificate.create(
        **_parties(case, organization, identifier),
        type_name=type_name,
        name=(reference.name or doc.get("document_title") or type_name)[:200],
        number=reference.number,
        issue_date=reference.issue_date,
        valid_from=reference.valid_from,
        valid_until=reference.valid_until,
        region_code=project.region_code,
        fields_data=[
            ["项目代码", project.code],
            ["项目名称", project.name],
            ["建设单位", organization.name],
            ["审批事项", case.item.name],
            ["办件编号", case.code],
            ["批复文号", doc.get("document_number") or ""],
            ["证照文件", reference.file_name or ""],
        ],
        issued_at=event.occurred_at,
        request_id=current_request_id(),
        issued_by_department_system=True,
        file_ref=reference.file_ref,
        pdf_path=pdf_path,
        pdf_sha256=pdf_sha,
        pdf_pending_reason=None if pdf_path else NO_FILE_HERE,
    )
    await _issued_notice(case, certificate, event, now=now)
    log.info("certificate recorded from the department's system", extra={"fields": {"id": certificate.id, "case": case.code}})
    return certificate


async def revoke_for_case(case: Case, event: CaseEvent) -> int:
    """撤销 of the approval revokes its certificate (DOMAIN.md §4, BLZT 15). Inside the revocation's transaction."""
    reason = str((event.data or {}).get("reason") or "审批决定已撤销")[:500]
    return await Certificate.filter(case_id=case.id, status=StoredCertificateStatus.VALID).update(
        status=StoredCertificateStatus.REVOKED, revoked_at=event.occurred_at, revoke_reason=reason
    )


def status_of(certificate: Certificate, now: dt.datetime) -> CertificateStatus:
    """The status shown: the stored one, and EXPIRED derived from the validity and ``now``."""
    return certificate_status(
        now=now,
        valid_until=certificate.valid_until,
        revoked_at=certificate.revoked_at if certificate.status is StoredCertificateStatus.REVOKED else None,
        superseded_at=certificate.issued_at if certificate.status is StoredCertificateStatus.SUPERSEDED else None,
    )


def check_code_of(settings: Settings, certificate: Certificate) -> str:
    return check_code(settings.certificate_check_secret.encode(), certificate.identifier)


def verify_url(settings: Settings, certificate: Certificate) -> str:
    """What the QR code says: the public page, with the check code so that scanning needs no typing."""
    return f"{settings.base_url}/verify/{certificate.identifier}?c={check_code_of(settings, certificate)}"


# -- the PDF (after the commit; idempotent) ---------------------------------------------------------------------------

_locks: dict[int, asyncio.Lock] = {}


def pdf_file(settings: Settings, certificate: Certificate) -> Path | None:
    if not certificate.pdf_path:
        return None
    return Path(settings.certificate_dir) / certificate.pdf_path


async def ensure_pdf(settings: Settings, certificate_id: int, *, now: dt.datetime) -> Certificate:
    """Produce the signed PDF of a certificate unless it exists. Safe to call from many places at once: one process
    renders once (a lock), and between processes the first to record its file wins, the others drop theirs."""
    lock = _locks.setdefault(certificate_id, asyncio.Lock())
    async with lock:
        try:
            return await _ensure_pdf(settings, certificate_id, now)
        finally:
            if not lock._waiters:  # noqa: SLF001 - drop the lock once nobody waits
                _locks.pop(certificate_id, None)


async def _ensure_pdf(settings: Settings, certificate_id: int, now: dt.datetime) -> Certificate:
    certificate = await Certificate.get(id=certificate_id)
    if certificate.issued_by_department_system:
        return certificate  # the department's own file (or none): nothing to seal here
    existing = pdf_file(settings, certificate)
    if existing is not None:
        if existing.exists():
            return certificate
        log.error("certificate PDF missing on disk: producing it again", extra={"fields": {"id": certificate_id}})
        await Certificate.filter(id=certificate_id, pdf_path=certificate.pdf_path).update(pdf_path=None, pdf_sha256=None)
    if certificate.status is not StoredCertificateStatus.VALID:
        return certificate
    seal = await active_seal(certificate.department_id, now)
    if seal is None:
        if certificate.pdf_pending_reason != NO_SEAL_REASON:
            await Certificate.filter(id=certificate_id).update(pdf_pending_reason=NO_SEAL_REASON)
        return await Certificate.get(id=certificate_id)
    pdf = await _seal(sealing_job(settings, certificate, seal))
    sha = hashlib.sha256(pdf).hexdigest()
    relative = f"{certificate.issue_date:%Y}/{certificate.id:08d}-{sha[:16]}.pdf"
    path = Path(settings.certificate_dir) / relative
    await asyncio.to_thread(_write_atomic, path, pdf)
    won = await Certificate.filter(id=certificate_id, pdf_path__isnull=True).update(
        pdf_path=relative, pdf_sha256=sha, seal_id=seal.id, signed_at=now, pdf_pending_reason=None
    )
    if not won:
        path.unlink(missing_ok=True)
    else:
        log.info("certificate PDF sealed", extra={"fields": {"id": certificate_id, "seal_id": seal.id}})
    return await Certificate.get(id=certificate_id)


def sealing_job(settings: Settings, c: Certificate, seal: Seal) -> dict:
    """What sealing this certificate's PDF takes, as plain data (api/sealing.py ``seal_job`` makes the PDF of it)."""
    return {
        "document": {
            "title": c.type_name,
            "licence_number": c.number,
            "identifier": c.identifier,
            "check_code": check_code_of(settings, c),
            "issuer_name": c.issuer_name,
            "issue_date": c.issue_date,
            "verify_url": verify_url(settings, c),
            "statement": f"经审查，{c.holder_name}申请的“{c.name}”符合法定条件，准予许可，特发此证。",
            "fields": [
                ("证照名称", c.name),
                ("证照编号", c.number),
                ("持证主体", c.holder_name),
                ("统一社会信用代码", c.holder_code),
                *[(str(label), str(value)) for label, value in c.fields_data or [] if value],
                ("颁发机构", c.issuer_name),
                ("颁发日期", format_chinese_date(c.issue_date)),
                ("有效期", validity_label(c.valid_from, c.valid_until)),
            ],
            "notes": ["本证照为电子证照，与纸质证照具有同等法律效力", "扫描二维码或凭证照标识和校验码可核验真伪"],
        },
        "credentials": {
            "certificate_pem": seal.certificate_pem.encode(),
            "encrypted_key": bytes(seal.encrypted_key),
            "serial_number": int(seal.serial),
        },
        "kek": settings.esign_kek.encode(),
        "platform": platform_location(settings),
        "seal_image": bytes(seal.image_png),
    }


_sealers: list[ChildSealer] = []


@contextlib.asynccontextmanager
async def sealing_in_child(settings: Settings):
    """While open, this process seals PDFs in a child process (api/services/sealer.py), not in a thread of its own:
    the API process never loads the sealing libraries. The app opens it for its lifespan."""
    sealer = ChildSealer(timeout=settings.certificate_seal_timeout_seconds, idle=settings.certificate_sealer_idle_seconds)
    _sealers.append(sealer)
    try:
        yield sealer
    finally:
        _sealers.remove(sealer)
        await sealer.close()


async def _seal(job: dict) -> bytes:
    if _sealers:
        return await _sealers[-1].seal(job)
    return await asyncio.to_thread(seal_job, job)  # a worker or the demo loader: sealing is what it is for


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pdf-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def produce_pending(settings: Settings, *, now: dt.datetime, limit: int = 50) -> int:
    """Seal the certificates still without a PDF (oldest first) whose department has an active seal. Returns how many
    PDFs were made. Used by the sweep and by the demo."""
    at = now
    sealed_departments = Seal.filter(status=SealStatus.ACTIVE, valid_from__lte=at, valid_to__gt=at).values(
        "department_id"
    )
    ids = await (
        Certificate.filter(status=StoredCertificateStatus.VALID, pdf_path__isnull=True, issued_by_department_system=False)
        .order_by("id")
        .limit(limit)
        .values_list("id", "department_id", "request_id")
    )
    with_seal = {row["department_id"] for row in await sealed_departments}
    made = 0
    for certificate_id, department_id, request_id in ids:
        with bound_request_id(request_id):  # the lines of this certificate name the request that issued it
            if department_id not in with_seal:
                await Certificate.filter(id=certificate_id, pdf_pending_reason__isnull=True).update(
                    pdf_pending_reason=NO_SEAL_REASON
                )
                continue
            try:
                certificate = await ensure_pdf(settings, certificate_id, now=now)
            except Exception:  # noqa: BLE001 - one bad certificate must not stop the others; retried next sweep
                log.exception("certificate PDF failed", extra={"fields": {"id": certificate_id}})
                continue
            made += certificate.pdf_path is not None
    return made


class CertificatePdfRunner:
    """Produces missing PDFs in this process: at start, when woken after an approval's commit, and every
    ``interval`` seconds (which also catches what another process left unfinished)."""

    BATCH = 5  # PDFs per pass: a stop waits for at most one small pass (~2 s), never a long backlog

    def __init__(self, settings: Settings, clock, *, interval: float) -> None:
        self.settings, self.clock, self.interval = settings, clock, interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        _runners.add(self)
        self._task = asyncio.create_task(self._loop(), name="certificate-pdfs")

    async def stop(self, grace: float = 15.0) -> None:
        """Finish the pass under way, then stop (cancelling mid-transaction can hang the pool's close)."""
        from notifications.dispatch import stop_loop

        _runners.discard(self)
        await stop_loop(self, grace)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                while not self._stopping and await produce_pending(
                    self.settings, now=self.clock(), limit=self.BATCH
                ):
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the database may be away for a moment; try again later
                log.exception("certificate sweep failed")
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()


_runners: set[CertificatePdfRunner] = set()
_wakers: list[Callable[[], None]] = []


def register_waker(waker: Callable[[], None]) -> Callable[[], None]:
    """Scaled mode: how to tell the arq workers to look now (the app registers it); returns the unregister."""
    _wakers.append(waker)
    return lambda: _wakers.remove(waker) if waker in _wakers else None


def wake() -> None:
    """After a commit that issued a certificate or created a seal: whoever seals PDFs looks at once — this process's
    runner (embedded mode) or the arq workers (scaled mode). Best effort: their sweeps find anything missed."""
    for runner in list(_runners):
        runner.wake()
    for waker in list(_wakers):
        try:
            waker()
        except Exception:  # noqa: BLE001 - never fail the approval over a wake-up
            log.warning("could not wake the certificate workers; their sweep will find it", exc_info=True)


# -- signed download links --------------------------------------------------------------------------------------------


def _download_mac(settings: Settings, certificate_id: int, expires: int) -> str:
    key = hashlib.sha256(b"jianshen/certificate-download/v1\x00" + settings.secret_key.encode()).digest()
    mac = hmac.new(key, f"{certificate_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:20]).decode().rstrip("=")


def download_url(settings: Settings, certificate: Certificate, now: dt.datetime) -> str:
    expires = int(now.timestamp()) + settings.certificate_download_ttl
    signature = _download_mac(settings, certificate.id, expires)
    return f"{settings.base_url}/certificates/{certificate.id}/pdf?expires={expires}&sig={signature}"


def download_link_valid(settings: Settings, certificate_id: int, expires: str, sig: str, now: dt.datetime) -> bool:
    expiry = parse_key(expires)  # 5,000 digits are a bad link, not Python's integer-conversion limit
    if expiry is None or expiry < now.timestamp():
        return False
    return hmac.compare_digest(sig.encode(), _download_mac(settings, certificate_id, expiry).encode())


# -- reading ----------------------------------------------------------------------------------------------------------


def certificate_scope(viewer: Viewer | None) -> Q:
    """An applicant sees its organisation's certificates, an approver its department's, supervisors and admins all."""
    if viewer is None:
        return NOTHING
    if viewer.role in READ_ALL_ROLES:
        return Q()
    if viewer.role is Role.APPLICANT and viewer.organization_id:
        return Q(organization_id=viewer.organization_id)
    if viewer.role is Role.APPROVER and viewer.department_id:
        return Q(department_id=viewer.department_id)
    return NOTHING


async def get_certificate(viewer: Viewer | None, certificate_id: int) -> Certificate | None:
    return await Certificate.filter(certificate_scope(viewer), id=certificate_id).first()


async def list_certificates(
    viewer: Viewer | None,
    *,
    first: int,
    after: str | None,
    status: CertificateStatus | None,
    project_code: str | None,
    now: dt.datetime,
) -> Page[Certificate]:
    require_viewer(viewer)
    query = Certificate.filter(certificate_scope(viewer))
    if project_code:
        from api.services.applications import check_project_code  # (it imports this module)

        # Checked before the filter: Tortoise validates a filter's value too and would raise, not find nothing.
        query = query.filter(case__project__code=check_project_code(project_code))
    if status is not None:
        query = query.filter(_status_filter(status, now))
    return await page_of(query, first, after, newest_first=True)


def _status_filter(status: CertificateStatus, now: dt.datetime) -> Q:
    today = local_date(now)
    if status is CertificateStatus.EXPIRED:
        return Q(status=StoredCertificateStatus.VALID, valid_until__lt=today)
    if status is CertificateStatus.VALID:
        return Q(status=StoredCertificateStatus.VALID, valid_until__gte=today)
    return Q(status=StoredCertificateStatus(status.value))


MAX_CITED = 50


async def cite_certificates(viewer: Viewer, global_ids: Sequence[str], now: dt.datetime) -> list[dict[str, str]]:
    """Certificates an application cites instead of uploads (复用, DOMAIN.md §6, 规程 6.6): held by the viewer's
    organisation and valid now, as the application's material entry stores them. Another organisation's certificate,
    or an id of anything else, answers like one that does not exist."""
    if len(global_ids) > MAX_CITED:
        raise DomainError("INVALID_INPUT", f"引用的证照不能超过{MAX_CITED}个", "materials")
    missing = DomainError("NOT_FOUND", "引用的电子证照不存在或不属于本单位", "materials")
    ids = []
    for global_id in dict.fromkeys(str(g) for g in global_ids):
        pk = key_of(global_id, "Certificate", key_max(Certificate))
        if pk is None:
            raise missing
        ids.append(pk)
    found = {c.id: c for c in await Certificate.filter(id__in=ids, organization_id=viewer.organization_id or -1)}
    out = []
    for certificate_id in ids:
        certificate = found.get(certificate_id)
        if certificate is None:
            raise missing
        status = status_of(certificate, now)
        if status is not CertificateStatus.VALID:
            raise DomainError(
                "CERTIFICATE_NOT_VALID", f"电子证照“{certificate.name}”{status.label}，不能作为申报材料", "materials"
            )
        out.append(
            {
                "certificateId": to_global_id("Certificate", certificate.id),
                "identifier": certificate.identifier,
                "name": certificate.name,
                "number": certificate.number,
            }
        )
    return out


# -- public verification -----------------------------------------------------------------------------------------------


def mask_name(name: str) -> str:
    """The holder's name partly masked on the public page: 珠海市建设发展有限公司 → 珠海市****有限公司, 张三 → 张*."""
    n = len(name)
    if n <= 2:
        return name[:1] + "*" * (n - 1)
    if n <= 8:
        return name[0] + "*" * (n - 2) + name[-1]
    return name[:3] + "*" * (n - 7) + name[-4:]


@dataclass(frozen=True)
class PublicView:
    """What anyone holding the certificate may learn about it (the holder's name masked)."""

    certificate: Certificate
    status: CertificateStatus
    holder_masked: str


async def lookup_public(settings: Settings, identifier: str, typed_code: str | None, now: dt.datetime) -> PublicView | None:
    """By 证照标识 and check code: ``None`` for a malformed or unknown identifier or a wrong code (one answer for all,
    so that the page tells nothing to someone guessing identifiers)."""
    identifier = (identifier or "").strip().upper()
    if not typed_code or not is_valid_identifier(identifier):
        return None
    if not check_code_matches(settings.certificate_check_secret.encode(), identifier, typed_code):
        return None
    certificate = await Certificate.get_or_none(identifier=identifier)
    if certificate is None:
        return None
    return PublicView(certificate, status_of(certificate, now), mask_name(certificate.holder_name))


async def public_by_identifier(identifier: str | None, now: dt.datetime) -> PublicView | None:
    """For an uploaded PDF whose signature is ours: the certificate it names (no check code needed: the file is it)."""
    if not identifier:
        return None
    certificate = await Certificate.get_or_none(identifier=identifier)
    if certificate is None:
        return None
    return PublicView(certificate, status_of(certificate, now), mask_name(certificate.holder_name))


async def verify_upload(settings: Settings, pdf: bytes, now: dt.datetime) -> tuple[Any, PublicView | None]:
    """An uploaded PDF: is its seal signature intact, by a seal of this platform, not revoked when it signed; and
    which certificate is it (with its status now)."""
    from esign import VerificationStatus, async_verify_pdf

    platform = esign_platform(settings)
    revoked = await revoked_seals()
    result = await async_verify_pdf(pdf, [platform.certificate], lambda serial: revoked.get(serial))
    view = await public_by_identifier(result.identifier, now) if result.status is VerificationStatus.VALID else None
    return result, view

