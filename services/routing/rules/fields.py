"""The fields a condition may read, their kinds and the operators each kind allows."""

from __future__ import annotations

from enum import Enum


class Kind(Enum):
    TEXT = "text"
    TEXT_LIST = "text list"
    BOOL = "bool"
    NUMBER = "number"
    ORDERED = "ordered"  # priority: low < normal < high < urgent
    DATE = "date"
    CALENDAR = "calendar"


FIELDS: dict[str, Kind] = {
    "sender_address": Kind.TEXT,
    "sender_domain": Kind.TEXT,
    "sender_name": Kind.TEXT,
    "recipients": Kind.TEXT_LIST,
    "subject": Kind.TEXT,
    "body": Kind.TEXT,
    "header": Kind.TEXT_LIST,
    "has_attachments": Kind.BOOL,
    "attachment_name": Kind.TEXT_LIST,
    "attachment_type": Kind.TEXT_LIST,
    "attachment_count": Kind.NUMBER,
    "size": Kind.NUMBER,
    "channel": Kind.TEXT,
    "labels": Kind.TEXT_LIST,
    "category": Kind.TEXT,
    "priority": Kind.ORDERED,
    "status": Kind.TEXT,
    "received_at": Kind.DATE,
    "business_hours": Kind.CALENDAR,
    "sla_target": Kind.TEXT,
    # issue 18 (facts): the sender's contact (none yet: no such condition holds) and the
    # mail's detected language (ISO 639-1, "" unknown)
    "contact_field": Kind.TEXT,  # with `name`: the custom field's key
    "customer_value": Kind.NUMBER,
    "vip": Kind.BOOL,
    "language": Kind.TEXT,
}

TEXT_OPERATORS = ("equals", "contains", "starts_with", "ends_with", "in", "regex")
NUMBER_OPERATORS = ("equals", "in", "gt", "gte", "lt", "lte")

OPERATORS: dict[Kind, tuple[str, ...]] = {
    Kind.TEXT: TEXT_OPERATORS,
    Kind.TEXT_LIST: TEXT_OPERATORS,
    Kind.BOOL: ("equals",),
    Kind.NUMBER: NUMBER_OPERATORS,
    Kind.ORDERED: NUMBER_OPERATORS,
    Kind.DATE: ("before", "after"),
    Kind.CALENDAR: ("inside", "outside"),
}

# fields only the parsed mail (ingestion) has: the caller fetches it when a rule reads one
MAIL_DETAIL_FIELDS = frozenset({"header", "attachment_name", "attachment_type"})
# fields of the sender's contact: the caller asks tickets for it when a rule reads one
CONTACT_FIELDS = frozenset({"contact_field", "customer_value", "vip"})
# fields a condition names with `name` (a header's, a custom field's key)
NAMED_FIELDS = frozenset({"header", "contact_field"})
