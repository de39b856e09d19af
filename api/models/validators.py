"""Field validators: the national codes are checked whenever a row is saved, whatever wrote it (DOMAIN.md §2)."""

from tortoise.exceptions import ValidationError
from tortoise.validators import Validator

from api.domain.codes import is_valid_project_code, is_valid_region_code, is_valid_uscc


class USCCValidator(Validator):
    """统一社会信用代码 (GB 32100-2015), check character included."""

    def __call__(self, value: str) -> None:
        if not is_valid_uscc(value):
            raise ValidationError(f"统一社会信用代码 {value!r} 无效")


class ProjectCodeValidator(Validator):
    """项目代码 (GB/T 40058-2021): the shape only; the check-digit algorithm is not public."""

    def __call__(self, value: str) -> None:
        if not is_valid_project_code(value):
            raise ValidationError(f"项目代码 {value!r} 格式不正确")


class RegionCodeValidator(Validator):
    """管辖属地编码: 6 digits (GB/T 2260)."""

    def __call__(self, value: str) -> None:
        if value is not None and not is_valid_region_code(value):
            raise ValidationError(f"行政区划代码 {value!r} 格式不正确")
