from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0009_exchange')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Certificate',
            name='issued_by_department_system',
            field=fields.BooleanField(default=False),
        ),
        ops.AddField(
            model_name='Certificate',
            name='file_ref',
            field=fields.CharField(null=True, max_length=500),
        ),
    ]
