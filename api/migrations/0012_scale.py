from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index


class Migration(migrations.Migration):
    """caseStats (api/services/supervision.py) counts a period's events of each action: a covering index, so a year of
    100,000 cases' events is read from the index, not from the event rows with their JSON."""

    dependencies = [('models', '0011_case_clock')]

    initial = False

    operations = [
        ops.AddIndex(model_name='CaseEvent', index=Index(fields=['action', 'occurred_at', 'case_id'])),
    ]
