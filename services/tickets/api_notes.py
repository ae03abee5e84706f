"""What operators add to a ticket in TicketsService — internal comments (with mentions)
and phone memos — and the per-inbox settings (elapsed-time thresholds)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import events, identity, permissions
from services.runtime.errors import (
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
    _thresholds,
    _ts,
    _uuid_or_none,
)
from .convert import summary_pb
from .domain import Change, Status
from .records import InboxSettings

# "@login" in a comment: a login may itself be a mail address ("@agent2@demo.example")
_MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9][A-Za-z0-9._+-]{0,99}(?:@[A-Za-z0-9.-]{1,253})?)")


def mentioned_logins(body: str) -> list[str]:
    """The logins "@mentioned" in a comment, lower case, trailing dots dropped."""
    return [m.rstrip(".").lower() for m in _MENTION.findall(body)]


class NotesApi(TicketsCoreApi):
    async def AddComment(
        self, request: tickets_pb2.AddCommentRequest, context: Context
    ) -> tickets_pb2.AddCommentResponse:
        ident = identity.require_operator()
        d = self._deps
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        body = domain.clean_text(request.body, "body", domain.COMMENT_MAX)
        mention_ids = [str(parse_uuid(m, "mention_ids")) for m in request.mention_ids]
        operators = await d.directory.operators(ident)
        by_login = {o.login.lower(): o for o in operators.values()}
        mentioned: dict[str, Any] = {}
        for mid in mention_ids:
            op = operators.get(mid)
            if op is None:
                raise InvalidArgument("a mentioned operator does not exist", field="mention_ids")
            mentioned[op.id] = op
        by_local = {}
        for o in operators.values():
            local = o.login.lower().split("@", 1)[0]
            by_local[local] = None if local in by_local else o  # only when unambiguous
        for login in mentioned_logins(body):
            op = by_login.get(login) or by_local.get(login)
            if op is not None:
                mentioned[op.id] = op
        author = common_pb2.OperatorRef(id=ident.operator_id, display_name=ident.display_name)
        refs = [o.ref() for o in mentioned.values()]
        async with d.db.transaction() as conn:
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            if row.merged_into is not None:
                raise FailedPrecondition("the ticket was merged into another", field="ticket_id")
            now = d.clock.now()
            comment = await d.repo.insert_comment(
                conn,
                id=d.ids.new(),
                tenant_id=ident.tenant_id,
                ticket_id=ticket_id,
                author=author,
                body=body,
                mentions=refs,
                at=now,
            )
            row = await d.repo.update_fields(conn, ident.tenant_id, ticket_id, {}, now)
            await self._audit(
                conn,
                ident,
                ticket_id,
                "comment",
                [Change("mentions", "", ", ".join(o.display_name for o in mentioned.values()))]
                if mentioned
                else [],
            )
            await self._emit(
                conn,
                events.COMMENT_ADDED,
                ident,
                events_pb2.CommentAdded(
                    ticket=summary_pb(row),
                    comment_id=comment.id,
                    author=author,
                    body=body,
                    mentions=refs,
                ),
            )
        d.outbox.wake()
        return tickets_pb2.AddCommentResponse(comment=comment)

    async def AddPhoneMemo(
        self, request: tickets_pb2.AddPhoneMemoRequest, context: Context
    ) -> tickets_pb2.AddPhoneMemoResponse:
        ident = identity.require_operator()
        d = self._deps
        now = d.clock.now()
        memo = domain.PhoneMemoInput.validated(
            body=request.body,
            direction=request.direction,
            caller_name=request.caller_name,
            phone=request.phone,
            duration_s=request.duration_s,
            occurred_at=_ts(request.occurred_at) or now,
            now=now,
        )
        ticket_id = _uuid_or_none(request.ticket_id, "ticket_id")
        contact_id = _uuid_or_none(request.contact_id, "contact_id")
        inbox_name = ""
        if ticket_id is None:
            inbox_id = parse_uuid(request.inbox_id, "inbox_id")
            inbox_name = (await d.directory.inboxes(ident)).get(str(inbox_id), "")
            if not inbox_name:
                raise PermissionDenied("you have no access to that inbox", field="inbox_id")
        author = common_pb2.OperatorRef(id=ident.operator_id, display_name=ident.display_name)
        memo_id = d.ids.new()
        async with d.db.transaction() as conn:
            if contact_id is not None:
                found = await d.contacts.get(
                    conn, ident.tenant_id, contact_id, ident.inbox_filter()
                )
                if found is None or found.merged_into:
                    raise NotFound("no such contact", field="contact_id")
            created = ticket_id is None
            if ticket_id is None:
                subject = domain.clean_text(
                    request.subject or f"Phone: {memo.caller_name or memo.phone or 'call'}",
                    "subject",
                    domain.SUBJECT_MAX,
                )
                new = domain.NewTicket(
                    id=d.ids.new_str(),
                    subject=subject,
                    status=Status.OPEN,
                    inbox=common_pb2.InboxRef(id=str(inbox_id), name=inbox_name),
                    sender=common_pb2.Address(name=memo.caller_name),
                    received_at=memo.occurred_at,
                )
                number = await d.repo.next_number(conn, ident.tenant_id)
                await d.repo.insert_ticket(
                    conn, ident.tenant_id, new, now, number=number, contact_id=contact_id
                )
                ticket_id = uuid.UUID(new.id)
            row = await self._locked_row(conn, ident, ticket_id, "ticket_id")
            if row.merged_into is not None:
                raise FailedPrecondition("the ticket was merged into another", field="ticket_id")
            mrow = await d.repo.insert_memo(conn, ident.tenant_id, ticket_id, memo_id, memo, author)
            values: dict[str, object] = {}
            changes: list[Change] = []
            if (
                not created
                and memo.direction == "inbound"
                and row.status in (Status.PENDING, *domain.CLOSED)
            ):
                # the customer called: like their reply by mail, it lands in open
                values = {"status": "open", "closed_at": None}
                changes = [Change("status", row.status, "open")]
            if contact_id is not None and row.contact_id is None:
                values["contact_id"] = contact_id
            row = await d.repo.update_fields(conn, ident.tenant_id, ticket_id, values, now)
            await self._audit(conn, ident, ticket_id, "phone_memo", changes)
            message = channels.message_pb(mrow)
            summary = summary_pb(row)
            if created:
                await self._emit(
                    conn,
                    events.TICKET_CREATED,
                    ident,
                    events_pb2.TicketCreated(
                        ticket=summary, message_id=str(memo_id), channel="phone"
                    ),
                )
            else:
                await self._emit(
                    conn,
                    events.TICKET_MESSAGE_ADDED,
                    ident,
                    events_pb2.TicketMessageAdded(
                        ticket=summary,
                        message_id=str(memo_id),
                        channel="phone",
                        reopened=bool(changes),
                    ),
                )
        d.outbox.wake()
        return tickets_pb2.AddPhoneMemoResponse(ticket=summary, message=message)

    # -- per-inbox settings ------------------------------------------------------------

    async def GetInboxSettings(
        self, request: tickets_pb2.GetInboxSettingsRequest, context: Context
    ) -> tickets_pb2.InboxSettings:
        ident = identity.require_tenant()
        d = self._deps
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        if str(inbox_id) not in await d.directory.inboxes(ident):
            raise NotFound("no such inbox", field="inbox_id")
        found = await d.repo.inbox_settings(d.db.pool, ident.tenant_id, [inbox_id])
        return _settings_pb(inbox_id, found.get(inbox_id))

    async def SetInboxSettings(
        self, request: tickets_pb2.InboxSettings, context: Context
    ) -> tickets_pb2.InboxSettings:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_INBOXES, "change inbox settings")
        d = self._deps
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        if str(inbox_id) not in await d.directory.inboxes(ident):
            raise NotFound("no such inbox", field="inbox_id")
        thresholds = domain.validate_thresholds(
            [domain.Threshold(t.after_minutes, t.color) for t in request.thresholds]
        )
        if not 0 <= request.new_ticket_after_days <= 3650:
            raise InvalidArgument(
                "new_ticket_after_days must be 0 to 3650", field="new_ticket_after_days"
            )
        row = await d.repo.set_inbox_settings(
            ident.tenant_id,
            inbox_id,
            [{"after_minutes": t.after_minutes, "color": t.color.lower()} for t in thresholds],
            request.new_ticket_after_days,
            d.clock.now(),
        )
        return _settings_pb(inbox_id, row)


def _settings_pb(inbox_id: uuid.UUID, row: InboxSettings | None) -> tickets_pb2.InboxSettings:
    s = tickets_pb2.InboxSettings(inbox_id=str(inbox_id))
    if row is not None:
        s.new_ticket_after_days = row.new_ticket_after_days
        s.thresholds.extend(
            tickets_pb2.ElapsedThreshold(after_minutes=t.after_minutes, color=t.color)
            for t in _thresholds(row)
        )
    return s
