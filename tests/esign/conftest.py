"""Shared signing material for the esign tests: one platform CA, one seal, one signed certificate PDF per session.

Rendering a certificate costs ~0.1 s (the first of a process ~0.5 s), so the signed PDF is made once and each test
works on its own copy of the bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from api.domain.certificates import CertificateIdentifier, check_code
from api.domain.codes import make_uscc
from esign import CertificateDocument, LocalSealSigner, PlatformCA, SealCredentials, render_certificate, seal_png, sign_pdf
from tests.servers import require

KEK = bytes(range(32))
CHECK_SECRET = b"test-check-code-secret-0123456789"
DEPARTMENT = "珠海市住房和城乡建设局"
DEPARTMENT_USCC = make_uscc("11440400MB2C1234X")
SEAL_NAME = "珠海市住房和城乡建设局行政审批专用章"
SEAL_TYPE = "行政审批专用章"
IDENTIFIER = str(CertificateIdentifier("11100000000013338W011", DEPARTMENT_USCC, "20250000001", 1))
VERIFY_URL = f"https://jianshen.example.cn/verify/{IDENTIFIER}"


def construction_permit(identifier: str = IDENTIFIER) -> CertificateDocument:
    """A 建筑工程施工许可证 with the fields of the paper licence (DOMAIN.md §6)."""
    return CertificateDocument(
        title="建筑工程施工许可证",
        licence_number="440402202506010101",
        identifier=identifier,
        check_code=check_code(CHECK_SECRET, identifier),
        issuer_name=DEPARTMENT,
        issue_date=date(2025, 6, 1),
        verify_url=f"https://jianshen.example.cn/verify/{identifier}",
        statement="根据《中华人民共和国建筑法》第八条规定，经审查，本建筑工程符合施工条件，准予施工。",
        fields=[
            ("证照编号", "440402202506010101"),
            ("持证主体", "珠海市海景房地产开发有限公司"),
            ("建设单位", "珠海市海景房地产开发有限公司"),
            ("工程名称", "海景花园二期1#-5#楼及地下室"),
            ("建设地址", "珠海市香洲区情侣中路以东、海景大道以北"),
            ("建设规模", "总建筑面积86,523.45平方米，地上32层，地下2层"),
            ("合同价格", "人民币贰亿叁仟肆佰伍拾陆万元（¥234,560,000.00）"),
            ("勘察单位", "广东省珠江工程勘察院"),
            ("设计单位", "珠海市城建建筑设计院有限公司"),
            ("施工单位", "中国建筑第八工程局有限公司"),
            ("监理单位", "珠海市正信工程监理有限公司"),
            ("项目经理", "张建国"),
            ("合同工期", "2025年6月10日至2027年11月30日，共904日历天"),
            ("颁发机构", DEPARTMENT),
            ("颁发日期", "2025年6月1日"),
            ("有效期", "2025年6月1日起长期有效"),
        ],
        notes=["本证放置施工现场，作为准予施工的凭证", "未经发证机关许可，本证的各项内容不得变更"],
    )


@dataclass(frozen=True)
class Platform:
    directory: Path
    ca: PlatformCA
    seal: SealCredentials
    signer: LocalSealSigner
    seal_image: bytes

    @property
    def ca_pem_path(self) -> Path:
        return self.directory / "platform-ca.pem"


def make_platform(directory: Path) -> Platform:
    ca = PlatformCA.open_or_create(directory, KEK)
    now = datetime.now(timezone.utc)
    seal = ca.issue_seal(
        kek=KEK,
        seal_name=SEAL_NAME,
        department_name=DEPARTMENT,
        department_uscc=DEPARTMENT_USCC,
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=3650),
    )
    return Platform(directory, ca, seal, LocalSealSigner(seal, KEK, [ca.certificate]), seal_png(DEPARTMENT, SEAL_TYPE))


def sign_certificate(platform: Platform, doc: CertificateDocument | None = None) -> bytes:
    rendered = render_certificate(doc or construction_permit())
    return sign_pdf(rendered.pdf, platform.signer, seal_image_png=platform.seal_image, seal_box=rendered.seal_box)


@pytest.fixture(scope="session")
def platform(tmp_path_factory) -> Platform:
    return make_platform(tmp_path_factory.mktemp("esign-platform"))


@pytest.fixture(scope="session")
def outsider(tmp_path_factory) -> Platform:
    """Another platform with its own CA: its seals are not ours."""
    return make_platform(tmp_path_factory.mktemp("esign-outsider"))


@pytest.fixture(scope="session")
def signed_pdf(platform) -> bytes:
    return sign_certificate(platform)


# --- poppler's pdfsig: the independent verifier (DESIGN.md §7) ---------------------------------------------------------
def need_pdfsig() -> None:
    require(shutil.which("pdfsig") is not None, "pdfsig (poppler-utils)")


@pytest.fixture(scope="session")
def nss_db(tmp_path_factory, platform) -> str:
    """An NSS database trusting only our platform CA, so that pdfsig answers the trust question too."""
    require(shutil.which("certutil") is not None, "certutil (libnss3-tools)")
    db = tmp_path_factory.mktemp("nssdb")
    subprocess.run(["certutil", "-N", "-d", f"sql:{db}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(
        ["certutil", "-A", "-d", f"sql:{db}", "-n", "jianshen-platform-ca", "-t", "C,C,C", "-i", str(platform.ca_pem_path)],
        check=True,
        capture_output=True,
    )
    return f"sql:{db}"


def pdfsig(path: Path, nss_db: str | None = None) -> str:
    need_pdfsig()
    # No -no-ocsp: poppler 22 then reports "Unknown issue with Certificate"; our certificates name no OCSP responder,
    # so nothing is fetched anyway.
    cmd = ["pdfsig"] + (["-nssdir", nss_db] if nss_db else ["-nocert"]) + [str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return done.stdout + done.stderr
