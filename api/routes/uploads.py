"""``POST /uploads`` (multipart, field ``file``): store one material, answer its id.

The body is counted while it is read and refused as soon as it passes the size limit (plus room for the multipart
framing), with or without a ``Content-Length``, so a huge upload costs nothing. Every refusal is a JSON
``{"error": {"code", "message", "field"}}`` with the message in Chinese, and leaves no row and no file behind.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from api.domain.errors import DomainError
from api.routes.limits import BodyTooLarge, declared_too_large, limited
from api.services.uploads import store_upload, too_large_message

# Room for the boundaries and part headers around the file (a long file name, a few small fields).
MULTIPART_OVERHEAD = 64 * 1024
MAX_TEXT_FIELD = 4 * 1024  # a non-file field: nothing we read, so nothing big is needed
STATUS = {"UNAUTHENTICATED": 401, "FILE_TOO_LARGE": 413, "UNSUPPORTED_TYPE": 415}


def error(code: str, message: str, status: int | None = None, field: str | None = "file") -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status or STATUS.get(code, 400)
    )


async def upload(request: Request) -> JSONResponse:
    viewer = request.scope.get("state", {}).get("viewer")
    if viewer is None:
        return error("UNAUTHENTICATED", "请先登录", field=None)
    settings = request.app.state.settings
    limit = settings.upload_max_bytes
    if declared_too_large(request, limit + MULTIPART_OVERHEAD):
        return error("FILE_TOO_LARGE", too_large_message(limit))
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return error("BAD_REQUEST", "请以 multipart/form-data 格式上传，文件字段名为 file")
    request = limited(request, limit + MULTIPART_OVERHEAD)
    try:
        form = await request.form(max_files=1, max_fields=5, max_part_size=MAX_TEXT_FIELD)
    except BodyTooLarge:
        return error("FILE_TOO_LARGE", too_large_message(limit))
    except Exception:  # noqa: BLE001 - malformed multipart (starlette makes it an HTTPException), or a disconnect
        return error("BAD_REQUEST", "上传内容格式不正确，请重新选择文件上传")
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            return error("BAD_REQUEST", "缺少文件（字段名为 file）")
        data = await file.read(limit + 1)
        try:
            stored = await store_upload(
                viewer, filename=file.filename, data=data, upload_dir=settings.upload_dir, max_bytes=limit
            )
        except DomainError as exc:
            return error(exc.code, exc.message, field=exc.field)
    finally:
        await form.close()
    return JSONResponse(
        {
            "id": str(stored.id),
            "filename": stored.filename,
            "contentType": stored.content_type,
            "size": stored.size,
            "sha256": stored.sha256,
        },
        status_code=201,
    )
