"""Certificate routes outside GraphQL (DESIGN.md §2, DOMAIN.md §6 verification [珠海]).

- ``GET /certificates/{id}/pdf?expires=…&sig=…``: the signed PDF, by the short-lived link ``certificate.downloadUrl``
  gives (HMAC over id and expiry; no login needed, so the mini-program can hand it to ``wx.downloadFile``). A
  certificate whose PDF is not made yet is made now (the crash-before-PDF recovery, idempotent).
- ``GET /verify/{identifier}?c=CHECKCODE`` (the QR code's target) and ``GET /verify?identifier=…&c=…`` (the form):
  a mobile-friendly Chinese page saying valid / revoked / expired / superseded / unknown, the holder's name masked.
  A wrong check code answers exactly like an unknown identifier.
- ``POST /verify`` (multipart field ``file``, or a raw ``application/pdf`` body): is the seal signature intact, made by
  a seal of this platform, not after that seal's revocation; and which certificate it is. JSON.
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from api.db import key_max
from api.domain.certificates import CertificateStatus, format_chinese_date, validity_label
from api.domain.ids import parse_key
from api.models import Certificate
from api.models.certificates import StoredCertificateStatus
from api.routes.limits import BodyTooLarge, declared_too_large, limited
from api.services import certificates as service
from api.services.sealer import SealingFailed

MULTIPART_OVERHEAD = 64 * 1024

log = logging.getLogger("jianshen.certificates")


def _now(request: Request):
    return request.app.state.clock()


# -- download -----------------------------------------------------------------------------------------------------------


async def download(request: Request) -> Response:
    settings = request.app.state.settings
    # Not Starlette's ``:int`` converter: 5,000 digits would raise in it, 2^40 overflow PostgreSQL's int4.
    certificate_id = parse_key(request.path_params["certificate_id"], key_max(Certificate))
    if certificate_id is None:
        return _error(404, "NOT_FOUND", "证照不存在")
    expires = request.query_params.get("expires", "")
    sig = request.query_params.get("sig", "")
    now = _now(request)
    if not service.download_link_valid(settings, certificate_id, expires, sig, now):
        return _error(403, "LINK_INVALID", "下载链接无效或已过期，请在小程序中重新打开证照")
    certificate = await Certificate.get_or_none(id=certificate_id)
    if certificate is None:
        return _error(404, "NOT_FOUND", "证照不存在")
    if certificate.issued_by_department_system and not certificate.pdf_path:
        return _error(404, "FILE_NOT_HERE", service.NO_FILE_HERE)
    try:
        certificate = await service.ensure_pdf(settings, certificate.id, now=now)
    except SealingFailed:  # the sealing child failed, died or hung: the sweep or the next download retries it
        log.exception("certificate PDF failed", extra={"fields": {"id": certificate.id}})
        busy = _error(503, "PDF_NOT_READY", "证照文件正在生成，请稍后再试")
        busy.headers["Retry-After"] = "5"
        return busy
    # The link outlives a revocation by up to JIANSHEN_CERTIFICATE_DOWNLOAD_TTL: the status is read now, not when the
    # link was made (a revoked or superseded certificate's downloadUrl is null, so its link must not work either).
    if certificate.status is not StoredCertificateStatus.VALID:
        return _error(410, "CERTIFICATE_NOT_VALID", "该证照已撤销或已被新版本替代，不再提供下载")
    path = service.pdf_file(settings, certificate)
    if path is None or not path.exists():
        return _error(503, "PDF_NOT_READY", certificate.pdf_pending_reason or "证照文件正在生成，请稍后再试")
    filename = f"{certificate.name}-{certificate.number}.pdf"
    return Response(
        path.read_bytes(),
        media_type="application/pdf",
        headers={
            # Never shown inline by the browser (its text comes from applications): saved as a file, not sniffed,
            # and sandboxed should a browser render it anyway.
            "Content-Disposition": f"attachment; filename=\"certificate-{certificate.id}.pdf\"; "
            f"filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


RATE_LIMITED_MESSAGE = "核验请求过于频繁，请稍后再试"


async def _over_limit(request: Request, endpoint: str) -> int | None:
    """Seconds to wait when this client has used up the public verification limit (api/ratelimit.py), else None."""
    from api.ratelimit import client_address

    settings = request.app.state.settings
    return await request.app.state.rate_limiter.retry_after(
        f"{endpoint}:{client_address(request)}", limit=settings.public_verify_per_minute, window=60,
        now=_now(request).timestamp(),
    )


# -- the public page ----------------------------------------------------------------------------------------------------

_COLOURS = {
    CertificateStatus.VALID: "#1a7f37",
    CertificateStatus.REVOKED: "#c0262d",
    CertificateStatus.EXPIRED: "#9a6700",
    CertificateStatus.SUPERSEDED: "#9a6700",
}
_HEADLINES = {
    CertificateStatus.VALID: "✔ 证照有效",
    CertificateStatus.REVOKED: "✘ 证照已撤销",
    CertificateStatus.EXPIRED: "⚠ 证照已过期",
    CertificateStatus.SUPERSEDED: "⚠ 证照已被新版本替代",
}


async def verify_page(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    if (wait := await _over_limit(request, "verify-page")) is not None:
        body = f'<div class="result"><h2>{RATE_LIMITED_MESSAGE}</h2><p>请约{wait}秒后重试。</p></div>'
        return _html("电子证照核验", body, 429, {"Retry-After": str(wait)})
    identifier = request.path_params.get("identifier") or request.query_params.get("identifier", "")
    code = request.query_params.get("c", "")
    if not identifier and not code:
        return _html("电子证照核验", _form("", "") + _upload_form())
    view = await service.lookup_public(settings, identifier, code, _now(request))
    if view is None:
        body = (
            '<div class="result" style="border-color:#6e7781"><h2 style="color:#6e7781">未查询到该证照</h2>'
            "<p>证照标识或校验码不正确，或本平台未签发该证照。请核对证照上印制的证照标识和校验码后重试。</p></div>"
            + _form(identifier, code)
        )
        return _html("电子证照核验", body, 404)
    return _html("电子证照核验", _result(view))


def _result(view: service.PublicView) -> str:
    c, status = view.certificate, view.status
    rows = [
        ("证照名称", c.name),
        ("证照类型", c.type_name),
        ("证照编号", c.number),
        ("持证主体", view.holder_masked),
        ("颁发机构", c.issuer_name),
        ("颁发日期", format_chinese_date(c.issue_date)),
        ("有效期", validity_label(c.valid_from, c.valid_until)),
        ("证照标识", c.identifier),
    ]
    if status is CertificateStatus.REVOKED and c.revoked_at is not None:
        rows.append(("撤销原因", c.revoke_reason or ""))
    if c.issued_by_department_system:
        rows.append(("签发方式", service.issued_by_label(c)))
    colour = _COLOURS[status]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return (
        f'<div class="result" style="border-color:{colour}"><h2 style="color:{colour}">{_HEADLINES[status]}</h2>'
        f"<p>状态：{html.escape(status.label)}</p></div><table>{table}</table>"
        + _upload_form()
    )


def _upload_result(result, view: service.PublicView | None) -> str:
    colour = "#1a7f37" if result.valid else "#c0262d"
    headline = "✔ 电子印章签名有效" if result.valid else "✘ 文件未通过核验"
    body = (
        f'<div class="result" style="border-color:{colour}"><h2 style="color:{colour}">{headline}</h2>'
        f"<p>{html.escape(result.message)}</p></div>"
    )
    return body + (_result(view) if view is not None else _upload_form())


def _upload_form() -> str:
    return (
        '<form method="post" action="/verify" enctype="multipart/form-data"><label>上传证照PDF文件核验电子印章'
        '<input type="file" name="file" accept="application/pdf"></label><button type="submit">核验文件</button></form>'
    )


def _form(identifier: str, code: str) -> str:
    return (
        '<form method="get" action="/verify"><label>证照标识<input name="identifier" value="'
        f'{html.escape(identifier)}" autocomplete="off"></label><label>校验码<input name="c" value="{html.escape(code)}"'
        ' autocomplete="off" placeholder="如 ABCD-2345"></label><button type="submit">核验</button></form>'
    )


_STYLE = """
body{font-family:-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;padding:16px;
background:#f6f8fa;color:#1f2328;font-size:16px}
h1{font-size:20px;text-align:center} .result{background:#fff;border-left:6px solid;padding:12px 16px;margin:12px 0}
h2{margin:4px 0;font-size:22px} table{width:100%;background:#fff;border-collapse:collapse}
th,td{text-align:left;padding:8px;border-bottom:1px solid #d0d7de;vertical-align:top;word-break:break-all}
th{width:6em;color:#57606a;font-weight:normal} .note{color:#57606a;font-size:14px}
form{background:#fff;padding:12px} label{display:block;margin:8px 0} input{display:block;width:100%;
box-sizing:border-box;font-size:16px;padding:8px;margin-top:4px} button{width:100%;padding:10px;font-size:16px}
"""
# The page is public and shows what others typed (identifiers, names): no script at all, only its own style sheet (by
# hash), forms posting back here, never framed (clickjacking), and no Referer carrying the check code (?c=) away.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    + "'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _html(title: str, body: str, status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(_page(title, body), status_code=status_code, headers=PAGE_HEADERS | (headers or {}))


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}</style></head>
<body><h1>{html.escape(title)}</h1>{body}</body></html>
"""


# -- uploaded PDF -------------------------------------------------------------------------------------------------------


async def verify_upload(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    if (wait := await _over_limit(request, "verify-upload")) is not None:
        response = _error(429, "RATE_LIMITED", RATE_LIMITED_MESSAGE)
        response.headers["Retry-After"] = str(wait)
        return response
    limit = settings.verify_upload_max_bytes
    too_large = f"文件超过{limit // (1024 * 1024) or 1}MB，无法核验"
    if declared_too_large(request, limit + MULTIPART_OVERHEAD):
        return _error(413, "FILE_TOO_LARGE", too_large)
    content_type = request.headers.get("content-type", "").lower()
    request = limited(request, limit + MULTIPART_OVERHEAD)
    try:
        if content_type.startswith("application/pdf"):
            data = await request.body()
        elif content_type.startswith("multipart/form-data"):
            form = await request.form(max_files=1, max_fields=2, max_part_size=4096)
            try:
                file = form.get("file")
                if not isinstance(file, UploadFile):
                    return _error(400, "BAD_REQUEST", "缺少文件（字段名为 file）")
                data = await file.read(limit + 1)
            finally:
                await form.close()
        else:
            return _error(400, "BAD_REQUEST", "请以 multipart/form-data（字段名 file）或 application/pdf 上传PDF文件")
    except BodyTooLarge:
        return _error(413, "FILE_TOO_LARGE", too_large)
    except Exception:  # noqa: BLE001 - malformed multipart or a disconnect
        return _error(400, "BAD_REQUEST", "上传内容格式不正确")
    if len(data) > limit:
        return _error(413, "FILE_TOO_LARGE", too_large)
    result, view = await service.verify_upload(settings, data, _now(request))
    if "text/html" in request.headers.get("accept", ""):  # the page's upload form, in a browser
        return _html("电子证照文件核验", _upload_result(result, view))
    certificate = None
    if view is not None:
        c = view.certificate
        certificate = {
            "identifier": c.identifier,
            "name": c.name,
            "number": c.number,
            "holder": view.holder_masked,
            "issuer": c.issuer_name,
            "issueDate": c.issue_date.isoformat(),
            "validUntil": c.valid_until.isoformat(),
            "status": view.status.value,
            "statusLabel": view.status.label,
        }
    return JSONResponse(
        {
            "status": result.status.value,
            "valid": result.valid,
            "message": result.message,
            "identifier": result.identifier,
            "signedAt": result.signed_at.isoformat() if result.signed_at else None,
            "sealName": result.seal_name,
            "department": result.department,
            "sealRevokedAt": result.seal_revoked_at.isoformat() if result.seal_revoked_at else None,
            "certificate": certificate,
        }
    )
