from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_item_guides')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Department',
            name='previous_ingest_secret',
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name='Department',
            name='previous_ingest_secret_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
