"""The ticket part of TicketsService: list and search, detail and timeline, threading,
changes (status, fields, assignment) and the audit trail, with the plumbing the other
parts share (api_reshape.py: transfer, bulk, merge, split; api_notes.py: comments, phone
memos, per-inbox settings). Every change is audited and announced as an event in the same
transaction."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import events, identity
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import channels, counts, domain, query, thread_rules
from .convert import summary_pb
from .deps import Deps
from .directory import OperatorInfo
from .domain import Change, FieldEdit, Status
from .records import InboxSettings, Ticket


def actor_of(ident: Identity) -> common_pb2.Actor:
    """Who a change is by: the operator, or the service that called (routing's assigner
    names itself in its identity's display name)."""
    if ident.operator_id:
        return identity.operator_actor(ident)
    return events.system_actor(ident.display_name or "system")


_SORTS = {
    tickets_pb2.SORT_FIELD_UNSPECIFIED: query.Sort.RECEIVED_AT,
    tickets_pb2.SORT_FIELD_RECEIVED_AT: query.Sort.RECEIVED_AT,
    tickets_pb2.SORT_FIELD_UPDATED_AT: query.Sort.UPDATED_AT,
    tickets_pb2.SORT_FIELD_SUBJECT: query.Sort.SUBJECT,
    tickets_pb2.SORT_FIELD_STATUS: query.Sort.STATUS,
    tickets_pb2.SORT_FIELD_PRIORITY: query.Sort.PRIORITY,
    tickets_pb2.SORT_FIELD_ASSIGNEE: query.Sort.ASSIGNEE,
    tickets_pb2.SORT_FIELD_CUSTOMER: query.Sort.CUSTOMER,
    tickets_pb2.SORT_FIELD_INBOX: query.Sort.INBOX,
    tickets_pb2.SORT_FIELD_NUMBER: query.Sort.NUMBER,
    tickets_pb2.SORT_FIELD_LAST_MESSAGE_AT: query.Sort.LAST_MESSAGE_AT,
    tickets_pb2.SORT_FIELD_SLA_DUE_AT: query.Sort.SLA_DUE_AT,
    tickets_pb2.SORT_FIELD_PRIORITY_SCORE: query.Sort.PRIORITY_SCORE,
}
_VIEWS = {
    tickets_pb2.TICKET_VIEW_EDITING: query.View.EDITING,
    tickets_pb2.TICKET_VIEW_AWAITING_APPROVAL: query.View.AWAITING_APPROVAL,
}


def _uuid_or_none(value: str, field: str) -> uuid.UUID | None:
    return parse_uuid(value, field) if value else None


def _ts(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if (ts.seconds or ts.nanos) else None


def _thresholds(settings_row: InboxSettings | None) -> list[domain.Threshold]:
    if settings_row is None:
        return []
    return [domain.Threshold(t["after_minutes"], t["color"]) for t in settings_row.thresholds]


def _changes_pb(changes: Sequence[Change]) -> list[events_pb2.FieldChange]:
    return [
        events_pb2.FieldChange(field=c.field, old_value=c.old, new_value=c.new) for c in changes
    ]


def _edit_from_pb(req: tickets_pb2.UpdateTicketRequest) -> FieldEdit:
    return FieldEdit(
        status=Status.from_pb(req.status),
        priority=domain.Priority.from_pb(req.priority),
        category=req.category if req.HasField("category") else None,
        add_labels=tuple(req.add_labels),
        remove_labels=tuple(req.remove_labels),
        add_flags=tuple(req.add_flags),
        remove_flags=tuple(req.remove_flags),
        assignee_id=req.assignee_id if req.HasField("assignee_id") else None,
        **_pending_until_edit(req),
    ).validated()


def _pending_until_edit(req: tickets_pb2.UpdateTicketRequest) -> dict[str, Any]:
    if not req.HasField("pending_until"):
        return {}
    at, clear = domain.parse_pending_until(req.pending_until)
    return {"pending_until": at, "clear_pending_until": clear}


def assignee_change(row: Ticket, new_op: OperatorInfo | None) -> tuple[dict[str, Any], Change]:
    """The columns and the audited change of giving `row` to `new_op` (None: nobody)."""
    values: dict[str, Any] = {
        "assignee_id": uuid.UUID(new_op.id) if new_op else None,
        "assignee_name": new_op.display_name if new_op else None,
    }
    return values, Change(
        "assignee", row.assignee_name or "", new_op.display_name if new_op else ""
    )


def assigned_pb(
    before: Ticket,
    updated: Ticket,
    new_op: OperatorInfo | None,
    summary: events_pb2.TicketSummary | None = None,
) -> events_pb2.TicketAssigned:
    """ticket.assigned for a change of assignee from `before` to `updated` (`summary`:
    updated's, when the caller has it already)."""
    payload = events_pb2.TicketAssigned(
        ticket=summary if summary is not None else summary_pb(updated)
    )
    if new_op is not None:
        payload.assignee.CopyFrom(new_op.ref())
    if before.assignee_id:
        payload.previous.CopyFrom(
            common_pb2.OperatorRef(
                id=str(before.assignee_id), display_name=before.assignee_name or ""
            )
        )
    return payload


class TicketsCoreApi:
    _deps: Deps

    # -- plumbing ------------------------------------------------------------------------

    def _envelope(
        self, etype: events.EventType, ident: Identity, payload: Message
    ) -> events_pb2.EventEnvelope:
        d = self._deps
        return events.envelope(
            etype,
            event_id=d.ids.new_str(),
            tenant_id=ident.tenant_id,
            occurred_at=d.clock.now(),
            payload=payload,
            actor=actor_of(ident),
            correlation_id=ident.correlation_id,
        )

    async def _emit(
        self, conn: asyncpg.Connection, etype: events.EventType, ident: Identity, payload: Message
    ) -> None:
        await self._deps.outbox.add(conn, self._envelope(etype, ident, payload))

    async def _announce(
        self,
        conn: asyncpg.Connection,
        ident: Identity,
        row: Ticket,
        changes: Sequence[Change],
        comment: str,
        action: str,
        previous_inbox: common_pb2.InboxRef | None = None,
        *,
        without_survey: bool = False,
    ) -> None:
        """ticket.updated for a change just made to `row` (a transfer names the inbox the
        ticket left, whose operators' lists must drop it)."""
        env = self._updated_env(ident, row, changes, comment, action, previous_inbox)
        if without_survey:
            env.ticket_updated.without_survey = True
        await self._deps.outbox.add(conn, env)

    def _updated_env(
        self,
        ident: Identity,
        row: Ticket,
        changes: Sequence[Change],
        comment: str,
        action: str,
        previous_inbox: common_pb2.InboxRef | None = None,
        summary: events_pb2.TicketSummary | None = None,
    ) -> events_pb2.EventEnvelope:
        return self._envelope(
            events.TICKET_UPDATED,
            ident,
            events_pb2.TicketUpdated(
                ticket=summary if summary is not None else summary_pb(row),
                changes=_changes_pb(changes),
                comment=comment,
                action=action,
                previous_inbox=previous_inbox,
            ),
        )

    async def _locked_row(
        self, conn: asyncpg.Connection, ident: Identity, ticket_id: uuid.UUID, field: str
    ) -> Ticket:
        row = await self._deps.repo.row(conn, ident.tenant_id, ticket_id, for_update=True)
        if row is None or not ident.sees_inbox(row.inbox_id):
            raise NotFound("no such ticket", field=field)  # another inbox's: the same answer
        return row

    async def _visible_row(self, ident: Identity, ticket_id: uuid.UUID) -> Ticket:
        """The ticket if the caller may see it (tenant and inbox), else NotFound."""
        row = await self._deps.repo.row(self._deps.db.pool, ident.tenant_id, ticket_id)
        if row is None or not ident.sees_inbox(row.inbox_id):
            raise NotFound("no such ticket", field="ticket_id")
        return row

    async def _audit(
        self,
        conn: asyncpg.Connection,
        ident: Identity,
        ticket_id: uuid.UUID,
        action: str,
        changes: Sequence[Change] = (),
        comment: str = "",
    ) -> None:
        d = self._deps
        await d.repo.add_audit(
            conn,
            id=d.ids.new(),
            tenant_id=ident.tenant_id,
            ticket_id=ticket_id,
            at=d.clock.now(),
            actor=actor_of(ident),
            action=action,
            changes=changes,
            comment=comment,
        )

    async def _apply(
        self,
        conn: asyncpg.Connection,
        ident: Identity,
        row: Ticket,
        edit: FieldEdit,
        comment: str,
        operators: dict[str, Any] | None,
        *,
        without_survey: bool = False,
    ) -> tuple[Ticket, tuple[Change, ...]]:
        """Apply a field edit to a locked ticket row: update, audit, events."""
        d = self._deps
        if row.merged_into is not None:
            raise FailedPrecondition("the ticket was merged into another", field="ticket_id")
        applied = domain.apply_edit(row, edit)
        values = dict(applied.values)
        changes = list(applied.changes)
        now = d.clock.now()
        if "status" in values and Status(str(values["status"])) in domain.CLOSED:
            values["closed_at"] = now
        assigned: tuple[OperatorInfo | None] | None = None  # (the new assignee,)
        if edit.assignee_id is not None:
            new_id = edit.assignee_id or None
            old_id = str(row.assignee_id) if row.assignee_id else None
            if new_id != old_id:
                new_op = None
                if new_id is not None:
                    new_op = (operators or {}).get(new_id)
                    if new_op is None:
                        raise InvalidArgument("no such operator", field="assignee_id")
                more, change = assignee_change(row, new_op)
                values.update(more)
                changes.append(change)
                assigned = (new_op,)
        if not changes:
            return row, ()
        updated = await d.repo.update_fields(conn, ident.tenant_id, row.id, values, now)
        await self._audit(conn, ident, row.id, "update", changes, comment)
        await self._announce(
            conn, ident, updated, changes, comment, "update", without_survey=without_survey
        )
        if assigned is not None:
            payload = assigned_pb(row, updated, assigned[0])
            await self._emit(conn, events.TICKET_ASSIGNED, ident, payload)
        return updated, tuple(changes)

    async def _elapsed(self, tenant_id: str, rows: Sequence[Ticket]) -> list[tuple[int, int, str]]:
        d = self._deps
        inboxes = list({r.inbox_id for r in rows})
        settings = await d.repo.inbox_settings(d.db.pool, tenant_id, inboxes) if inboxes else {}
        now = d.clock.now()
        out = []
        for r in rows:
            seconds = max(0, int((now - r.received_at).total_seconds()))
            level, color = domain.elapsed_level(_thresholds(settings.get(r.inbox_id)), seconds)
            out.append((seconds, level, color))
        return out

    # -- reading -------------------------------------------------------------------------

    async def ListTickets(
        self, request: tickets_pb2.ListTicketsRequest, context: Context
    ) -> tickets_pb2.ListTicketsResponse:
        ident = identity.require_tenant()
        statuses = [Status.from_pb(s) for s in (request.status, *request.statuses)]
        sort = _SORTS.get(request.sort)
        if sort is None:
            raise InvalidArgument(f"unknown sort {request.sort}", field="sort")
        if request.view and request.view not in _VIEWS:
            raise InvalidArgument(f"unknown view {request.view}", field="view")
        assignee = request.assignee_id
        received = request.received
        q = query.TicketQuery(
            statuses=tuple(dict.fromkeys(s for s in statuses if s is not None)),
            keyword=request.keyword,
            inbox_ids=tuple(parse_uuid(i, "inbox_ids") for i in request.inbox_ids),
            unassigned=assignee == "none",
            assignee=None if assignee in ("", "none") else parse_uuid(assignee, "assignee_id"),
            label=domain.clean_tag(request.label, "label") if request.label.strip() else "",
            category=(
                domain.clean_tag(request.category, "category") if request.category.strip() else ""
            ),
            contact_id=_uuid_or_none(request.contact_id, "contact_id"),
            received_from=_ts(received.start),
            received_to=_ts(received.end),
            view=_VIEWS.get(request.view),
            priority=domain.Priority.from_pb(request.priority),
            sort=sort,
            ascending=request.ascending,
            after=(
                query.ListCursor.decode(request.page.cursor, sort, request.ascending)
                if request.page.cursor
                else None
            ),
            addresses=ident.sees_addresses(),
        )
        if q.terms:
            await self._deps.search_limit.count(ident)
        limit = domain.page_size(request.page.limit)
        rows = await self._deps.repo.list_tickets(ident.tenant_id, q, limit, ident.inbox_filter())
        page = rows[:limit]
        resp = tickets_pb2.ListTicketsResponse()
        for r, (seconds, level, color) in zip(
            page, await self._elapsed(ident.tenant_id, page), strict=True
        ):
            summary = summary_pb(r)
            resp.tickets.append(summary)
            resp.rows.add(
                ticket=summary, elapsed_seconds=seconds, elapsed_level=level, elapsed_color=color
            )
        if len(rows) > limit:
            last = page[-1]
            resp.next_cursor = query.ListCursor(
                sort, request.ascending, query.sort_value(last, sort), last.id
            ).encode()
        return resp

    async def CountTickets(
        self, request: tickets_pb2.CountTicketsRequest, context: Context
    ) -> tickets_pb2.CountTicketsResponse:
        ident = identity.require_tenant()
        found = await counts.read(self._deps.db.pool, ident.tenant_id, ident.inbox_filter())
        return tickets_pb2.CountTicketsResponse(inboxes=found)

    async def GetTicket(
        self, request: tickets_pb2.GetTicketRequest, context: Context
    ) -> tickets_pb2.GetTicketResponse:
        ident = identity.require_tenant()
        if not request.ticket_id and request.number > 0:  # by its number (routing's dry run)
            by_number = await self._deps.repo.ticket_by_number(
                self._deps.db.pool, ident.tenant_id, request.number
            )
            if by_number is None:
                raise NotFound("no such ticket", field="number")
            wanted = by_number
        else:
            wanted = parse_uuid(request.ticket_id, "ticket_id")
        found = await self._deps.repo.get(ident.tenant_id, wanted)
        if found is None or not ident.sees_inbox(found[0].inbox_id):
            raise NotFound("no such ticket", field="ticket_id")
        row, msgs, comments = found
        seconds, level, color = (await self._elapsed(ident.tenant_id, [row]))[0]
        resp = tickets_pb2.GetTicketResponse(
            ticket=summary_pb(row),
            elapsed_seconds=seconds,
            elapsed_level=level,
            elapsed_color=color,
        )
        if request.with_contact:  # routing's rules on a stored ticket (issue 18)
            found_contact = await self._deps.contacts.of_ticket(
                ident.tenant_id, str(row.contact_id or "")
            )
            if found_contact is not None:
                resp.contact.CopyFrom(found_contact)
        entries: list[tuple[datetime, str, tickets_pb2.TimelineEntry]] = []
        for m in msgs:
            pb = channels.message_pb(m)
            resp.messages.append(pb)
            e = tickets_pb2.TimelineEntry(ticket_id=str(row.id), message=pb)
            e.at.FromDatetime(m.received_at)
            entries.append((m.received_at, str(m.id), e))
        for c in comments:
            resp.comments.append(c)
            e = tickets_pb2.TimelineEntry(ticket_id=str(row.id), comment=c)
            e.at.CopyFrom(c.created_at)
            entries.append((c.created_at.ToDatetime(tzinfo=UTC), c.id, e))
        resp.timeline.extend(e for _, _, e in sorted(entries, key=lambda x: (x[0], x[1])))
        return resp

    async def ListAudit(
        self, request: tickets_pb2.ListAuditRequest, context: Context
    ) -> tickets_pb2.ListAuditResponse:
        ident = identity.require_tenant()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        d = self._deps
        await self._visible_row(ident, ticket_id)
        limit = domain.page_size(request.page.limit)
        after = domain.Cursor.decode(request.page.cursor) if request.page.cursor else None
        rows = await d.repo.audit(ident.tenant_id, ticket_id, limit, after)
        resp = tickets_pb2.ListAuditResponse()
        resp.entries.extend(rows[:limit])
        if len(rows) > limit:
            resp.next_cursor = domain.Cursor.of(rows[limit - 1].at, rows[limit - 1].id).encode()
        return resp

    async def CheckMessageAccess(
        self, request: tickets_pb2.CheckMessageAccessRequest, context: Context
    ) -> tickets_pb2.CheckMessageAccessResponse:
        ident = identity.require_tenant()
        message_id = parse_uuid(request.message_id, "message_id")
        found = await self._deps.repo.message_place(ident.tenant_id, message_id)
        if found is None or not ident.sees_inbox(found[1]):
            raise NotFound("no such message", field="message_id")
        ticket_id, inbox_id = found
        return tickets_pb2.CheckMessageAccessResponse(
            ticket_id=str(ticket_id), inbox_id=str(inbox_id)
        )

    # -- threading -----------------------------------------------------------------------

    async def ResolveThread(
        self, request: tickets_pb2.ResolveThreadRequest, context: Context
    ) -> tickets_pb2.ResolveThreadResponse:
        """Where a received mail belongs (thread_rules, ADR 0009): the first ticket found
        that the mail may join, or none (a new ticket)."""
        ident = identity.require_tenant()
        d = self._deps
        tenant = ident.tenant_id
        inbox_id = parse_uuid(request.inbox_id, "inbox_id") if request.inbox_id else None
        mail = request.mail
        pool = d.db.pool
        sender = getattr(mail, "from").address
        # a bounce names the mail it returns: it belongs where that mail went out from
        returned = [mail.dsn_original_message_id] if mail.dsn_original_message_id else []
        refs = thread_rules.references(mail.in_reply_to, [*mail.references, *returned])
        signed = dict.fromkeys(thread_rules.verified_ticket(d.thread_key, tenant, r) for r in refs)
        known = [r for r in refs if not thread_rules.looks_signed(r)]
        number = thread_rules.subject_tag(mail.subject)
        candidates: list[tuple[uuid.UUID, thread_rules.Reason]] = [
            *((t, thread_rules.Reason.SIGNED) for t in signed if t is not None),
            *(
                (t, thread_rules.Reason.REFERENCE)
                for t in await d.repo.tickets_by_reference(pool, tenant, known)
            ),
        ]
        if number is not None:
            tagged = await d.repo.ticket_by_number(pool, tenant, number)
            if tagged is not None:
                candidates.append((tagged, thread_rules.Reason.SUBJECT_TAG))
        for ticket_id, reason in candidates:
            row = await d.repo.final_ticket(pool, tenant, ticket_id)
            if row is None:
                continue
            found = thread_rules.Found(
                ticket_id=row.id,
                inbox_id=row.inbox_id,
                reason=reason,
                sender_is_participant=await d.repo.is_participant(pool, tenant, row.id, sender),
            )
            if thread_rules.may_join(found, inbox_id):
                return await self._with_contact(
                    request,
                    tickets_pb2.ResolveThreadResponse(
                        ticket_id=str(row.id), reason=reason, ticket=summary_pb(row)
                    ),
                )
        return await self._with_contact(request, tickets_pb2.ResolveThreadResponse())

    async def _with_contact(
        self, request: tickets_pb2.ResolveThreadRequest, resp: tickets_pb2.ResolveThreadResponse
    ) -> tickets_pb2.ResolveThreadResponse:
        """Routing's rules read the sender's contact fields (issue 18): added when asked."""
        if request.with_contact:
            sender = getattr(request.mail, "from").address
            found = await self._deps.contacts.of_sender(identity.require_tenant().tenant_id, sender)
            if found is not None:
                resp.contact.CopyFrom(found)
        return resp

    async def MintMessageId(
        self, request: tickets_pb2.MintMessageIdRequest, context: Context
    ) -> tickets_pb2.MintMessageIdResponse:
        ident = identity.require_tenant()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        if d.thread_key is None:
            raise FailedPrecondition("SB_THREAD_KEY is not set: Message-IDs cannot be signed")
        await self._visible_row(ident, ticket_id)
        mid = thread_rules.mint_message_id(
            d.thread_key, ident.tenant_id, str(ticket_id), os.urandom(5), request.domain
        )
        return tickets_pb2.MintMessageIdResponse(message_id=mid)

    # -- changes -------------------------------------------------------------------------

    async def UpdateTicket(
        self, request: tickets_pb2.UpdateTicketRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_operator()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        edit = _edit_from_pb(request)
        comment = domain.clean_text(request.comment, "comment", domain.COMMENT_MAX, required=False)
        operators = await d.directory.operators(ident) if edit.assignee_id else None
        if request.reply_fence:
            await d.locks.check_fence(ident, ticket_id, request.reply_fence)
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            row, changes = await self._apply(
                conn, ident, row, edit, comment, operators, without_survey=request.without_survey
            )
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(row), changes=_changes_pb(changes)
        )

    async def RestoreTicket(
        self, request: tickets_pb2.RestoreTicketRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_operator()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        comment = domain.clean_text(request.comment, "comment", domain.COMMENT_MAX, required=False)
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            if row.status != Status.TRASH.value:
                raise FailedPrecondition("the ticket is not in the trash", field="ticket_id")
            edit = FieldEdit(status=domain.restore_status(row))
            row, changes = await self._apply(conn, ident, row, edit, comment, None)
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(row), changes=_changes_pb(changes)
        )
