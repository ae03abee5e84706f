"""OutreachService (issue 20, OUT-6): the suppression list (`manage_outreach`), the public
one-click unsubscribe behind the gateway's page, and agentless notifications.

A notification is sent exactly once per (tenant, idempotency key): its row and its
outbox item are written in one transaction, the row under a unique constraint — a
repeated request, or one of many concurrent ones, inserts nothing, queues nothing, and
answers with the key's first notification (a different request under the key is
ALREADY_EXISTS naming `idempotency_key`). The mail goes from the inbox's first address,
with `Auto-Submitted: auto-generated`, as a new mail: once sent it is filed like one (a
reply to it threads into that ticket). A notification to an address suppressed because
it bounced for good queues nothing and is `failed`; one unsubscribed from campaigns, or
added by an operator, still gets it — a notification answers something the recipient
did (transactional), like a reply to their inquiry.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from switchboard.v1 import outbound_outreach_pb2 as pb

from services.runtime import identity, log, permissions
from services.runtime import mail as mime
from services.runtime.errors import AlreadyExists, InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import domain, notification_repo, suppression
from . import notification_domain as nd
from . import suppression_domain as sd
from .api import Deps, SendsApi
from .automatic import automatic_send, queue
from .notification_repo import NewNotification, Notification

NOTIFICATION_HEADERS = (("Auto-Submitted", "auto-generated"),)
NAME_MAX = 200


def _outreach() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_OUTREACH, "manage outreach")
    return ident


def _ts(out: Any, value: Any) -> None:
    if value is not None:
        out.FromDatetime(value)


def suppression_pb(row: suppression.Suppression) -> pb.Suppression:
    out = pb.Suppression(
        address=row.address, reason=row.reason, campaign_id=str(row.campaign_id or "")
    )
    _ts(out.created_at, row.created_at)
    return out


def notification_pb(n: Notification) -> pb.Notification:
    out = pb.Notification(
        id=str(n.id),
        idempotency_key=n.idempotency_key,
        inbox_id=str(n.inbox_id),
        to=pb.Recipient(address=n.to_address, name=n.to_name),
        subject=n.subject,
        template_id=n.template_id,
        state=n.state,
        error=n.error,
        send_id=str(n.send_id or ""),
    )
    _ts(out.created_at, n.created_at)
    _ts(out.sent_at, n.sent_at)
    return out


def masked(address: str) -> str:
    local, _, host = address.partition("@")
    return f"{local[:1]}***@{host}"


class OutreachApi:
    def __init__(self, deps: Deps, sends: SendsApi, config: sd.UnsubscribeConfig) -> None:
        self._d = deps
        self._sends = sends
        self._config = config
        self._log = log.get("outbound.outreach")

    # -- the suppression list ------------------------------------------------------------

    async def ListSuppressions(
        self, request: pb.ListSuppressionsRequest, context: Context
    ) -> pb.ListSuppressionsResponse:
        ident = _outreach()
        rows, cursor = await suppression.list_suppressions(
            self._d.db.pool,
            ident.tenant_id,
            query=request.query,
            cursor=request.cursor,
            limit=request.limit or 50,
        )
        return pb.ListSuppressionsResponse(
            suppressions=[suppression_pb(r) for r in rows], next_cursor=cursor
        )

    async def AddSuppression(
        self, request: pb.AddSuppressionRequest, context: Context
    ) -> pb.Suppression:
        ident = _outreach()
        address = sd.check_address(request.address)
        async with self._d.db.transaction() as conn:
            added = await suppression.suppress(
                conn, ident.tenant_id, address, "manual", now=self._d.clock.now()
            )
        rows = await suppression.entries(self._d.db.pool, ident.tenant_id, [address])
        self._log.info("suppression added", tenant_id=ident.tenant_id, added=added)
        return suppression_pb(rows[0])

    async def DeleteSuppression(
        self, request: pb.DeleteSuppressionRequest, context: Context
    ) -> pb.DeleteSuppressionResponse:
        ident = _outreach()
        if not await suppression.unsuppress(self._d.db.pool, ident.tenant_id, request.address):
            raise NotFound("that address is not on the suppression list", field="address")
        self._log.info("suppression removed", tenant_id=ident.tenant_id)
        return pb.DeleteSuppressionResponse(deleted=True)

    # -- one-click unsubscribe (public) --------------------------------------------------

    def _token(self, token: str) -> sd.Unsubscribe:
        try:
            return sd.read_token(self._config.secret, token)
        except sd.TokenRefused:
            raise InvalidArgument("this unsubscribe link is not valid", field="token") from None

    async def ReadUnsubscribe(
        self, request: pb.UnsubscribeRequest, context: Context
    ) -> pb.UnsubscribeState:
        what = self._token(request.token)
        found = await suppression.suppressed_among(self._d.db.pool, what.tenant_id, [what.address])
        return pb.UnsubscribeState(
            language=what.language,
            masked_address=masked(what.address),
            unsubscribed=bool(found),
        )

    async def Unsubscribe(
        self, request: pb.UnsubscribeRequest, context: Context
    ) -> pb.UnsubscribeState:
        what = self._token(request.token)
        async with self._d.db.transaction() as conn:
            added = await suppression.suppress(
                conn,
                what.tenant_id,
                what.address,
                "unsubscribed",
                campaign_id=what.campaign_id or None,
                recipient_id=what.recipient_id or None,
                language=what.language,
                now=self._d.clock.now(),
            )
        if added:
            self._d.outbox.wake()
        self._log.info(
            "unsubscribed", tenant_id=what.tenant_id, campaign_id=what.campaign_id, added=added
        )
        return pb.UnsubscribeState(
            language=what.language,
            masked_address=masked(what.address),
            unsubscribed=True,
            changed=added,
        )

    # -- notifications -------------------------------------------------------------------

    async def _first(self, tenant: str, key: str, fingerprint: str) -> Notification | None:
        """The key's notification, if any; ALREADY_EXISTS when it was another request."""
        found = await notification_repo.by_key(self._d.db.pool, tenant, key)
        if found is not None and found.fingerprint != fingerprint:
            raise AlreadyExists(
                f"the idempotency key {key!r} was used for a different notification",
                field="idempotency_key",
            )
        return found

    async def CreateNotification(
        self, request: pb.CreateNotificationRequest, context: Context
    ) -> pb.CreateNotificationResponse:
        # an operator with manage_outreach, or a service's call (ingestion's chat
        # transcripts through outbound's consumer, issue 21)
        ident = identity.require_tenant()
        if ident.operator_id:
            ident = _outreach()
        d = self._d
        key = nd.check_key(request.idempotency_key)
        variables = nd.check_variables(dict(request.variables))
        fingerprint = nd.fingerprint(
            inbox_id=request.inbox_id,
            template_id=request.template_id,
            subject=request.subject,
            body=request.body,
            to_address=request.to.address.strip(),
            to_name=request.to.name,
            variables=variables,
        )
        first = await self._first(ident.tenant_id, key, fingerprint)
        if first is not None:
            return pb.CreateNotificationResponse(notification=notification_pb(first))
        new = await self._prepare(ident, request, key, fingerprint, variables)
        notification, send = new
        async with d.db.transaction() as conn:
            inserted = await notification_repo.insert(conn, notification)
            if inserted and send is not None:
                await queue(d, conn, send, notification.created_at)
        if not inserted:  # a concurrent request with the key won
            first = await self._first(ident.tenant_id, key, fingerprint)
            assert first is not None  # notifications are never deleted
            return pb.CreateNotificationResponse(notification=notification_pb(first))
        if send is not None:
            d.outbox.wake()
            d.dispatcher.wake()
        self._log.info(
            "notification queued" if send else "notification not sent",
            tenant_id=ident.tenant_id,
            notification_id=str(notification.id),
            why=notification.error or None,
        )
        row = await notification_repo.by_id(d.db.pool, ident.tenant_id, notification.id, None)
        assert row is not None
        return pb.CreateNotificationResponse(notification=notification_pb(row), created=True)

    async def _prepare(
        self,
        ident: Identity,
        request: pb.CreateNotificationRequest,
        key: str,
        fingerprint: str,
        variables: dict[str, str],
    ) -> tuple[NewNotification, Any]:
        """The row and its outbox item (None when nothing is to be sent), checked and
        rendered; InvalidArgument/NotFound naming the field otherwise — nothing stored."""
        d = self._d
        inbox_id = parse_uuid(request.inbox_id, "inbox_id")
        visible = ident.inbox_filter()
        inboxes = await d.peers.inboxes(Identity(tenant_id=ident.tenant_id).metadata())
        inbox = next((i for i in inboxes if i.id == str(inbox_id)), None)
        if inbox is None or (visible is not None and str(inbox_id) not in visible):
            raise NotFound("no such inbox", field="inbox_id")
        if not inbox.addresses:
            raise InvalidArgument("the inbox has no address to send from", field="inbox_id")
        to = mime.parse_address(request.to.address.strip(), "to.address")
        if "<" in request.to.address:
            raise InvalidArgument("to.address is a bare address", field="to.address")
        mime.check_header_value(request.to.name, "to.name")  # no line breaks, as written
        name = " ".join(request.to.name.split())
        if len(name) > NAME_MAX:
            raise InvalidArgument(f"to.name is at most {NAME_MAX} characters", field="to.name")
        if request.template_id and (request.subject or request.body):
            raise InvalidArgument(
                "give a template_id or subject and body, not both", field="template_id"
            )
        if request.template_id:
            template = await d.peers.get_template(
                ident.metadata(), request.template_id, "template_id"
            )
            if template.inbox_ids and str(inbox_id) not in template.inbox_ids:
                raise InvalidArgument(
                    "the template is not usable in this inbox", field="template_id"
                )
            subject, text, body_html, source = (
                template.subject,
                template.body_text,
                template.body_html,
                "template_id",
            )
        else:
            if not request.subject.strip():
                raise InvalidArgument("subject is required (or a template_id)", field="subject")
            if not request.body.strip():
                raise InvalidArgument("body is required (or a template_id)", field="body")
            if len(request.subject) > nd.SUBJECT_MAX or len(request.body) > nd.BODY_MAX:
                raise InvalidArgument("the subject or the body is too long", field="body")
            subject, text, body_html, source = request.subject, request.body, "", "body"
        from_box = mime.Mailbox(mime.header_text(inbox.name), inbox.addresses[0])
        rendered = nd.render_all(
            subject=subject,
            text=text,
            body_html=body_html,
            ctx=nd.Context(
                to_name=name,
                to_address=to.address,
                inbox_name=inbox.name,
                inbox_address=from_box.address,
                variables=variables,
            ),
            source=source,
        )
        now = d.clock.now()
        notification_id = d.ids.new()
        reason = await suppression.reason_of(d.db.pool, ident.tenant_id, to.address)
        row = NewNotification(
            tenant_id=uuid.UUID(ident.tenant_id),
            id=notification_id,
            idempotency_key=key,
            fingerprint=fingerprint,
            inbox_id=inbox_id,
            to_address=to.address.lower(),
            to_name=name,
            template_id=request.template_id,
            subject=rendered.subject,
            send_id=None,
            state="failed" if reason == "bounced" else "queued",
            error="not sent: the address bounced before (suppressed)"
            if reason == "bounced"
            else "",
            created_by=uuid.UUID(ident.operator_id) if ident.operator_id else None,
            created_at=now,
        )
        if reason == "bounced":
            return row, None
        message_id = f"{notification_id.hex}.sb@{domain.domain_of(from_box.address)}"
        out = mime.Outgoing(
            sender=from_box,
            to=[mime.Mailbox(name, to.address)],
            cc=[],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            extra_headers=NOTIFICATION_HEADERS,
        )
        raw = mime.build(out, message_id=message_id, date=now).as_bytes()
        raw, signed = await self._sends.sign(ident.tenant_id, raw, from_box.address)
        send = automatic_send(
            d,
            tenant=ident.tenant_id,
            kind="notification",
            ticket_id="",
            inbox_id=str(inbox_id),
            message_id=message_id,
            subject=rendered.subject,
            sender=from_box.address,
            recipient=to.address,
            raw=raw,
            signed=signed,
            now=now,
        )
        return replace(row, send_id=send.id), send

    async def GetNotification(
        self, request: pb.GetNotificationRequest, context: Context
    ) -> pb.Notification:
        ident = _outreach()
        found = await notification_repo.by_id(
            self._d.db.pool,
            ident.tenant_id,
            parse_uuid(request.notification_id, "notification_id"),
            ident.inbox_filter(),
        )
        if found is None:
            raise NotFound("no such notification", field="notification_id")
        return notification_pb(found)

    async def ListNotifications(
        self, request: pb.ListNotificationsRequest, context: Context
    ) -> pb.ListNotificationsResponse:
        ident = _outreach()
        if request.state and request.state not in nd.STATES:
            raise InvalidArgument("state is queued, sent, failed or bounced", field="state")
        rows, cursor = await notification_repo.page(
            self._d.db.pool,
            ident.tenant_id,
            inboxes=ident.inbox_filter(),
            cursor=request.cursor,
            limit=request.limit or 50,
            state=request.state,
        )
        return pb.ListNotificationsResponse(
            notifications=[notification_pb(r) for r in rows], next_cursor=cursor
        )
