"""Tortoise models, one module per aggregate. Tortoise discovers the models listed in ``__all__``."""

from api.models.accounts import (
    AgentAuthorization,
    Department,
    LoginSession,
    Organization,
    RefreshToken,
    StaffLoginThrottle,
    SubscribeConsent,
    User,
)
from api.models.calendar import CalendarYear
from api.models.cases import Application, Case, CaseClock, CaseEvent
from api.models.certificates import Certificate, Seal
from api.models.conversation import Consultation, Conversation, ConversationMessage
from api.models.catalog import ApprovalItem, ItemGuide, ProcessTemplate, TemplateItem, TemplateStage
from api.models.exchange import ExchangeWatermark
from api.models.feedback import Complaint, ComplaintEvent, ComplaintMessage, Rating
from api.models.notices import Delivery, DeliveryAttempt, Notice
from api.models.projects import Building, Project
from api.models.uploads import Upload

__all__ = [
    "AgentAuthorization",
    "Application",
    "ApprovalItem",
    "Building",
    "CalendarYear",
    "Case",
    "CaseClock",
    "CaseEvent",
    "Certificate",
    "Complaint",
    "ComplaintEvent",
    "ComplaintMessage",
    "Consultation",
    "Conversation",
    "ConversationMessage",
    "Delivery",
    "DeliveryAttempt",
    "Department",
    "ExchangeWatermark",
    "ItemGuide",
    "LoginSession",
    "Notice",
    "Organization",
    "ProcessTemplate",
    "Project",
    "Rating",
    "Seal",
    "RefreshToken",
    "StaffLoginThrottle",
    "SubscribeConsent",
    "TemplateItem",
    "TemplateStage",
    "Upload",
    "User",
]
