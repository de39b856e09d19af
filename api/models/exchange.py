"""Where the data-sharing exchange (数据共享交换, DOMAIN.md §13) stands: one watermark per exchange database."""

from tortoise import fields
from tortoise.models import Model


class ExchangeWatermark(Model):
    """The last case event and project pushed to one exchange database (前置库), where the next push starts."""

    target = fields.CharField(max_length=200, primary_key=True)  # host:port/database of the exchange, no credentials
    last_event_id = fields.BigIntField(default=0)
    last_project_id = fields.IntField(default=0)
    pushed_at = fields.DatetimeField()

    class Meta:
        table = "exchange_watermark"
