from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_request_ids')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ExchangeWatermark',
            fields=[
                ('target', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=200)),
                ('last_event_id', fields.BigIntField(default=0)),
                ('last_project_id', fields.IntField(default=0)),
                ('pushed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'exchange_watermark', 'app': 'models', 'pk_attr': 'target', 'table_description': 'The last case event and project pushed to one exchange database (前置库), where the next push starts.'},
            bases=['Model'],
        ),
    ]
