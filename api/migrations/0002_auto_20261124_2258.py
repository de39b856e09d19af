from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AgentAuthorization',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization', fields.ForeignKeyField('models.Organization', source_field='organization_id', db_constraint=True, to_field='id', related_name='agent_authorizations', on_delete=OnDelete.CASCADE)),
                ('phone', fields.CharField(db_index=True, max_length=20)),
                ('agent_name', fields.CharField(max_length=100)),
                ('is_admin', fields.BooleanField(default=False)),
                ('granted_by', fields.ForeignKeyField('models.User', source_field='granted_by_id', null=True, db_constraint=True, to_field='id', related_name='granted_authorizations', on_delete=OnDelete.SET_NULL)),
                ('granted_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_by', fields.ForeignKeyField('models.User', source_field='revoked_by_id', null=True, db_constraint=True, to_field='id', related_name='revoked_authorizations', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'agent_authorization', 'app': 'models', 'pk_attr': 'id', 'table_description': '经办人授权: an organisation authorises a verified phone number to act for it. Withdrawn = ``revoked_at`` set.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoginSession',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='login_sessions', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_refreshed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoke_reason', fields.CharField(null=True, max_length=32)),
            ],
            options={'table': 'login_session', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One sign-in (a family of refresh tokens). Access tokens carry its id: revoking it ends them all at once.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshToken',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('session', fields.ForeignKeyField('models.LoginSession', source_field='session_id', db_constraint=True, to_field='id', related_name='refresh_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refresh_token', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A refresh token, stored as its SHA-256 only. Used once: the next one replaces it (rotation).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='StaffLoginThrottle',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=64)),
                ('failures', fields.IntField(default=0)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'staff_login_throttle', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Failed staff sign-ins per username, whether or not the username exists (so lock-out reveals nothing).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SubscribeConsent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('user', fields.ForeignKeyField('models.User', source_field='user_id', db_constraint=True, to_field='id', related_name='subscribe_consents', on_delete=OnDelete.CASCADE)),
                ('template_id', fields.CharField(max_length=128)),
                ('remaining', fields.IntField(default=0)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'subscribe_consent', 'app': 'models', 'unique_together': (('user', 'template_id'),), 'pk_attr': 'id', 'table_description': 'One-time subscribe-message consents a user has left per template (wx.requestSubscribeMessage → accept).'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='User',
            name='phone_verified_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='User',
            name='unionid',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='User',
            name='wechat_session_key',
            field=fields.CharField(null=True, max_length=255),
        ),
    ]
