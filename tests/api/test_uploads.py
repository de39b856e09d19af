"""``POST /uploads`` through the real ASGI app: what is stored, and that every refusal stores nothing.

The limit is lowered to 100 000 bytes for this module so that "too large" costs little; the route adds the same
room for multipart framing whatever the limit.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import pytest

from api.models import Upload
from api.routes.uploads import MULTIPART_OVERHEAD

LIMIT = 100_000
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64
CJK = re.compile(r"[\u4e00-\u9fff]")


def zip_of(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<ofd:OFD xmlns:ofd='http://www.ofdspec.org/2016'/>")
    return buffer.getvalue()


OFD = zip_of("OFD.xml", "Doc_0/Document.xml")


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"upload_max_bytes": LIMIT})


def auth(world, user: str = "applicant") -> dict[str, str]:
    return {"Authorization": f"Bearer {world.token(user)}"}


async def post_file(client, world, name: str, data: bytes, content_type: str = "application/pdf"):
    return await client.post("/uploads", files={"file": (name, data, content_type)}, headers=auth(world))


async def assert_nothing_stored(settings) -> None:
    assert await Upload.all().count() == 0
    directory = settings.upload_dir
    assert not directory.exists() or list(directory.iterdir()) == []


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert CJK.search(error["message"]), error  # for the user, in Chinese


class Sent:
    """A streamed request body that counts what the server actually pulled from it."""

    def __init__(self) -> None:
        self.bytes = 0

    def multipart(self, filename: str, chunks, boundary: str = "jianshen-test-boundary"):
        async def generate():
            for piece in self._frame(filename, chunks, boundary):
                self.bytes += len(piece)
                yield piece

        return generate(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}

    @staticmethod
    def _frame(filename, chunks, boundary):
        yield (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        yield from chunks
        yield f"\r\n--{boundary}--\r\n".encode()


@pytest.mark.parametrize(
    "name, data, content_type",
    [
        ("申请表.pdf", PDF, "application/pdf"),
        ("现场照片.jpg", JPEG, "image/jpeg"),
        ("红线图.pdf", PNG, "image/png"),  # the name says PDF, the content is PNG: the content wins
        ("批复.ofd", OFD, "application/ofd"),
    ],
)
async def test_upload_stores_row_and_file_with_sniffed_type(client, world, settings, name, data, content_type):
    response = await post_file(client, world, name, data, "application/octet-stream")
    assert response.status_code == 201, response.text
    body = response.json()
    sha = hashlib.sha256(data).hexdigest()
    assert body == {"id": body["id"], "filename": name, "contentType": content_type, "size": len(data), "sha256": sha}
    row = await Upload.get(id=body["id"])
    assert (row.owner_id, row.filename, row.content_type, row.size, row.sha256) == (
        world.users["applicant"].id, name, content_type, len(data), sha
    )
    assert (settings.upload_dir / row.id.hex).read_bytes() == data
    assert list(settings.upload_dir.iterdir()) == [settings.upload_dir / row.id.hex]


async def test_upload_of_exactly_the_limit_is_accepted(client, world):
    data = PDF + b"0" * (LIMIT - len(PDF))
    response = await post_file(client, world, "大图.pdf", data)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == LIMIT


async def test_file_name_is_reduced_to_its_last_component(client, world, settings):
    response = await post_file(client, world, "..\\..\\../etc/申请表.pdf", PDF)
    assert response.status_code == 201, response.text
    assert response.json()["filename"] == "申请表.pdf"
    assert [p.parent for p in settings.upload_dir.iterdir()] == [settings.upload_dir]


@pytest.mark.parametrize(
    "name, data, status, code",
    [
        ("申请表.pdf", EXE, 415, "UNSUPPORTED_TYPE"),  # a program renamed .pdf
        ("申请表.exe", EXE, 415, "UNSUPPORTED_TYPE"),
        ("材料.zip", OFD, 415, "UNSUPPORTED_TYPE"),  # a zip only as an OFD
        ("材料.pdf", OFD, 415, "UNSUPPORTED_TYPE"),
        ("假的.ofd", zip_of("evil.sh"), 415, "UNSUPPORTED_TYPE"),  # named .ofd, but not an OFD inside
        ("坏的.ofd", b"PK\x03\x04" + b"\x00" * 40, 415, "UNSUPPORTED_TYPE"),  # a broken zip
        ("说明.txt", "这是一段文字".encode(), 415, "UNSUPPORTED_TYPE"),
        ("空.pdf", b"", 400, "EMPTY_FILE"),
        ("超大.pdf", PDF + b"0" * (LIMIT + 1 - len(PDF)), 413, "FILE_TOO_LARGE"),  # one byte over, declared length ok
    ],
)
async def test_refused_file_leaves_no_row_and_no_file(client, world, settings, name, data, status, code):
    response = await post_file(client, world, name, data)
    assert_refused(response, status, code)
    assert response.json()["error"]["field"] == "file"
    await assert_nothing_stored(settings)


async def test_declared_too_large_is_refused_before_reading_the_body(client, world, settings):
    sent = Sent()
    total = LIMIT + MULTIPART_OVERHEAD + 1
    stream, headers = sent.multipart("大.pdf", [b"%PDF-" + b"0" * (total - 5)])
    headers |= {"Content-Length": str(total + 200), **auth(world)}
    response = await client.post("/uploads", content=stream, headers=headers)
    assert_refused(response, 413, "FILE_TOO_LARGE")
    assert sent.bytes == 0
    await assert_nothing_stored(settings)


async def test_chunked_too_large_is_refused_while_reading(client, world, settings):
    """No Content-Length: the server stops pulling the body soon after the limit, not at the end of the stream."""
    sent = Sent()
    chunk = 16 * 1024
    chunks = [b"%PDF-" + b"0" * (chunk - 5)] + [b"0" * chunk] * (10 * LIMIT // chunk)
    stream, headers = sent.multipart("大.pdf", chunks)
    response = await client.post("/uploads", content=stream, headers=headers | auth(world))
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_refused(response, 413, "FILE_TOO_LARGE")
    assert sent.bytes <= LIMIT + MULTIPART_OVERHEAD + chunk
    assert sent.bytes < sum(map(len, chunks)) / 2
    await assert_nothing_stored(settings)


async def test_chunked_upload_within_the_limit_is_stored(client, world, settings):
    sent = Sent()
    data = PDF + b"0" * 50_000
    stream, headers = sent.multipart("分块.pdf", [data[i : i + 8192] for i in range(0, len(data), 8192)])
    response = await client.post("/uploads", content=stream, headers=headers | auth(world))
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(data).hexdigest()
    assert (settings.upload_dir / (await Upload.get()).id.hex).read_bytes() == data


async def test_anonymous_upload_is_refused(client, world, settings):
    response = await client.post("/uploads", files={"file": ("申请表.pdf", PDF, "application/pdf")})
    assert_refused(response, 401, "UNAUTHENTICATED")
    await assert_nothing_stored(settings)


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz"])
async def test_bad_token_is_refused(client, world, settings, header):
    response = await client.post(
        "/uploads", files={"file": ("申请表.pdf", PDF, "application/pdf")}, headers={"Authorization": header}
    )
    assert response.status_code == 401, response.text
    # The token is checked before any route (api/middleware.py): the same answer as for GraphQL.
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert CJK.search(error["message"])
    await assert_nothing_stored(settings)


async def test_token_of_a_deactivated_user_is_refused(client, world, settings):
    token = auth(world)
    world.users["applicant"].is_active = False
    await world.users["applicant"].save()
    response = await client.post("/uploads", files={"file": ("申请表.pdf", PDF, "application/pdf")}, headers=token)
    assert response.status_code == 401
    await assert_nothing_stored(settings)


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"json": {"file": "JVBERi0x"}},  # not multipart
        {"files": {"document": ("申请表.pdf", PDF, "application/pdf")}},  # wrong field name
        {"data": {"file": "%PDF-1.7 as a text field"}, "files": {"other": ("x.pdf", PDF)}},  # file as a text field
        {"content": b"--x\r\nnonsense", "headers": {"Content-Type": "multipart/form-data; boundary=x"}},
        {"content": b"--x\r\n", "headers": {"Content-Type": "multipart/form-data"}},  # no boundary
        {
            "files": [("file", ("a.pdf", PDF, "application/pdf")), ("file", ("b.pdf", PDF, "application/pdf"))],
        },  # two files
    ],
    ids=["json", "wrong-field", "text-field", "malformed", "no-boundary", "two-files"],
)
async def test_bad_request_is_refused_with_a_code(client, world, settings, request_kwargs):
    headers = request_kwargs.pop("headers", {}) | auth(world)
    response = await client.post("/uploads", headers=headers, **request_kwargs)
    assert_refused(response, 400, "BAD_REQUEST")
    await assert_nothing_stored(settings)
