"""The working-day calendar: one row per year of the State Council's holiday schedule, loaded by the operator."""

from tortoise import fields
from tortoise.models import Model


class CalendarYear(Model):
    year = fields.IntField(primary_key=True)
    source = fields.CharField(max_length=300)  # the notice the schedule comes from
    holidays = fields.JSONField()  # [{"date": "2026-10-01", "name": "国庆节"}, ...]
    workdays = fields.JSONField()  # make-up working days (调休上班)
    loaded_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "calendar_year"
