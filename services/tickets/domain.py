"""The ticket model's rules, free of I/O."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from switchboard.v1 import common_pb2, events_pb2

from services.runtime.errors import InvalidArgument

MAX_PAGE = 200
DEFAULT_PAGE = 50
SUBJECT_MAX = 998


class Status(StrEnum):
    """TKT-2: new mail and every customer reply land in OPEN."""

    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    NO_ACTION = "no_action"
    TRASH = "trash"

    def to_pb(self) -> common_pb2.TicketStatus:
        return _TO_PB[self]

    @classmethod
    def from_pb(cls, value: int) -> Status | None:
        """None for UNSPECIFIED; InvalidArgument for a number that is no status."""
        if value == common_pb2.TICKET_STATUS_UNSPECIFIED:
            return None
        for status, pb in _TO_PB.items():
            if pb == value:
                return status
        raise InvalidArgument(f"unknown status {value}", field="status")


_TO_PB = {
    Status.OPEN: common_pb2.TICKET_STATUS_OPEN,
    Status.PENDING: common_pb2.TICKET_STATUS_PENDING,
    Status.RESOLVED: common_pb2.TICKET_STATUS_RESOLVED,
    Status.NO_ACTION: common_pb2.TICKET_STATUS_NO_ACTION,
    Status.TRASH: common_pb2.TICKET_STATUS_TRASH,
}


@dataclass(frozen=True)
class NewTicket:
    id: str
    subject: str
    status: Status
    inbox: common_pb2.InboxRef
    sender: common_pb2.Address
    received_at: datetime


def ticket_for_new_message(ticket_id: str, routed: events_pb2.MessageRouted) -> NewTicket:
    """A mail that belongs to no ticket opens one, in OPEN, titled by its subject — or in
    TRASH when it is spam or from a blocked sender (ING-5: kept and searchable, but not in
    the operators' queue)."""
    mail = routed.mail
    return NewTicket(
        id=ticket_id,
        subject=(mail.subject or "(no subject)")[:SUBJECT_MAX],
        status=Status.TRASH if (mail.spam or mail.blocked_by) else Status.OPEN,
        inbox=routed.inbox,
        sender=getattr(mail, "from"),
        received_at=routed.received_at.ToDatetime(tzinfo=UTC),
    )


@dataclass(frozen=True)
class Cursor:
    received_at: datetime
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"{self.received_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when, ident = raw.split("|", 1)
            return cls(datetime.fromisoformat(when), uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("cursor is not one this API gave out", field="cursor") from None


def page_size(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument("limit must not be negative", field="limit")
    return min(limit or DEFAULT_PAGE, MAX_PAGE)
