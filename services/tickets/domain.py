"""The ticket model's rules, free of I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, paging
from services.runtime.errors import InvalidArgument
from services.runtime.paging import Cursor as Cursor  # re-exported for the service's modules

if TYPE_CHECKING:
    from .records import Ticket

MAX_PAGE = 200
DEFAULT_PAGE = 50
SUBJECT_MAX = 998
LABEL_MAX = 50  # characters of one label, category or flag
LABELS_MAX = 20  # labels (or flags) on one ticket
COMMENT_MAX = 20_000
MEMO_MAX = 20_000
BULK_MAX = 1000
THRESHOLDS_MAX = 5


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


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def to_pb(self) -> common_pb2.Priority:
        return _PRIO_TO_PB[self]

    @classmethod
    def from_pb(cls, value: int) -> Priority | None:
        if value == common_pb2.PRIORITY_UNSPECIFIED:
            return None
        for prio, pb in _PRIO_TO_PB.items():
            if pb == value:
                return prio
        raise InvalidArgument(f"unknown priority {value}", field="priority")

    @property
    def rank(self) -> int:
        return list(Priority).index(self)


_PRIO_TO_PB = {
    Priority.LOW: common_pb2.PRIORITY_LOW,
    Priority.NORMAL: common_pb2.PRIORITY_NORMAL,
    Priority.HIGH: common_pb2.PRIORITY_HIGH,
    Priority.URGENT: common_pb2.PRIORITY_URGENT,
}

CLOSED = (Status.RESOLVED, Status.NO_ACTION)


def clean_tag(value: str, field: str) -> str:
    """A label, flag or category: trimmed, one line, at most LABEL_MAX characters."""
    tag = " ".join(value.split())
    if not tag:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(tag) > LABEL_MAX:
        raise InvalidArgument(f"{field} is longer than {LABEL_MAX} characters", field=field)
    if any(ord(c) < 32 or c == "\x7f" for c in tag):
        raise InvalidArgument(f"{field} contains control characters", field=field)
    return tag


def clean_text(value: str, field: str, limit: int, *, required: bool = True) -> str:
    text = value.replace("\r\n", "\n").replace("\x00", "").strip()
    if required and not text:
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(text) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    return text


@dataclass(frozen=True)
class Change:
    field: str
    old: str
    new: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class FieldEdit:
    """An operator's requested change; None / empty leaves a field as it is."""

    status: Status | None = None
    priority: Priority | None = None
    category: str | None = None
    add_labels: tuple[str, ...] = ()
    remove_labels: tuple[str, ...] = ()
    add_flags: tuple[str, ...] = ()
    remove_flags: tuple[str, ...] = ()
    assignee_id: str | None = None  # "" unassigns
    pending_until: datetime | None = None  # set the pending-until date (issue 18)
    clear_pending_until: bool = False

    def validated(self) -> FieldEdit:
        return FieldEdit(
            status=self.status,
            priority=self.priority,
            category=None
            if self.category is None
            else (clean_tag(self.category, "category") if self.category.strip() else ""),
            add_labels=tuple(clean_tag(x, "add_labels") for x in self.add_labels),
            remove_labels=tuple(" ".join(x.split()) for x in self.remove_labels),
            add_flags=tuple(clean_tag(x, "add_flags") for x in self.add_flags),
            remove_flags=tuple(" ".join(x.split()) for x in self.remove_flags),
            assignee_id=self.assignee_id,
            pending_until=self.pending_until,
            clear_pending_until=self.clear_pending_until,
        )

    @property
    def empty(self) -> bool:
        return self == FieldEdit()


def _merge_tags(
    current: list[str], add: tuple[str, ...], remove: tuple[str, ...], field: str
) -> list[str]:
    out = [t for t in current if t not in remove]
    for t in add:
        if t not in out:
            out.append(t)
    if len(out) > LABELS_MAX:
        raise InvalidArgument(f"a ticket has at most {LABELS_MAX} {field}", field=field)
    return out


@dataclass(frozen=True)
class Applied:
    """The new field values (only those that changed) and their changes for the audit."""

    values: dict[str, object]
    changes: tuple[Change, ...]


def apply_edit(row: Ticket, edit: FieldEdit) -> Applied:
    """The field changes `edit` makes to a ticket row (status, priority, category, labels,
    flags; the assignee is checked and applied by the caller, who knows the operators).
    Trashing remembers the status to restore; resolving stamps `closed_at` (caller)."""
    values: dict[str, object] = {}
    changes: list[Change] = []
    if edit.status is not None and edit.status.value != row.status:
        old = Status(row.status)
        values["status"] = edit.status.value
        if edit.status is Status.TRASH:
            values["status_before_trash"] = old.value
        elif old is Status.TRASH:
            values["status_before_trash"] = None
        changes.append(Change("status", old.value, edit.status.value))
    if edit.priority is not None and edit.priority.value != row.priority:
        values["priority"] = edit.priority.value
        changes.append(Change("priority", row.priority, edit.priority.value))
    if edit.category is not None and edit.category != row.category:
        values["category"] = edit.category
        changes.append(Change("category", row.category, edit.category))
    for field, add, remove in (
        ("labels", edit.add_labels, edit.remove_labels),
        ("flags", edit.add_flags, edit.remove_flags),
    ):
        current = list(getattr(row, field))
        new = _merge_tags(current, add, remove, field)
        if new != current:
            values[field] = new
            changes.append(Change(field, ", ".join(current), ", ".join(new)))
    _pending_until(row, edit, str(values.get("status", row.status)), values, changes)
    return Applied(values, tuple(changes))


def parse_pending_until(text: str) -> tuple[datetime | None, bool]:
    """A request's pending-until text: (the date, False), or (None, True) for "" (clear).
    An ISO 8601 date-time with an offset, else INVALID_ARGUMENT naming the field."""
    if not text.strip():
        return None, True
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            "not an ISO 8601 date-time (e.g. 2026-12-10T09:00:00+09:00)", field="pending_until"
        ) from None
    if at.tzinfo is None:
        raise InvalidArgument("needs a time zone offset (Z or +09:00)", field="pending_until")
    return at.astimezone(UTC), False


def iso_or_empty(at: datetime | None) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at is not None else ""


def _pending_until(
    row: Ticket, edit: FieldEdit, status: str, values: dict[str, object], changes: list[Change]
) -> None:
    """Only a pending ticket has a pending-until date: one set on a ticket not pending
    after the edit is refused; a ticket leaving pending loses its date."""
    want = row.pending_until
    if edit.clear_pending_until:
        want = None
    elif edit.pending_until is not None:
        if status != Status.PENDING.value:
            raise InvalidArgument(
                "only a pending ticket has a pending-until date", field="pending_until"
            )
        want = edit.pending_until
    if status != Status.PENDING.value:
        want = None
    if want != row.pending_until:
        values["pending_until"] = want
        changes.append(Change("pending_until", iso_or_empty(row.pending_until), iso_or_empty(want)))


def restore_status(row: Ticket) -> Status:
    """The status a ticket goes back to from trash: the one it had, else open."""
    before = row.status_before_trash
    return Status(before) if before and before != Status.TRASH.value else Status.OPEN


@dataclass(frozen=True)
class Threshold:
    after_minutes: int
    color: str


_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


def validate_thresholds(items: list[Threshold]) -> list[Threshold]:
    if len(items) > THRESHOLDS_MAX:
        raise InvalidArgument(f"at most {THRESHOLDS_MAX} thresholds", field="thresholds")
    last = 0
    for t in items:
        if t.after_minutes <= last:
            raise InvalidArgument(
                "thresholds must be positive and strictly ascending", field="thresholds"
            )
        if not _COLOR.match(t.color):
            raise InvalidArgument("a threshold colour is #rrggbb", field="thresholds")
        last = t.after_minutes
    return items


def elapsed_level(thresholds: list[Threshold], elapsed_s: float) -> tuple[int, str]:
    """TKT-14: the highest threshold the elapsed time has reached (1-based) and its colour;
    (0, "") below the first."""
    level, color = 0, ""
    for i, t in enumerate(thresholds, start=1):
        if elapsed_s >= t.after_minutes * 60:
            level, color = i, t.color
    return level, color


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
    TRASH when it is spam, from a blocked sender or carries a virus (ING-5: kept and
    searchable, but not in the operators' queue)."""
    mail = routed.mail
    return NewTicket(
        id=ticket_id,
        subject=(mail.subject or "(no subject)")[:SUBJECT_MAX],
        status=Status.TRASH if events.is_junk(mail) else Status.OPEN,
        inbox=routed.inbox,
        sender=getattr(mail, "from"),
        received_at=routed.received_at.ToDatetime(tzinfo=UTC),
    )


@dataclass(frozen=True)
class PhoneMemoInput:
    """A phone memo as the operator entered it (ING-6, TKT-7), validated."""

    body: str
    direction: str
    caller_name: str
    phone: str
    duration_s: int
    occurred_at: datetime

    @classmethod
    def validated(
        cls,
        *,
        body: str,
        direction: str,
        caller_name: str,
        phone: str,
        duration_s: int,
        occurred_at: datetime,
        now: datetime,
    ) -> PhoneMemoInput:
        direction = direction or "inbound"
        if direction not in ("inbound", "outbound"):
            raise InvalidArgument("direction is inbound or outbound", field="direction")
        if not 0 <= duration_s <= 24 * 3600:
            raise InvalidArgument("duration_s must be 0 to 86400", field="duration_s")
        if occurred_at > now:
            raise InvalidArgument("occurred_at is in the future", field="occurred_at")
        phone = clean_text(phone, "phone", 40, required=False)
        if phone and not re.fullmatch(r"[0-9+\-() .#*]+", phone):
            raise InvalidArgument("phone may hold digits, spaces and + - ( ) . # *", field="phone")
        return cls(
            body=clean_text(body, "body", MEMO_MAX),
            direction=direction,
            caller_name=clean_text(caller_name, "caller_name", 200, required=False),
            phone=phone,
            duration_s=duration_s,
            occurred_at=occurred_at,
        )


def page_size(limit: int) -> int:
    return paging.page_size(limit, DEFAULT_PAGE, MAX_PAGE)
