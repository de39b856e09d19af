"""Projects (工程建设项目), identified for life by their 项目代码, and their buildings."""

from tortoise import fields
from tortoise.models import Model

from api.models.validators import ProjectCodeValidator, RegionCodeValidator


class Project(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=24, unique=True, validators=[ProjectCodeValidator()])  # 项目代码 (GB/T 40058)
    name = fields.CharField(max_length=200)
    organization = fields.ForeignKeyField("models.Organization", related_name="projects", on_delete=fields.RESTRICT)
    process_type = fields.IntField()  # SPLCLX
    region_code = fields.CharField(max_length=6, db_index=True, validators=[RegionCodeValidator()])
    address = fields.CharField(max_length=300)
    investment = fields.DecimalField(max_digits=14, decimal_places=2)  # 总投资, 万元
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "project"


class Building(Model):
    id = fields.IntField(primary_key=True)
    project = fields.ForeignKeyField("models.Project", related_name="buildings", on_delete=fields.CASCADE)
    building_code = fields.CharField(max_length=64, unique=True)  # 单体房屋编码
    name = fields.CharField(max_length=100)
    floor_area = fields.DecimalField(max_digits=12, decimal_places=2)  # 平方米
    floors = fields.IntField()

    class Meta:
        table = "building"
