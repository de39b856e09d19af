"""PAdES signing of a certificate PDF with a seal (DOMAIN.md §7, 规程 12.1).

The signature is a real CAdES/PAdES signature (``ETSI.CAdES.detached``, SHA-256, signing time and the signing
certificate in the signed attributes) whose visible appearance is the seal image stamped over the issuing authority
line, so that any standard PDF reader shows the seal and any standard verifier (Acrobat, poppler's ``pdfsig``) checks
the signature.
"""

from __future__ import annotations

import functools
import io
import zlib

from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, Margins, SimpleBoxLayoutRule
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import StaticStampStyle

from esign.signer import SealSigner, digest_algorithm, pyhanko_signer

SIGNATURE_FIELD = "ElectronicSeal"
# Bytes reserved for the CMS container: an ECDSA signature, the seal and root certificates and the signed attributes
# take ~2 KiB; a fixed size avoids pyHanko's dry-run signature (which would cost an HSM or remote seal a call).
RESERVED_SIGNATURE_BYTES = 8192


def sign_pdf(
    pdf: bytes,
    seal: SealSigner,
    *,
    seal_image_png: bytes,
    seal_box: tuple[float, float, float, float],
    reason: str = "电子证照签发",
    location: str = "",
) -> bytes:
    """``pdf`` signed by ``seal``, the seal image visible in ``seal_box`` (points, bottom-left origin) on page 1.

    The signed signingTime attribute is the current time: it is what the verifier compares with the seal's revocation
    time. The file is changed only by an incremental update, so the rendered bytes stay as they were.
    """
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    image = _SealImage(seal_image_png, writer)
    style = StaticStampStyle(
        background=image,
        background_opacity=1.0,
        border_width=0,
        background_layout=SimpleBoxLayoutRule(
            x_align=AxisAlignment.ALIGN_MID, y_align=AxisAlignment.ALIGN_MID, margins=Margins.uniform(0)
        ),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm=digest_algorithm(seal),
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location or None,
        name=seal.certificate.subject.rfc4514_string(),
    )
    field_spec = fields.SigFieldSpec(sig_field_name=SIGNATURE_FIELD, on_page=0, box=tuple(int(round(v)) for v in seal_box))
    pdf_signer = signers.PdfSigner(meta, signer=pyhanko_signer(seal), stamp_style=style, new_field_spec=field_spec)
    out = io.BytesIO()
    pdf_signer.sign_pdf(writer, bytes_reserved=RESERVED_SIGNATURE_BYTES, output=out)
    return out.getvalue()


@functools.lru_cache(maxsize=16)
def _seal_streams(png: bytes) -> tuple[int, int, bytes, bytes]:
    """The seal image as the two deflated image streams pyHanko would write (colour and alpha), made once per image:
    decoding the PNG and deflating ~1 MB of pixels was ~40 % of signing. A few seals (one a department) are kept."""
    img = Image.open(io.BytesIO(png)).convert("RGBA")
    alpha = img.getchannel("A")
    return img.width, img.height, zlib.compress(img.convert("RGB").tobytes()), zlib.compress(alpha.tobytes())


class _SealImage(PdfImage):
    """The seal's image XObject (with its alpha as /SMask, as pyHanko's ``pil_image`` writes it) from cached streams."""

    def __init__(self, png: bytes, writer) -> None:
        self._streams = _seal_streams(png)
        width, height = self._streams[:2]
        super().__init__(image=None, writer=writer, box=BoxConstraints(width, height))  # type: ignore[arg-type]

    @property
    def image_ref(self) -> generic.IndirectObject:
        width, height, rgb, alpha = self._streams
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            def stream(data: bytes, colour_space: str, **extra) -> generic.StreamObject:
                return generic.StreamObject(
                    {
                        pdf_name("/Type"): pdf_name("/XObject"),
                        pdf_name("/Subtype"): pdf_name("/Image"),
                        pdf_name("/Width"): generic.NumberObject(width),
                        pdf_name("/Height"): generic.NumberObject(height),
                        pdf_name("/ColorSpace"): pdf_name(colour_space),
                        pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                        pdf_name("/Filter"): pdf_name("/FlateDecode"),
                        **extra,
                    },
                    encoded_data=data,
                )

            smask = self.writer.add_object(stream(alpha, "/DeviceGray"))
            self._image_ref = ref = self.writer.add_object(stream(rgb, "/DeviceRGB", **{pdf_name("/SMask"): smask}))
        return ref
