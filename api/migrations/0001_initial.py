from tortoise import migrations
from tortoise.migrations import operations as ops
from api.domain.accounts import Role
from api.domain.catalog import ItemKind
from api.domain.lifecycle import Action, Party
from api.domain.timing import CaseState, LimitUnit
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='CalendarYear',
            fields=[
                ('year', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('source', fields.CharField(max_length=300)),
                ('holidays', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('workdays', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('loaded_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'calendar_year', 'app': 'models', 'pk_attr': 'year'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Department',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=200)),
                ('uscc', fields.CharField(unique=True, max_length=18)),
                ('region_code', fields.CharField(max_length=6)),
                ('ingest_secret', fields.CharField(null=True, max_length=128)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'department', 'app': 'models', 'pk_attr': 'id', 'table_description': '审批服务单位: decides cases and may push events from its own system (signed with ``ingest_secret``).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ApprovalItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=200)),
                ('kind', fields.CharEnumField(description='ADMINISTRATIVE_LICENSE: ADMINISTRATIVE_LICENSE\nTECHNICAL_REVIEW: TECHNICAL_REVIEW\nINTERMEDIARY_SERVICE: INTERMEDIARY_SERVICE\nUTILITY_SERVICE: UTILITY_SERVICE\nFILING: FILING\nOTHER: OTHER', enum_type=ItemKind, max_length=32)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'approval_item', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Organization',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=200)),
                ('uscc', fields.CharField(unique=True, max_length=18)),
                ('region_code', fields.CharField(max_length=6)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'organization', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A company or body that builds: owner of projects, holder of certificates. Identified by its USCC.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProcessTemplate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('process_type', fields.IntField(unique=True)),
                ('name', fields.CharField(max_length=100)),
            ],
            options={'table': 'process_template', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Project',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=24)),
                ('name', fields.CharField(max_length=200)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='projects', on_delete=OnDelete.RESTRICT)),
                ('process_type', fields.IntField()),
                ('region_code', fields.CharField(db_index=True, max_length=6)),
                ('address', fields.CharField(max_length=300)),
                ('investment', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'project', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Building',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='buildings', on_delete=OnDelete.CASCADE)),
                ('building_code', fields.CharField(unique=True, max_length=64)),
                ('name', fields.CharField(max_length=100)),
                ('floor_area', fields.DecimalField(max_digits=12, decimal_places=2)),
                ('floors', fields.IntField()),
            ],
            options={'table': 'building', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TemplateStage',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template', fields.ForeignKeyField('models.ProcessTemplate', source_field='template_id', db_constraint=True, to_field='id', related_name='stages', on_delete=OnDelete.CASCADE)),
                ('stage', fields.IntField()),
                ('lead_department', fields.ForeignKeyField('models.Department', source_field='lead_department_id', db_constraint=True, to_field='id', related_name='led_stages', on_delete=OnDelete.RESTRICT)),
                ('form_fields', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('materials', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'template_stage', 'app': 'models', 'unique_together': (('template', 'stage'),), 'pk_attr': 'id', 'table_description': 'One stage of a template: one lead department, one form, one set of materials (一家牵头、一张表单).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TemplateItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('template_stage', fields.ForeignKeyField('models.TemplateStage', source_field='template_stage_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE)),
                ('item', fields.ForeignKeyField('models.ApprovalItem', source_field='item_id', db_constraint=True, to_field='id', related_name='template_entries', on_delete=OnDelete.RESTRICT)),
                ('limit_days', fields.IntField()),
                ('limit_unit', fields.CharEnumField(default=LimitUnit.WD, description='WD: WD\nND: ND', enum_type=LimitUnit, max_length=2)),
                ('warning_days', fields.IntField(default=2)),
                ('predecessor_codes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('certificate_type', fields.CharField(null=True, max_length=64)),
                ('sort', fields.IntField(default=0)),
            ],
            options={'table': 'template_item', 'app': 'models', 'unique_together': (('template_stage', 'item'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='User',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('display_name', fields.CharField(max_length=100)),
                ('role', fields.CharEnumField(description='APPLICANT: APPLICANT\nCITIZEN: CITIZEN\nWINDOW_CLERK: WINDOW_CLERK\nAPPROVER: APPROVER\nSUPERVISOR: SUPERVISOR\nADMIN: ADMIN', enum_type=Role, max_length=16)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', null=True, db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='staff', on_delete=OnDelete.RESTRICT)),
                ('region_code', fields.CharField(null=True, max_length=6)),
                ('openid', fields.CharField(null=True, unique=True, max_length=64)),
                ('phone', fields.CharField(null=True, max_length=20)),
                ('username', fields.CharField(null=True, unique=True, max_length=64)),
                ('password_hash', fields.CharField(null=True, max_length=255)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'app_user', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Application',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.RESTRICT)),
                ('stage', fields.IntField()),
                ('form', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('materials', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('parallel_instance_code', fields.CharField(unique=True, max_length=40)),
                ('applicant', fields.ForeignKeyField('models.User', source_field='applicant_id', db_constraint=True, to_field='id', related_name='applications', on_delete=OnDelete.RESTRICT)),
                ('idempotency_key', fields.CharField(null=True, unique=True, max_length=120)),
                ('submitted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'application', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Case',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=48)),
                ('application', fields.ForeignKeyField('models.Application', source_field='application_id', db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('item', fields.ForeignKeyField('models.ApprovalItem', source_field='item_id', db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', db_constraint=True, to_field='id', related_name='cases', on_delete=OnDelete.RESTRICT)),
                ('stage', fields.IntField()),
                ('limit_days', fields.IntField()),
                ('limit_unit', fields.CharEnumField(description='WD: WD\nND: ND', enum_type=LimitUnit, max_length=2)),
                ('warning_days', fields.IntField()),
                ('predecessor_codes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('certificate_type', fields.CharField(null=True, max_length=64)),
                ('state', fields.CharEnumField(description='RECEIVED: RECEIVED\nWITHDRAWN: WITHDRAWN\nACCEPTED: ACCEPTED\nNOT_ACCEPTED: NOT_ACCEPTED\nREFUSED: REFUSED\nCORRECTION: CORRECTION\nCORRECTED: CORRECTED\nIN_PROGRESS: IN_PROGRESS\nSPECIAL_PROCEDURE: SPECIAL_PROCEDURE\nAPPROVED: APPROVED\nAPPROVED_DEFICIENT: APPROVED_DEFICIENT\nDISAPPROVED: DISAPPROVED\nRETRACTED: RETRACTED\nREVOKED: REVOKED', enum_type=CaseState, max_length=24)),
                ('blzt', fields.IntField()),
                ('last_seq', fields.IntField(default=0)),
                ('correction_requested', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'case_instance', 'app': 'models', 'indexes': [Index(fields=['department_id', 'state']), Index(fields=['project_id', 'stage'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CaseEvent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('case', fields.ForeignKeyField('models.Case', source_field='case_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.RESTRICT)),
                ('seq', fields.IntField()),
                ('action', fields.CharEnumField(description='RECEIVE: RECEIVE\nWITHDRAW: WITHDRAW\nACCEPT: ACCEPT\nNOT_ACCEPT: NOT_ACCEPT\nREFUSE: REFUSE\nREQUEST_CORRECTION: REQUEST_CORRECTION\nSUBMIT_CORRECTION: SUBMIT_CORRECTION\nSTART: START\nBEGIN_SPECIAL_PROCEDURE: BEGIN_SPECIAL_PROCEDURE\nEND_SPECIAL_PROCEDURE: END_SPECIAL_PROCEDURE\nAPPROVE: APPROVE\nAPPROVE_DEFICIENT: APPROVE_DEFICIENT\nDISAPPROVE: DISAPPROVE\nRETRACT: RETRACT\nREVOKE: REVOKE', enum_type=Action, max_length=32)),
                ('blzt', fields.IntField()),
                ('state_after', fields.CharEnumField(description='RECEIVED: RECEIVED\nWITHDRAWN: WITHDRAWN\nACCEPTED: ACCEPTED\nNOT_ACCEPTED: NOT_ACCEPTED\nREFUSED: REFUSED\nCORRECTION: CORRECTION\nCORRECTED: CORRECTED\nIN_PROGRESS: IN_PROGRESS\nSPECIAL_PROCEDURE: SPECIAL_PROCEDURE\nAPPROVED: APPROVED\nAPPROVED_DEFICIENT: APPROVED_DEFICIENT\nDISAPPROVED: DISAPPROVED\nRETRACTED: RETRACTED\nREVOKED: REVOKED', enum_type=CaseState, max_length=24)),
                ('party', fields.CharEnumField(description='APPLICANT: APPLICANT\nWINDOW: WINDOW\nDEPARTMENT: DEPARTMENT', enum_type=Party, max_length=16)),
                ('actor', fields.ForeignKeyField('models.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='case_events', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='pushed_events', on_delete=OnDelete.RESTRICT)),
                ('external_id', fields.CharField(null=True, max_length=128)),
                ('dedupe_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('data', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('attachments', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'case_event', 'app': 'models', 'unique_together': (('case', 'seq'),), 'pk_attr': 'id', 'table_description': 'One transition, never updated nor deleted: who, when, the BLZT code, the opinion and the data it carried.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Upload',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('owner', fields.ForeignKeyField('models.User', source_field='owner_id', db_constraint=True, to_field='id', related_name='uploads', on_delete=OnDelete.RESTRICT)),
                ('filename', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(max_length=100)),
                ('size', fields.IntField()),
                ('sha256', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'upload', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
