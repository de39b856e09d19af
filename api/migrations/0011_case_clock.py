from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from api.domain.timing import LimitUnit

class Migration(migrations.Migration):
    dependencies = [('models', '0010_ingest')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CaseClock',
            fields=[
                ('case_id', fields.IntField(generated=False, primary_key=True, unique=True, db_index=True)),
                ('limit_days', fields.IntField()),
                ('limit_unit', fields.CharEnumField(description='WD: WD\nND: ND', enum_type=LimitUnit, max_length=2)),
                ('warning_days', fields.IntField()),
                ('accepted_on', fields.DateField(null=True)),
                ('last_on', fields.DateField(null=True)),
                ('used', fields.IntField(null=True)),
                ('due_on', fields.DateField(null=True)),
                ('running', fields.BooleanField(default=False)),
                ('stopped', fields.BooleanField(default=False)),
                ('provisional', fields.BooleanField(default=False)),
            ],
            options={'table': 'case_clock', 'app': 'models', 'pk_attr': 'case_id', 'table_description': "Read model of each case's clock (api/services/clocks.py), kept with its events."},
            bases=['Model'],
        ),
    ]
