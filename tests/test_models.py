"""The national codes are validated on every save, whatever writes the row (DOMAIN.md §2)."""

from decimal import Decimal

import pytest
from tortoise.exceptions import ValidationError

from api.models import Department, Organization, Project


async def test_codes_are_validated_on_save(world):
    with pytest.raises(ValidationError, match="统一社会信用代码"):
        await Organization.create(name="坏代码公司", uscc="91440400MA00000000", region_code="440402")
    with pytest.raises(ValidationError, match="统一社会信用代码"):
        await Department.create(code="BAD", name="坏部门", uscc="11440400000000000I", region_code="440400")
    with pytest.raises(ValidationError, match="项目代码"):
        await Project.create(
            code="2026-4404-01", name="坏项目", organization=world.organizations["builder"], process_type=3,
            region_code="440402", address="珠海", investment=Decimal("1"),
        )
    with pytest.raises(ValidationError, match="行政区划代码"):
        await Organization.create(name="坏区划公司", uscc="91350100M000100Y43", region_code="4404")
    assert await Organization.filter(name__startswith="坏").count() == 0
