"""Changes to a ticket's shape in TicketsService: transfer to another inbox, bulk updates,
merge and split. Each audited and announced in the same transaction."""

from __future__ import annotations

import uuid

from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import events, identity
from services.runtime.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import channels, domain
from .api_tickets import (
    TicketsCoreApi,
    _changes_pb,
    _edit_from_pb,
)
from .convert import summary_pb
from .domain import Change, Status


class ReshapeApi(TicketsCoreApi):
    async def TransferTicket(
        self, request: tickets_pb2.TransferTicketRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_operator()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        note = domain.clean_text(request.note, "note", domain.COMMENT_MAX, required=False)
        await self._visible_row(ident, ticket_id)  # an unseen ticket: 404 before anything
        inboxes = await d.directory.inboxes(ident)
        name = inboxes.get(str(inbox_id))
        if name is None:
            raise PermissionDenied("you have no access to that inbox", field="inbox_id")
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            if row.merged_into is not None:
                raise FailedPrecondition("the ticket was merged into another", field="ticket_id")
            if row.inbox_id == inbox_id:
                raise FailedPrecondition("the ticket is already in that inbox", field="inbox_id")
            change = Change("inbox", row.inbox_name, name)
            left = common_pb2.InboxRef(id=str(row.inbox_id), name=row.inbox_name)
            now = d.clock.now()
            row = await d.repo.update_fields(
                conn, ident.tenant_id, ticket_id, {"inbox_id": inbox_id, "inbox_name": name}, now
            )
            if note:
                await d.repo.insert_comment(
                    conn,
                    id=d.ids.new(),
                    tenant_id=ident.tenant_id,
                    ticket_id=ticket_id,
                    author=common_pb2.OperatorRef(
                        id=ident.operator_id, display_name=ident.display_name
                    ),
                    body=note,
                    mentions=[],
                    at=now,
                )
            await self._audit(conn, ident, ticket_id, "transfer", [change], note)
            await self._announce(conn, ident, row, [change], note, "transfer", left)
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(row), changes=_changes_pb([change])
        )

    async def BulkUpdate(
        self, request: tickets_pb2.BulkUpdateRequest, context: Context
    ) -> tickets_pb2.BulkUpdateResponse:
        ident = identity.require_operator()
        d = self._deps
        ids = list(request.ticket_ids)
        if not ids:
            raise InvalidArgument("ticket_ids is empty", field="ticket_ids")
        if len(ids) > domain.BULK_MAX:
            raise InvalidArgument(
                f"at most {domain.BULK_MAX} tickets at once (got {len(ids)})", field="ticket_ids"
            )
        if len(set(ids)) != len(ids):
            raise InvalidArgument("ticket_ids has duplicates", field="ticket_ids")
        parsed = [parse_uuid(i, "ticket_ids") for i in ids]
        edit = _edit_from_pb(request.change)
        if edit.empty:
            raise InvalidArgument("the change changes nothing", field="change")
        comment = domain.clean_text(
            request.change.comment, "comment", domain.COMMENT_MAX, required=False
        )
        operators = await d.directory.operators(ident) if edit.assignee_id else None
        if edit.assignee_id and edit.assignee_id not in (operators or {}):
            raise InvalidArgument("no such operator", field="assignee_id")
        resp = tickets_pb2.BulkUpdateResponse()
        # One short transaction per ticket: a failure of one leaves the others done, and no
        # long lock is held over a thousand rows.
        for raw, ticket_id in zip(ids, parsed, strict=True):
            result = resp.results.add(ticket_id=raw)
            try:
                async with d.db.transaction() as conn:
                    row = await self._locked_row(conn, ident, ticket_id, "ticket_ids")
                    _, changes = await self._apply(
                        conn,
                        ident,
                        row,
                        edit,
                        comment,
                        operators,
                        without_survey=request.change.without_survey,
                    )
                result.ok, result.changed = True, bool(changes)
            except DomainError as err:
                result.ok = False
                result.error_code = err.code.name.lower()
                result.error = err.message
        d.outbox.wake()
        return resp

    async def MergeTickets(
        self, request: tickets_pb2.MergeTicketsRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_operator()
        d = self._deps
        target_id = parse_uuid(request.target_ticket_id, "target_ticket_id")
        source_id = parse_uuid(request.source_ticket_id, "source_ticket_id")
        comment = domain.clean_text(request.comment, "comment", domain.COMMENT_MAX, required=False)
        if target_id == source_id:
            raise InvalidArgument("a ticket cannot be merged into itself", field="source_ticket_id")
        async with d.db.transaction() as conn:
            # lock both rows in id order, so two opposite merges cannot deadlock
            fields = {target_id: "target_ticket_id", source_id: "source_ticket_id"}
            rows = {t: await self._locked_row(conn, ident, t, fields[t]) for t in sorted(fields)}
            target, source = rows[target_id], rows[source_id]
            for r, f in ((target, "target_ticket_id"), (source, "source_ticket_id")):
                if r.merged_into is not None:
                    raise FailedPrecondition("that ticket was already merged", field=f)
            now = d.clock.now()
            if source.lock_expires_at is not None and source.lock_expires_at > now:
                raise FailedPrecondition(
                    f"{source.lock_holder_name} is replying to the source ticket",
                    field="source_ticket_id",
                )
            await d.repo.move_messages(conn, ident.tenant_id, source_id, target_id)
            source = await d.repo.update_fields(
                conn, ident.tenant_id, source_id, {"merged_into": target_id}, now
            )
            target = await d.repo.update_fields(conn, ident.tenant_id, target_id, {}, now)
            into = Change("merged_into", "", f"#{target.number}")
            took = Change("merged", "", f"#{source.number}")
            await self._audit(conn, ident, source_id, "merge", [into], comment)
            await self._audit(conn, ident, target_id, "merge", [took], comment)
            for r, c in ((source, into), (target, took)):
                await self._announce(conn, ident, r, [c], comment, "merge")
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(target), changes=_changes_pb([took])
        )

    async def SplitTicket(
        self, request: tickets_pb2.SplitTicketRequest, context: Context
    ) -> tickets_pb2.UpdateTicketResponse:
        ident = identity.require_operator()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        message_id = parse_uuid(request.message_id, "message_id")
        comment = domain.clean_text(request.comment, "comment", domain.COMMENT_MAX, required=False)
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            msg = await d.repo.message_row(conn, ident.tenant_id, message_id)
            if msg is None or msg.ticket_id != ticket_id:
                raise NotFound("no such message in this ticket", field="message_id")
            if row.message_count <= 1:
                raise FailedPrecondition(
                    "the ticket's only message cannot be split out", field="message_id"
                )
            now = d.clock.now()
            who = channels.adapter(msg.channel).participant(msg)
            subject = row.subject
            if msg.summary is not None:
                mail = events_pb2.MailSummary.FromString(bytes(msg.summary))
                subject = mail.subject or subject
            contact_id = row.contact_id
            if who.address:
                contact_id = await d.contacts.for_sender(
                    conn, ident.tenant_id, who.address, who.name, now
                )
            new = domain.NewTicket(
                id=d.ids.new_str(),
                subject=subject[: domain.SUBJECT_MAX],
                status=Status.OPEN,
                inbox=common_pb2.InboxRef(id=str(row.inbox_id), name=row.inbox_name),
                sender=who
                if who.address or who.name
                else common_pb2.Address(name=row.from_name, address=row.from_address),
                received_at=msg.received_at,
            )
            number = await d.repo.next_number(conn, ident.tenant_id)
            await d.repo.insert_ticket(
                conn, ident.tenant_id, new, now, number=number, contact_id=contact_id
            )
            new_id = uuid.UUID(new.id)
            await d.repo.move_messages(conn, ident.tenant_id, ticket_id, new_id, message_id)
            new_row = await d.repo.row(conn, ident.tenant_id, new_id)
            assert new_row is not None  # inserted above, in this transaction
            old_row = await d.repo.update_fields(conn, ident.tenant_id, ticket_id, {}, now)
            out = Change("split", "", f"#{number}")
            came = Change("split_from", "", f"#{row.number}")
            await self._audit(conn, ident, ticket_id, "split", [out], comment)
            await self._audit(conn, ident, new_id, "split", [came], comment)
            await self._emit(
                conn,
                events.TICKET_CREATED,
                ident,
                events_pb2.TicketCreated(ticket=summary_pb(new_row), message_id=str(message_id)),
            )
            await self._announce(conn, ident, old_row, [out], comment, "split")
        d.outbox.wake()
        return tickets_pb2.UpdateTicketResponse(
            ticket=summary_pb(new_row), changes=_changes_pb([came])
        )
