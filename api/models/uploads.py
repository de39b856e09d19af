"""Uploaded materials. The bytes live under ``settings.upload_dir``; the row says who uploaded what."""

from tortoise import fields
from tortoise.models import Model


class Upload(Model):
    id = fields.UUIDField(primary_key=True)
    owner = fields.ForeignKeyField("models.User", related_name="uploads", on_delete=fields.RESTRICT)
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=100)  # sniffed from the content, not the name
    size = fields.IntField()
    sha256 = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "upload"
