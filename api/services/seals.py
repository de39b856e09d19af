"""Electronic seals (电子印章) of the departments, DOMAIN.md §7: made, listed and revoked by admins.

The platform CA comes from the settings: the operators' files in production (``JIANSHEN_ESIGN_CA_CERT_FILE``), else the
embedded CA created on first run under ``JIANSHEN_ESIGN_DIR``. A seal's private key is generated and encrypted under the
key-encryption key inside ``esign``; this module stores the encrypted blob and hands it back only to a ``SealSigner``.
It never returns the blob to the API nor logs it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from functools import lru_cache
from pathlib import Path

from api.domain.accounts import Role
from api.domain.errors import DomainError
from api.models import Department, Seal
from api.models.certificates import SealStatus
from api.services.access import Viewer, require_viewer
from api.services.progress import Page, page_of
from api.settings import Settings

DEFAULT_SEAL_TYPE = "行政审批专用章"
MAX_VALID_YEARS = 10
# A seal certificate starts a little before "now", so that a signature made at once on a machine whose clock is a
# little behind still falls inside the seal's validity.
_BACKDATE = dt.timedelta(minutes=10)

_ca_lock = threading.Lock()


def esign_platform(settings: Settings):
    """The platform CA of these settings (cached per CA location and key-encryption key)."""
    return _platform(*platform_location(settings))


def platform_location(settings: Settings) -> tuple[str, str, str, str, str]:
    """Where the platform CA of these settings is, as ``esign.PlatformCA.open`` takes it (plain strings: a sealing
    job carries them to the child process, api/sealing.py)."""
    return (
        str(settings.esign_ca_cert_file or ""),
        str(settings.esign_ca_key_file or ""),
        settings.esign_ca_key_password or "",
        str(Path(settings.esign_dir).resolve()),
        settings.esign_kek,
    )


@lru_cache(maxsize=8)
def _platform(cert_file: str, key_file: str, key_password: str, directory: str, kek: str):
    from esign import PlatformCA

    with _ca_lock:
        return PlatformCA.open(cert_file, key_file, key_password, directory, kek)


def signer_of(settings: Settings, seal: Seal):
    """The ``SealSigner`` of a stored seal (the default local one: the clear key lives only inside it)."""
    from esign import LocalSealSigner, SealCredentials

    credentials = SealCredentials(
        certificate_pem=seal.certificate_pem.encode(), encrypted_key=bytes(seal.encrypted_key), serial_number=int(seal.serial)
    )
    return LocalSealSigner(credentials, settings.esign_kek.encode(), chain=[esign_platform(settings).certificate])


async def active_seal(department_id: int, now: dt.datetime) -> Seal | None:
    """The seal a department signs with now: its newest active one within its validity."""
    return (
        await Seal.filter(department_id=department_id, status=SealStatus.ACTIVE, valid_from__lte=now, valid_to__gt=now)
        .order_by("-id")
        .first()
    )


async def revoked_seals() -> dict[int, dt.datetime]:
    """Serial number → revocation time, for the verifier (a signature made after it is invalid, DOMAIN.md §7)."""
    rows = await Seal.filter(status=SealStatus.REVOKED).values_list("serial", "revoked_at")
    return {int(serial): revoked_at for serial, revoked_at in rows}


def _require_admin(viewer: Viewer | None) -> Viewer:
    viewer = require_viewer(viewer)
    if viewer.role is not Role.ADMIN:
        raise DomainError("PERMISSION_DENIED", "仅平台管理员可管理电子印章", None)
    return viewer


async def create_seal(
    viewer: Viewer | None,
    *,
    settings: Settings,
    department_id: int,
    name: str | None,
    seal_type: str | None,
    valid_years: int,
    now: dt.datetime,
) -> Seal:
    """A new seal for a department: key and certificate from the platform CA, the red round image."""
    _require_admin(viewer)
    department = await Department.get_or_none(id=department_id)
    if department is None:
        raise DomainError("NOT_FOUND", "部门不存在", "departmentId")
    seal_type = (seal_type or DEFAULT_SEAL_TYPE).strip()
    name = (name or f"{department.name}{seal_type}").strip()
    if not 1 <= len(seal_type) <= 12:
        raise DomainError("INVALID_INPUT", "印章类型应为1至12个字", "sealType")
    if not 2 <= len(name) <= 60:
        raise DomainError("INVALID_INPUT", "印章名称应为2至60个字", "name")
    if not 1 <= valid_years <= MAX_VALID_YEARS:
        raise DomainError("INVALID_INPUT", f"印章有效期应为1至{MAX_VALID_YEARS}年", "validYears")
    return await make_seal(settings, department, name=name, seal_type=seal_type, valid_years=valid_years, now=now)


async def make_seal(
    settings: Settings, department: Department, *, name: str, seal_type: str, valid_years: int, now: dt.datetime
) -> Seal:
    """Make and store a seal (no permission check: ``create_seal`` for people, the demo loader directly)."""
    from esign import seal_png

    valid_from = now - _BACKDATE
    valid_to = valid_from + dt.timedelta(days=365 * valid_years + valid_years // 4)
    platform = esign_platform(settings)

    def make():
        credentials = platform.issue_seal(
            kek=settings.esign_kek.encode(),
            seal_name=name,
            department_name=department.name,
            department_uscc=department.uscc,
            not_before=valid_from,
            not_after=valid_to,
        )
        return credentials, seal_png(department.name, seal_type)

    credentials, image = await asyncio.to_thread(make)
    seal = await Seal.create(
        department_id=department.id,
        name=name,
        seal_type=seal_type,
        serial=str(credentials.serial_number),
        certificate_pem=credentials.certificate_pem.decode(),
        encrypted_key=credentials.encrypted_key,
        image_png=image,
        valid_from=valid_from,
        valid_to=valid_to,
        status=SealStatus.ACTIVE,
        created_at=now,
    )
    from api.services import certificates

    certificates.wake()  # certificates of this department waiting for a seal are sealed now
    return seal


async def revoke_seal(viewer: Viewer | None, *, seal_id: int, reason: str, now: dt.datetime) -> Seal:
    """Revoke a seal: signatures made from now on are invalid; those made before stay valid (DOMAIN.md §7)."""
    _require_admin(viewer)
    reason = (reason or "").strip()
    if not reason:
        raise DomainError("REASON_REQUIRED", "请填写吊销印章的原因", "reason")
    seal = await Seal.get_or_none(id=seal_id)
    if seal is None:
        raise DomainError("NOT_FOUND", "印章不存在", "sealId")
    if seal.status is SealStatus.REVOKED:
        raise DomainError("CONFLICT", "该印章已被吊销", "sealId")
    # A PDF signature's signingTime has whole seconds: the revocation counts from the start of its second, so a
    # signature made in that same second is on the safe side (invalid), never the other way round.
    revoked = await Seal.filter(id=seal_id, status=SealStatus.ACTIVE).update(
        status=SealStatus.REVOKED, revoked_at=now.replace(microsecond=0), revoke_reason=reason[:500]
    )
    if not revoked:  # a simultaneous revocation came first (its reason and time stand)
        raise DomainError("CONFLICT", "该印章已被吊销", "sealId")
    return await Seal.get(id=seal_id)


async def list_seals(
    viewer: Viewer | None, *, first: int, after: str | None, department_id: int | None, status: SealStatus | None
) -> Page[Seal]:
    _require_admin(viewer)
    query = Seal.all()
    if department_id is not None:
        query = query.filter(department_id=department_id)
    if status is not None:
        query = query.filter(status=status)
    return await page_of(query, first, after, newest_first=True)
