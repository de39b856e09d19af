from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_conversation')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='request_id',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Certificate',
            name='request_id',
            field=fields.CharField(null=True, max_length=64),
        ),
    ]
