"""Electronic seals and certificate PDFs (DOMAIN.md §6–7): platform CA, seal keys (encrypted at rest), seal images,
certificate rendering, PAdES signing and verification. Imports nothing from ``api`` (DESIGN.md §2).

Typical use (what the certificates service does when a case is approved)::

    ca = PlatformCA.open_or_create("var/esign", kek)                      # embedded mode
    seal = ca.issue_seal(kek=kek, seal_name=..., department_name=..., department_uscc=..., not_before=..., not_after=...)
    # store seal.certificate_pem, seal.encrypted_key, seal.serial_number and seal_png(name, type) with the seal
    signer = LocalSealSigner(seal, kek, chain=[ca.certificate])
    rendered = render_certificate(CertificateDocument(...))
    pdf = sign_pdf(rendered.pdf, signer, seal_image_png=image, seal_box=rendered.seal_box)
    result = verify_pdf(pdf, [ca.certificate], revoked_at=lambda serial: ...)
"""

from esign.ca import PlatformCA, SealCredentials
from esign.document import CertificateDocument, RenderedCertificate, render_certificate
from esign.keys import KeyDecryptionError
from esign.seal_image import draw_seal, seal_png
from esign.signer import LocalSealSigner, SealSigner
from esign.signing import sign_pdf
from esign.verify import VerificationResult, VerificationStatus, async_verify_pdf, verify_pdf

__all__ = [
    "CertificateDocument",
    "KeyDecryptionError",
    "LocalSealSigner",
    "PlatformCA",
    "RenderedCertificate",
    "SealCredentials",
    "SealSigner",
    "VerificationResult",
    "VerificationStatus",
    "async_verify_pdf",
    "draw_seal",
    "render_certificate",
    "seal_png",
    "sign_pdf",
    "verify_pdf",
]
