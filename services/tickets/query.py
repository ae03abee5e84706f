"""The ticket list's query (TKT-10): filters, keyword, sort by any listed column, keyset
cursor — built as SQL text with numbered arguments, free of I/O. Column names come only
from the tables below, never from a request."""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from services.runtime import priority_score
from services.runtime.errors import InvalidArgument
from services.runtime.priority_score import PRIORITY_POINTS

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
    SLA_DUE_AT = "sla_due_at"
    PRIORITY_SCORE = "priority_score"


# A ticket without a running SLA sorts as due at the end of time (migration 009's index).
NO_SLA_DUE = datetime(9999, 12, 31, tzinfo=UTC)


_PRIORITY_RANK = (
    "CASE t.priority " + " ".join(f"WHEN '{p.value}' THEN {p.rank}" for p in Priority) + " END"
)

# The priority score (RTE-3, services/runtime/priority_score.py) as an integer that grows
# with it: its points in seconds less the epoch second the ticket started waiting — the
# same order as the score at any time, highest first by default like the other sorts.
_SCORE_POINTS = (
    "CASE t.priority "
    + " ".join(f"WHEN '{p.value}' THEN {PRIORITY_POINTS[p.to_pb()]}" for p in Priority)
    + " ELSE 60 END"
)
_PRIORITY_SCORE = (
    f"(({_SCORE_POINTS}) + coalesce(t.customer_value, 0)) * 60"
    " - floor(extract(epoch FROM t.waiting_since))::bigint"
)


def score_key(row: Ticket) -> int:
    """`_PRIORITY_SCORE` of a row, as the next page's cursor carries it."""
    since = row.waiting_since or row.created_at
    points = priority_score.points(Priority(row.priority).to_pb(), row.customer_value)
    return points * 60 - math.floor(since.timestamp())


# sort → (SQL expression, kind of its value in a cursor). A "row" sort's cursor carries no
# value: the next page starts after the value of the row the cursor names, read again by
# the query — so a cursor can neither show customer data (a subject, an address) nor be
# made up to compare one with a guess.
SORT_SQL: dict[Sort, tuple[str, str]] = {
    Sort.RECEIVED_AT: ("t.received_at", "time"),
    Sort.UPDATED_AT: ("t.updated_at", "time"),
    Sort.SUBJECT: ("lower(t.subject)", "row"),
    Sort.STATUS: ("t.status", "text"),
    Sort.PRIORITY: (_PRIORITY_RANK, "int"),
    Sort.ASSIGNEE: ("lower(coalesce(t.assignee_name, ''))", "text"),
    Sort.CUSTOMER: ("lower(coalesce(nullif(t.from_name, ''), t.from_address))", "row"),
    Sort.INBOX: ("lower(t.inbox_name)", "text"),
    Sort.NUMBER: ("t.number", "int"),
    Sort.LAST_MESSAGE_AT: ("coalesce(t.last_message_at, t.received_at)", "time"),
    Sort.SLA_DUE_AT: ("coalesce(t.sla_due_at, timestamptz '9999-12-31 00:00:00+00')", "time"),
    Sort.PRIORITY_SCORE: (_PRIORITY_SCORE, "int"),
}
# For a caller without see_customer_addresses (SEC-6) the sorts that hold customer data
# order by what is left of it without addresses and phone numbers (sb_unaddressed,
# migration 006): the customer by their name only, never by their address.
MASKED_SORT_SQL: dict[Sort, str] = {
    Sort.SUBJECT: "sb_unaddressed(lower(normalize(t.subject, NFKC)))",
    Sort.CUSTOMER: "sb_unaddressed(lower(normalize(t.from_name, NFKC)))",
}


def sort_sql(sort: Sort, addresses: bool) -> str:
    """The SQL expression `sort` orders by for a caller who sees addresses or not."""
    if not addresses and sort in MASKED_SORT_SQL:
        return MASKED_SORT_SQL[sort]
    return SORT_SQL[sort][0]


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
            if kind == "row":
                value = None
            elif kind == "time":
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
    # whether the caller sees customers' addresses and phone numbers (SEC-6): if not, the
    # keyword is compared with messages' text without them (`search_masked`) and sorts
    # by subject or customer leave them out
    addresses: bool = True
    terms: tuple[str, ...] = field(default=(), init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(search.keyword_terms(self.keyword)))


def sort_value(row: Ticket, sort: Sort) -> Any:
    """A row's value of the sort expression (what the next page's cursor carries; None
    for a "row" sort, whose cursor names the row only)."""
    if SORT_SQL[sort][1] == "row":
        return None
    if sort is Sort.PRIORITY:
        return Priority(row.priority).rank
    if sort is Sort.ASSIGNEE:
        return str(row.assignee_name or "").lower()
    if sort is Sort.INBOX:
        return str(row.inbox_name).lower()
    if sort is Sort.LAST_MESSAGE_AT:
        return row.last_message_at or row.received_at
    if sort is Sort.SLA_DUE_AT:
        return row.sla_due_at or NO_SLA_DUE
    if sort is Sort.PRIORITY_SCORE:
        return score_key(row)
    return getattr(row, sort.value)


# A keyword term found in at most this many messages is looked up through the grams'
# index first (`build_term_probe`); one found in more is common, and the list is read
# newest first, each ticket checked (`build_list_query`'s `term_tickets`).
TERM_PROBE_CAP = 10_000


def build_term_probe(
    tenant_id: str, term: str, addresses: bool, cap: int = TERM_PROBE_CAP
) -> tuple[str, list[Any]]:
    """The tickets of at most `cap` messages holding `term` (the grams' GIN index, then the
    text): fewer rows than `cap` is every ticket holding it; `cap` rows, a common term.

    PostgreSQL estimates the messages having all of a term's bigrams as if the bigrams were
    independent (for 領収書: 7 % × 7 % of the messages, where 7 % have both), so left to
    itself it reads every message of a common term through the index before sorting the
    tickets — seconds at a million tickets. Asking first how many there are lets the list
    query take the right path either way."""
    text = "search_text" if addresses else "search_masked"
    return (
        "SELECT ticket_id FROM messages WHERE tenant_id = $1 AND search_grams @> $2::text[] "
        f"AND {text} LIKE $3 LIMIT $4",
        [uuid.UUID(tenant_id), search.term_grams(term), search.like_pattern(term), cap],
    )


def build_list_query(
    tenant_id: str,
    q: TicketQuery,
    limit: int,
    visible: Sequence[str] | None = None,
    term_tickets: Mapping[str, Sequence[uuid.UUID] | None] | None = None,
) -> tuple[str, list[Any]]:
    """The list query; `visible`: the inboxes the caller may see (None: all of them).
    `term_tickets`: per keyword term, every ticket holding it (from `build_term_probe`),
    or None for a common term — checked ticket by ticket as the list is read newest first
    (a subquery with LIMIT, which the planner cannot turn into a join over every message
    holding the term). Without it, each term is an EXISTS the planner plans as it likes."""
    args: list[Any] = [uuid.UUID(tenant_id), limit]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    where = ["t.tenant_id = $1", "t.merged_into IS NULL"]
    # one inbox, one status: an equality, so the list is read in order from an index
    # (tickets_inbox_list, tickets_list) instead of sorting all of the inbox's tickets
    if len(q.statuses) == 1:
        where.append(f"t.status = {arg(q.statuses[0].value)}")
    elif q.statuses:
        where.append(f"t.status = ANY({arg([s.value for s in q.statuses])}::text[])")
    else:
        where.append("t.status <> 'trash'")
    visible_arg = ""
    if visible is not None:
        visible_arg = arg([uuid.UUID(i) for i in visible])
        where.append(f"t.inbox_id = ANY({visible_arg}::uuid[])")
    if len(q.inbox_ids) == 1:
        where.append(f"t.inbox_id = {arg(q.inbox_ids[0])}")
    elif q.inbox_ids:
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
    # SEC-6: without see_customer_addresses, the text without addresses and phone numbers
    text = "m.search_text" if q.addresses else "m.search_masked"
    for term in q.terms:
        if term_tickets is not None and term in term_tickets:
            holding = term_tickets[term]
            if holding is not None:
                where.append(f"t.id = ANY({arg(list(holding))}::uuid[])")
            else:
                where.append(
                    f"(SELECT true FROM messages m WHERE m.tenant_id = t.tenant_id "
                    f"AND m.ticket_id = t.id AND {text} LIKE {arg(search.like_pattern(term))} "
                    "LIMIT 1)"
                )
            continue
        grams = arg(search.term_grams(term))
        pattern = arg(search.like_pattern(term))
        where.append(
            "EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = t.tenant_id "
            f"AND m.ticket_id = t.id AND m.search_grams @> {grams}::text[] "
            f"AND {text} LIKE {pattern})"
        )
    expr = sort_sql(q.sort, q.addresses)
    direction = "ASC" if q.ascending else "DESC"
    if q.after is not None:
        op = ">" if q.ascending else "<"
        ident = arg(q.after.id)
        if SORT_SQL[q.sort][1] == "row":
            # the value of the row the cursor names, as this caller may see it (a row they
            # may not see yields nothing, and so does the page)
            seen = f" AND t.inbox_id = ANY({visible_arg}::uuid[])" if visible_arg else ""
            value = (
                f"(SELECT {expr} FROM tickets t WHERE t.tenant_id = $1 AND t.id = {ident}{seen})"
            )
        else:
            value = arg(q.after.value)
        where.append(f"({expr}, t.id) {op} ({value}, {ident})")
    sql = (
        f"SELECT t.* FROM tickets t WHERE {' AND '.join(where)} "
        f"ORDER BY {expr} {direction}, t.id {direction} LIMIT $2"
    )
    return sql, args
