"""The conversation (issue #11, DESIGN.md §3a): one per user, the mini-program's home screen, and the in-app
consultations (在线咨询) a user opens from it, answered by the staff of a department or of the window.

A message keeps its cards as *references* (kind and key, as ``api.services.assistant.CardRef`` makes them), never the
objects' content: the card is resolved when it is read, through the reader's permissions, so a card never shows what
its reader may no longer see.
"""

from enum import Enum

from tortoise import fields
from tortoise.models import Model


class MessageAuthor(str, Enum):
    USER = "USER"  # the person whose conversation it is
    ASSISTANT = "ASSISTANT"  # the in-process assistant's answer
    STAFF = "STAFF"  # a consultation's answer by staff
    SYSTEM = "SYSTEM"  # something that happened to the person's matters (a notice)


class ConsultationState(str, Enum):
    WAITING = "WAITING"  # opened (or asked again): a reply is due
    ANSWERED = "ANSWERED"  # staff answered this round


class Conversation(Model):
    id = fields.IntField(primary_key=True)
    user = fields.OneToOneField("models.User", related_name="conversation", on_delete=fields.RESTRICT)
    read_up_to = fields.BigIntField(default=0)  # the newest message the person has read (its id); only grows
    created_at = fields.DatetimeField()

    class Meta:
        table = "conversation"


class ConversationMessage(Model):
    id = fields.BigIntField(primary_key=True)
    conversation = fields.ForeignKeyField("models.Conversation", related_name="messages", on_delete=fields.RESTRICT)
    author = fields.CharEnumField(MessageAuthor, max_length=12)
    text = fields.TextField()
    cards = fields.JSONField(default=list)  # [CardRef as a dict without its None fields]
    quick_replies = fields.JSONField(default=list)  # [{"label", "text"}]
    intent = fields.CharField(max_length=32, null=True)  # ASSISTANT: what the assistant understood
    item_code = fields.CharField(max_length=64, null=True)  # the item being discussed after this message
    # USER: the client's retry key, scoped to the person ("<user id>:<key>"): a retried send stores nothing new.
    client_message_id = fields.CharField(max_length=120, unique=True, null=True)
    in_reply_to = fields.ForeignKeyField(  # ASSISTANT: the USER message it answers
        "models.ConversationMessage", related_name="replies", null=True, on_delete=fields.RESTRICT
    )
    staff = fields.ForeignKeyField(  # STAFF: who answered
        "models.User", related_name="consultation_answers", null=True, on_delete=fields.RESTRICT
    )
    consultation = fields.ForeignKeyField(
        "models.Consultation", related_name="messages", null=True, on_delete=fields.RESTRICT
    )
    notice = fields.ForeignKeyField(  # SYSTEM: the notice it shows
        "models.Notice", related_name="conversation_messages", null=True, on_delete=fields.RESTRICT
    )
    dedupe_key = fields.CharField(max_length=200, unique=True, null=True)  # STAFF: the answering request's id
    sent_at = fields.DatetimeField()

    class Meta:
        table = "conversation_message"
        indexes = (("conversation_id", "id"),)


class Consultation(Model):
    """在线咨询: a question handed from the conversation to a person, with the complaints' reply clock (DOMAIN.md §9)."""

    id = fields.IntField(primary_key=True)
    asker = fields.ForeignKeyField("models.User", related_name="consultations", on_delete=fields.RESTRICT)
    conversation = fields.ForeignKeyField(
        "models.Conversation", related_name="consultations", on_delete=fields.RESTRICT
    )
    department = fields.ForeignKeyField(  # the item's department; null: the window (综合窗口) answers
        "models.Department", related_name="consultations", null=True, on_delete=fields.RESTRICT
    )
    item_code = fields.CharField(max_length=64, null=True)
    question = fields.TextField()
    state = fields.CharEnumField(ConsultationState, max_length=12)
    round_started_at = fields.DatetimeField()  # the reply clock runs from here
    replied_at = fields.DatetimeField(null=True)
    request_key = fields.CharField(max_length=120, unique=True, null=True)  # the opening request's retry key
    created_at = fields.DatetimeField()

    class Meta:
        table = "consultation"
        indexes = (("department_id", "state"), ("asker_id", "state"))
