"""Uploaded materials: the type is sniffed from the content, never trusted from the name; size is capped.

The bytes are written first and the row second; if either fails the file is removed, so a refusal or an error leaves
neither a row nor a file.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from pathlib import Path

import anyio.to_thread

from api.domain.errors import DomainError
from api.models import Upload
from api.services.access import Viewer

PDF, PNG, JPEG, OFD = "application/pdf", "image/png", "image/jpeg", "application/ofd"
# Magic numbers of the types a material may have: PDF, OFD (a zip container, 版式文档 GB/T 33190), JPEG, PNG.
SIGNATURES: list[tuple[bytes, str]] = [
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"PK\x03\x04", OFD),
]
MAX_NAME = 200
UNSUPPORTED = "仅支持 PDF、OFD、JPG、PNG 格式的材料，请检查文件内容"


def too_large_message(max_bytes: int) -> str:
    if max_bytes >= 1024 * 1024:
        return f"文件不能超过{max_bytes // (1024 * 1024)}MB"
    return f"文件不能超过{max(1, max_bytes // 1024)}KB"


def is_ofd(data: bytes) -> bool:
    """An OFD document is a zip whose root holds ``OFD.xml`` (GB/T 33190 §7.1); reading the zip's directory is cheap."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.lower() == "ofd.xml" for name in archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError, NotImplementedError):
        return False


def sniff(data: bytes, filename: str) -> str:
    """The content type from the first bytes. A zip is accepted only as an OFD: named ``.ofd`` and really one."""
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            if content_type == OFD and not (filename.lower().endswith(".ofd") and is_ofd(data)):
                break
            return content_type
    raise DomainError("UNSUPPORTED_TYPE", UNSUPPORTED, "file")


def clean_filename(name: str | None) -> str:
    """The last path component, printable characters only, never empty."""
    name = Path((name or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_NAME]
    return name or "材料"


async def store_upload(
    viewer: Viewer, *, filename: str | None, data: bytes, upload_dir: Path, max_bytes: int
) -> Upload:
    if not data:
        raise DomainError("EMPTY_FILE", "文件为空，请重新选择", "file")
    if len(data) > max_bytes:
        raise DomainError("FILE_TOO_LARGE", too_large_message(max_bytes), "file")
    name = clean_filename(filename)
    content_type = sniff(data, name)
    upload_id = uuid.uuid4()
    path = upload_dir / upload_id.hex
    try:
        await anyio.to_thread.run_sync(_write, path, data)
        return await Upload.create(
            id=upload_id,
            owner_id=viewer.user_id,
            filename=name,
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
