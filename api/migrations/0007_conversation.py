from tortoise import migrations
from tortoise.migrations import operations as ops
from api.models.conversation import ConsultationState, MessageAuthor
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_department_secret_grace')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Conversation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.OneToOneField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='conversation', on_delete=OnDelete.RESTRICT)),
                ('read_up_to', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'conversation', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Consultation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('asker', fields.ForeignKeyField('models.User', source_field='asker_id', db_constraint=True, to_field='id', related_name='consultations', on_delete=OnDelete.RESTRICT)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='consultations', on_delete=OnDelete.RESTRICT)),
                ('department', fields.ForeignKeyField('models.Department', source_field='department_id', null=True, db_constraint=True, to_field='id', related_name='consultations', on_delete=OnDelete.RESTRICT)),
                ('item_code', fields.CharField(null=True, max_length=64)),
                ('question', fields.TextField(unique=False)),
                ('state', fields.CharEnumField(description='WAITING: WAITING\nANSWERED: ANSWERED', enum_type=ConsultationState, max_length=12)),
                ('round_started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('replied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('request_key', fields.CharField(null=True, unique=True, max_length=120)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consultation', 'app': 'models', 'indexes': [Index(fields=['department_id', 'state']), Index(fields=['asker_id', 'state'])], 'pk_attr': 'id', 'table_description': "在线咨询: a question handed from the conversation to a person, with the complaints' reply clock (DOMAIN.md §9)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConversationMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('conversation', fields.ForeignKeyField('models.Conversation', source_field='conversation_id', db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('author', fields.CharEnumField(description='USER: USER\nASSISTANT: ASSISTANT\nSTAFF: STAFF\nSYSTEM: SYSTEM', enum_type=MessageAuthor, max_length=12)),
                ('text', fields.TextField(unique=False)),
                ('cards', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('quick_replies', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('intent', fields.CharField(null=True, max_length=32)),
                ('item_code', fields.CharField(null=True, max_length=64)),
                ('client_message_id', fields.CharField(null=True, unique=True, max_length=120)),
                ('in_reply_to', fields.ForeignKeyField('models.ConversationMessage', source_field='in_reply_to_id', null=True, db_constraint=True, to_field='id', related_name='replies', on_delete=OnDelete.RESTRICT)),
                ('staff', fields.ForeignKeyField('models.User', source_field='staff_id', null=True, db_constraint=True, to_field='id', related_name='consultation_answers', on_delete=OnDelete.RESTRICT)),
                ('consultation', fields.ForeignKeyField('models.Consultation', source_field='consultation_id', null=True, db_constraint=True, to_field='id', related_name='messages', on_delete=OnDelete.RESTRICT)),
                ('notice', fields.ForeignKeyField('models.Notice', source_field='notice_id', null=True, db_constraint=True, to_field='id', related_name='conversation_messages', on_delete=OnDelete.RESTRICT)),
                ('dedupe_key', fields.CharField(null=True, unique=True, max_length=200)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'conversation_message', 'app': 'models', 'indexes': [Index(fields=['conversation_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
