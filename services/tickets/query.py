"""The ticket list's query (TKT-10): filters, keyword, sort by any listed column, keyset
cursor — built as SQL text with numbered arguments, free of I/O. Column names come only
from the tables below, never from a request."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from services.runtime.errors import InvalidArgument

from . import search
from .domain import Priority, Status
from .records import Ticket


class Sort(StrEnum):
    RECEIVED_AT = "received_at"
    UPDATED_AT = "updated_at"
    SUBJECT = "subject"
    STATUS = "status"
    PRIORITY = "priority"
    ASSIGNEE = "assignee"
    CUSTOMER = "customer"
    INBOX = "inbox"
    NUMBER = "number"
    LAST_MESSAGE_AT = "last_message_at"


_PRIORITY_RANK = (
    "CASE t.priority " + " ".join(f"WHEN '{p.value}' THEN {p.rank}" for p in Priority) + " END"
)

# sort → (SQL expression, kind of its value in a cursor)
SORT_SQL: dict[Sort, tuple[str, str]] = {
    Sort.RECEIVED_AT: ("t.received_at", "time"),
    Sort.UPDATED_AT: ("t.updated_at", "time"),
    Sort.SUBJECT: ("lower(t.subject)", "text"),
    Sort.STATUS: ("t.status", "text"),
    Sort.PRIORITY: (_PRIORITY_RANK, "int"),
    Sort.ASSIGNEE: ("lower(coalesce(t.assignee_name, ''))", "text"),
    Sort.CUSTOMER: ("lower(coalesce(nullif(t.from_name, ''), t.from_address))", "text"),
    Sort.INBOX: ("lower(t.inbox_name)", "text"),
    Sort.NUMBER: ("t.number", "int"),
    Sort.LAST_MESSAGE_AT: ("coalesce(t.last_message_at, t.received_at)", "time"),
}


class View(StrEnum):
    EDITING = "editing"
    AWAITING_APPROVAL = "awaiting_approval"


@dataclass(frozen=True)
class ListCursor:
    sort: Sort
    ascending: bool
    value: Any
    id: uuid.UUID

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps([self.sort.value, self.ascending, value, str(self.id)])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: Sort, ascending: bool) -> ListCursor:
        bad = InvalidArgument("cursor is not one this API gave out", field="cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            name, asc, value, ident = json.loads(raw)
            cursor_sort = Sort(name)
            kind = SORT_SQL[cursor_sort][1]
            if kind == "time":
                value = datetime.fromisoformat(value)
            elif kind == "int" and not isinstance(value, int):
                raise bad
            elif kind == "text" and not isinstance(value, str):
                raise bad
            cursor = cls(cursor_sort, bool(asc), value, uuid.UUID(ident))
        except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
            raise bad from None
        if cursor.sort is not sort or cursor.ascending != ascending:
            raise InvalidArgument(
                "cursor belongs to another sort order; start from the first page",
                field="cursor",
            )
        return cursor


@dataclass(frozen=True)
class TicketQuery:
    statuses: tuple[Status, ...] = ()
    keyword: str = ""
    inbox_ids: tuple[uuid.UUID, ...] = ()
    assignee: uuid.UUID | None = None
    unassigned: bool = False
    label: str = ""
    category: str = ""
    contact_id: uuid.UUID | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    view: View | None = None
    priority: Priority | None = None
    sort: Sort = Sort.RECEIVED_AT
    ascending: bool = False
    after: ListCursor | None = None
    terms: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(search.keyword_terms(self.keyword)))


def sort_value(row: Ticket, sort: Sort) -> Any:
    """A row's value of the sort expression (what the next page's cursor carries)."""
    if sort is Sort.PRIORITY:
        return Priority(row.priority).rank
    if sort is Sort.SUBJECT:
        return str(row.subject).lower()
    if sort is Sort.ASSIGNEE:
        return str(row.assignee_name or "").lower()
    if sort is Sort.CUSTOMER:
        return str(row.from_name or row.from_address).lower()
    if sort is Sort.INBOX:
        return str(row.inbox_name).lower()
    if sort is Sort.LAST_MESSAGE_AT:
        return row.last_message_at or row.received_at
    return getattr(row, sort.value)


def build_list_query(
    tenant_id: str, q: TicketQuery, limit: int, visible: Sequence[str] | None = None
) -> tuple[str, list[Any]]:
    """The list query; `visible`: the inboxes the caller may see (None: all of them)."""
    args: list[Any] = [uuid.UUID(tenant_id), limit]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["t.tenant_id = $1", "t.merged_into IS NULL"]
    if q.statuses:
        where.append(f"t.status = ANY({arg([s.value for s in q.statuses])}::text[])")
    else:
        where.append("t.status <> 'trash'")
    if visible is not None:
        where.append(f"t.inbox_id = ANY({arg([uuid.UUID(i) for i in visible])}::uuid[])")
    if q.inbox_ids:
        where.append(f"t.inbox_id = ANY({arg(list(q.inbox_ids))}::uuid[])")
    if q.unassigned:
        where.append("t.assignee_id IS NULL")
    elif q.assignee is not None:
        where.append(f"t.assignee_id = {arg(q.assignee)}")
    if q.label:
        where.append(f"t.labels @> ARRAY[{arg(q.label)}::text]")
    if q.category:
        where.append(f"t.category = {arg(q.category)}")
    if q.contact_id is not None:
        where.append(f"t.contact_id = {arg(q.contact_id)}")
    if q.received_from is not None:
        where.append(f"t.received_at >= {arg(q.received_from)}")
    if q.received_to is not None:
        where.append(f"t.received_at < {arg(q.received_to)}")
    if q.priority is not None:
        where.append(f"t.priority = {arg(q.priority.value)}")
    if q.view is View.EDITING:
        where.append("(t.lock_fence IS NOT NULL OR t.draft_count > 0)")
    elif q.view is View.AWAITING_APPROVAL:
        where.append("t.awaiting_approval")
    for term in q.terms:
        grams = arg(search.term_grams(term))
        pattern = arg(search.like_pattern(term))
        where.append(
            "EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = t.tenant_id "
            f"AND m.ticket_id = t.id AND m.search_grams @> {grams}::text[] "
            f"AND m.search_text LIKE {pattern})"
        )
    expr, _ = SORT_SQL[q.sort]
    direction = "ASC" if q.ascending else "DESC"
    if q.after is not None:
        op = ">" if q.ascending else "<"
        where.append(f"({expr}, t.id) {op} ({arg(q.after.value)}, {arg(q.after.id)})")
    sql = (
        f"SELECT t.* FROM tickets t WHERE {' AND '.join(where)} "
        f"ORDER BY {expr} {direction}, t.id {direction} LIMIT $2"
    )
    return sql, args
