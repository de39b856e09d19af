from tortoise import migrations
from tortoise.migrations import operations as ops
from api.models.certificates import SealStatus, StoredCertificateStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_auto_20261124_2312')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Seal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='seals', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=200)),
                ('seal_type', fields.CharField(max_length=50)),
                ('serial', fields.CharField(unique=True, max_length=64)),
                ('certificate_pem', fields.TextField(unique=False)),
                ('encrypted_key', fields.BinaryField()),
                ('image_png', fields.BinaryField()),
                ('valid_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('valid_to', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=SealStatus.ACTIVE, description='ACTIVE: ACTIVE\nREVOKED: REVOKED', enum_type=SealStatus, max_length=16)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoke_reason', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'seal', 'app': 'models', 'indexes': [Index(fields=['department_id', 'status'])], 'pk_attr': 'id', 'table_description': 'A seal of a department: its image, an ECDSA key (encrypted) and the X.509 certificate issued by the platform CA'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Certificate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.RESTRICT)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.RESTRICT)),
                ('type_code', fields.CharField(max_length=64)),
                ('type_name', fields.CharField(max_length=200)),
                ('name', fields.CharField(max_length=200)),
                ('number', fields.CharField(max_length=100)),
                ('identifier', fields.CharField(unique=True, max_length=120)),
                ('version', fields.IntField(default=1)),
                ('holder_name', fields.CharField(max_length=200)),
                ('holder_code', fields.CharField(max_length=18)),
                ('holder_code_type', fields.CharField(max_length=3)),
                ('issuer_name', fields.CharField(max_length=200)),
                ('issuer_uscc', fields.CharField(max_length=18)),
                ('issue_date', fields.DateField()),
                ('valid_from', fields.DateField()),
                ('valid_until', fields.DateField()),
                ('region_code', fields.CharField(max_length=6)),
                ('fields_data', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('status', fields.CharEnumField(default=StoredCertificateStatus.VALID, description='VALID: VALID\nREVOKED: REVOKED\nSUPERSEDED: SUPERSEDED', enum_type=StoredCertificateStatus, max_length=16)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoke_reason', fields.CharField(null=True, max_length=500)),
                ('superseded_by', fields.ForeignKeyField('models.Certificate', source_field='superseded_by_id', null=True, db_constraint=True, to_field='id', related_name='supersedes', on_delete=OnDelete.RESTRICT)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seal', fields.ForeignKeyField('models.Seal', source_field='seal_id', null=True, db_constraint=True, to_field='id', related_name='certificates', on_delete=OnDelete.RESTRICT)),
                ('pdf_path', fields.CharField(null=True, max_length=300)),
                ('pdf_sha256', fields.CharField(null=True, max_length=64)),
                ('signed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pdf_pending_reason', fields.CharField(null=True, max_length=300)),
            ],
            options={'table': 'certificate', 'app': 'models', 'indexes': [Index(fields=['organization_id', 'id']), Index(fields=['department_id', 'id'])], 'pk_attr': 'id', 'table_description': 'One version of an electronic certificate, with the metadata of the national sharing table (GB/T 36903)'},
            bases=['Model'],
        ),
    ]
