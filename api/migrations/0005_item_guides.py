from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_auto_20261124_2333')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ItemGuide',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.ApprovalItem', source_field='item_id', db_constraint=True, to_field='id', related_name='guides', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('digest', fields.CharField(max_length=64)),
                ('content', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'item_guide', 'app': 'models', 'unique_together': (('item', 'version'),), 'pk_attr': 'id', 'table_description': "One version of an item's 办事指南 (DOMAIN.md §12), as ``load-catalog`` resolved it from the data files."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Case',
            name='guide_version',
            field=fields.IntField(null=True),
        ),
    ]
