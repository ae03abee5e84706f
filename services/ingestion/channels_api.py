"""ChannelsService over gRPC (issue 21, ING-6; docs/channels.md): the administration of a
tenant's channels (manage_inboxes; credentials sealed with the SecretBox, never returned),
signed webhooks in (dispatched by kind to the `SignedParser`s of the composition root),
and outbound's side of replies (CheckReply, Deliver), conversations and deliveries."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC
from typing import Any

import grpc
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc, tickets_pb2, tickets_pb2_grpc
from switchboard.v1 import ingestion_channels_pb2 as C
from switchboard.v1 import ingestion_channels_pb2_grpc as C_grpc

from services.runtime import identity, log, permissions, signing
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import (
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from services.runtime.grpc_server import Context
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.secrets import SecretBox

from .channel_deliveries import ChannelReplies, window_ends
from .channel_intake import ChannelIntake, check
from .channel_model import KINDS, ChannelRow, ConversationRow, SignedParser, parse_pseudo_address
from .channel_repo import ChannelRepo, Sealed
from .channel_views import channel_pb, check_settings, conversation_pb, delivery_pb, ts

MAX_NAME = 200
MAX_BODY = 10 * 1024 * 1024


def _administrator() -> identity.Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_INBOXES, "manage channels")
    return ident


def _name(value: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > MAX_NAME:
        raise InvalidArgument(f"a name of 1 to {MAX_NAME} characters", field="name")
    return name


class ChannelsApi(C_grpc.ChannelsServiceServicer):
    def __init__(
        self,
        db: Database,
        repo: ChannelRepo,
        intake: ChannelIntake,
        replies: ChannelReplies,
        secrets_box: SecretBox,
        parsers: Mapping[str, SignedParser],
        accounts: grpc.aio.Channel,
        tickets: grpc.aio.Channel,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._db = db
        self._repo = repo
        self._intake = intake
        self._replies = replies
        self._box = secrets_box
        self._parsers = parsers
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._clock = clock
        self._ids = ids
        self._log = log.get("ingestion.channels")

    # -- administration ----------------------------------------------------------------

    async def _check_inbox(self, ident: identity.Identity, inbox_id: str) -> uuid.UUID:
        parsed = parse_uuid(inbox_id, "inbox_id")
        try:
            resp = await self._accounts.ListInboxes(
                accounts_pb2.ListInboxesRequest(all=True), metadata=ident.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts unavailable: {err.code().name}") from err
        if not any(i.id == str(parsed) for i in resp.inboxes):
            raise NotFound("no such inbox", field="inbox_id")
        return parsed

    async def _owned(self, ident: identity.Identity, channel_id: str) -> Sealed:
        found = await self._repo.get(
            uuid.UUID(ident.tenant_id), parse_uuid(channel_id, "channel_id")
        )
        if found is None:
            raise NotFound("no such channel", field="channel_id")
        return found

    def _credentials(
        self, request: C.CreateChannelRequest | C.UpdateChannelRequest, channel_id: uuid.UUID
    ) -> dict[str, Any]:
        """The request's secret and access token (empty: unchanged), checked and sealed."""
        out: dict[str, Any] = {}
        for field, value in (("secret", request.secret), ("access_token", request.access_token)):
            if not value:
                continue
            if len(value) > 4096 or any(c in value for c in "\r\n\0"):
                raise InvalidArgument("at most 4096 characters on one line", field=field)
            sealed = self._box.seal(value, str(channel_id))
            if field == "secret":
                out.update(secret_enc=sealed, secret_hint=signing.hint(value))
            else:
                out["token_enc"] = sealed
        return out

    async def CreateChannel(self, request: C.CreateChannelRequest, context: Context) -> C.Channel:
        ident = _administrator()
        if request.kind not in KINDS:
            raise InvalidArgument(f"one of {', '.join(KINDS)}", field="kind")
        name = _name(request.name)
        settings = check_settings(request.kind, getattr(request, request.kind))
        inbox = await self._check_inbox(ident, request.inbox_id)
        now = self._clock.now()
        row = ChannelRow(
            id=self._ids.new(),
            tenant_id=uuid.UUID(ident.tenant_id),
            kind=request.kind,
            inbox_id=inbox,
            name=name,
            public_key=secrets.token_urlsafe(24),
            settings=settings,
            enabled=True,
            secret_hint="",
            token_set=False,
            created_at=now,
            updated_at=now,
        )
        credentials = self._credentials(request, row.id)
        async with self._db.transaction() as conn:
            await self._repo.create(conn, row)
            await self._repo.set_credentials(conn, row.tenant_id, row.id, **credentials, now=now)
            made = await self._repo.get(row.tenant_id, row.id, conn)
        assert made is not None
        self._log.info("channel created", tenant_id=ident.tenant_id, channel_id=str(row.id))
        return channel_pb(made.row)

    async def ListChannels(
        self, request: C.ListChannelsRequest, context: Context
    ) -> C.ListChannelsResponse:
        ident = _administrator()
        if request.kind and request.kind not in KINDS:
            raise InvalidArgument(f"one of {', '.join(KINDS)}", field="kind")
        rows = await self._repo.channels(uuid.UUID(ident.tenant_id), request.kind)
        return C.ListChannelsResponse(channels=[channel_pb(s.row) for s in rows])

    async def GetChannel(self, request: C.GetChannelRequest, context: Context) -> C.Channel:
        ident = _administrator()
        return channel_pb((await self._owned(ident, request.channel_id)).row)

    async def UpdateChannel(self, request: C.UpdateChannelRequest, context: Context) -> C.Channel:
        ident = _administrator()
        found = (await self._owned(ident, request.channel_id)).row
        name = _name(request.name) if request.name else found.name
        kind = found.kind
        settings = found.settings
        if request.HasField(kind):
            settings = check_settings(kind, getattr(request, kind))
        inbox = (
            await self._check_inbox(ident, request.inbox_id) if request.inbox_id else found.inbox_id
        )
        enabled = request.enabled if request.HasField("enabled") else found.enabled
        now = self._clock.now()
        credentials = self._credentials(request, found.id)
        async with self._db.transaction() as conn:
            await self._repo.update(
                conn,
                found.tenant_id,
                found.id,
                name=name,
                enabled=enabled,
                settings=settings,
                inbox_id=inbox,
                now=now,
            )
            await self._repo.set_credentials(
                conn, found.tenant_id, found.id, **credentials, now=now
            )
            made = await self._repo.get(found.tenant_id, found.id, conn)
        if made is None:
            raise NotFound("no such channel", field="channel_id")
        return channel_pb(made.row)

    async def DeleteChannel(
        self, request: C.DeleteChannelRequest, context: Context
    ) -> C.DeleteChannelResponse:
        ident = _administrator()
        found = await self._owned(ident, request.channel_id)
        if not await self._repo.delete(found.row.tenant_id, found.row.id, self._clock.now()):
            raise NotFound("no such channel", field="channel_id")
        self._log.info("channel deleted", tenant_id=ident.tenant_id, channel_id=str(found.row.id))
        return C.DeleteChannelResponse()

    async def RotateChannelSecret(
        self, request: C.RotateChannelSecretRequest, context: Context
    ) -> C.RotateChannelSecretResponse:
        ident = _administrator()
        found = (await self._owned(ident, request.channel_id)).row
        if found.kind != "api":
            raise InvalidArgument(
                "only an API channel's secret is made here (LINE's is LINE's)", field="channel_id"
            )
        secret = signing.new_secret()
        now = self._clock.now()
        async with self._db.transaction() as conn:
            await self._repo.set_credentials(
                conn,
                found.tenant_id,
                found.id,
                secret_enc=self._box.seal(secret, str(found.id)),
                secret_hint=signing.hint(secret),
                now=now,
            )
            made = await self._repo.get(found.tenant_id, found.id, conn)
        assert made is not None
        self._log.info(
            "channel secret rotated", tenant_id=ident.tenant_id, channel_id=str(found.id)
        )
        return C.RotateChannelSecretResponse(secret=secret, channel=channel_pb(made.row))

    # -- signed webhooks in ------------------------------------------------------------

    async def ReceiveSigned(
        self, request: C.ReceiveSignedRequest, context: Context
    ) -> C.ReceiveSignedResponse:
        """Public: the public key names the channel (and so the tenant); a key of no
        enabled channel of that kind is NotFound, a bad signature Unauthenticated —
        nothing is stored either way."""
        parser = self._parsers.get(request.kind)
        if parser is None:
            raise NotFound("no such channel", field="public_key")
        found = await self._repo.by_public_key(request.public_key[:100])
        if found is None or found.row.kind != request.kind:
            raise NotFound("no such channel", field="public_key")
        if len(request.body) > MAX_BODY:
            raise InvalidArgument("the body is larger than 10 MB", field="body")
        now = self._clock.now()
        secret = ""
        if found.secret_enc is not None:
            secret = self._box.open(found.secret_enc, str(found.row.id))
        body = bytes(request.body)
        if not secret or not parser.verify(secret, body, request.signature, request.timestamp, now):
            self._log.warning(
                "signed webhook refused",
                tenant_id=str(found.row.tenant_id),
                channel_id=str(found.row.id),
                client=request.client_address[:100],
            )
            raise Unauthenticated("the signature does not match (or is too old)")
        messages = parser.parse(body, now)
        for n, msg in enumerate(messages):  # all checked before any is stored
            try:
                check(msg)
            except InvalidArgument as err:
                raise InvalidArgument(err.message, field=f"messages[{n}].{err.field}") from None
        out = C.ReceiveSignedResponse()
        for msg in messages:
            got = await self._intake.receive(found.row, msg)
            out.messages.add(
                conversation_id=str(got.conversation.id),
                seq=got.seq,
                message_id=got.message_id,
                duplicate=got.duplicate,
            )
        return out

    # -- replies -----------------------------------------------------------------------

    @staticmethod
    def _service() -> identity.Identity:
        ident = identity.require_tenant()
        if ident.operator_id:
            raise PermissionDenied("only outbound delivers replies through channels")
        return ident

    async def CheckReply(
        self, request: C.CheckReplyRequest, context: Context
    ) -> C.CheckReplyResponse:
        ident = identity.require_tenant()
        at = request.at.ToDatetime(tzinfo=UTC) if request.HasField("at") else None
        v = await self._replies.check_reply(
            uuid.UUID(ident.tenant_id), request.conversation_id, request.address, at
        )
        out = C.CheckReplyResponse(allowed=v.allowed, reason=v.reason, message=v.message)
        ts(out, "window_ends_at", v.window_ends_at)
        return out

    async def Deliver(self, request: C.DeliverRequest, context: Context) -> C.DeliveryReceipt:
        ident = self._service()
        if request.ticket_id:
            parse_uuid(request.ticket_id, "ticket_id")
        r = await self._replies.deliver(
            uuid.UUID(ident.tenant_id),
            send_id=request.send_id,
            conversation_id=request.conversation_id,
            address=request.address,
            text=request.text,
            author_name=request.author_name,
            ticket_id=request.ticket_id,
        )
        return C.DeliveryReceipt(
            delivery_id=r.delivery_id,
            state=r.state,
            seq=r.seq,
            error=r.error,
            duplicate=r.duplicate,
        )

    # -- conversations and deliveries ----------------------------------------------------

    async def GetConversation(
        self, request: C.GetConversationRequest, context: Context
    ) -> C.Conversation:
        ident = identity.require_tenant()
        tenant = uuid.UUID(ident.tenant_id)
        if request.conversation_id:
            conv = await self._repo.conversation(
                tenant, parse_uuid(request.conversation_id, "conversation_id")
            )
        elif request.ticket_id:
            ticket_id = parse_uuid(request.ticket_id, "ticket_id")
            conv = await self._repo.conversation_of_ticket(tenant, ticket_id)
            if conv is None:
                conv = await self._by_customer(ident, tenant, ticket_id)
        else:
            raise InvalidArgument("conversation_id or ticket_id is required", field="ticket_id")
        sealed = None if conv is None else await self._repo.channel_of(tenant, conv.channel_id)
        if conv is None or sealed is None:
            raise NotFound("no such conversation", field="conversation_id")
        if ident.operator_id:
            await self._require_visible(ident, conv, sealed.row)
        return conversation_pb(
            conv,
            sealed.row.kind,
            sealed.row.inbox_id,
            window_ends(sealed.row, conv),
            ident.sees_addresses(),
        )

    async def _by_customer(
        self, ident: identity.Identity, tenant: uuid.UUID, ticket_id: uuid.UUID
    ) -> ConversationRow | None:
        """A new ticket before `ingestion__channel_tickets` links it (a moment after tickets
        filed it; longer when the bus is behind): its customer — the conversation's
        pseudo-address — names the conversation. Asked of tickets as the caller, so an
        operator who may not see the ticket learns nothing. A conversation linked to
        another ticket is not this one's."""
        try:
            got = await self._tickets.GetTicket(
                tickets_pb2.GetTicketRequest(ticket_id=str(ticket_id)),
                metadata=ident.metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                return None
            raise Unavailable(f"tickets unavailable: {err.code().name}") from err
        parsed = parse_pseudo_address(getattr(got.ticket, "from").address)
        if parsed is None:
            return None
        conv = await self._repo.conversation(tenant, parsed[0])
        if conv is None or (conv.ticket_id is not None and conv.ticket_id != ticket_id):
            return None
        return dataclasses.replace(conv, ticket_id=ticket_id)

    async def _require_visible(
        self, ident: identity.Identity, conv: ConversationRow, channel: ChannelRow
    ) -> None:
        """An operator sees a conversation with its ticket (tickets says whether: the
        ticket's inbox now), or, before it has one, with the channel's inbox."""
        if conv.ticket_id is None:
            if not ident.sees_inbox(channel.inbox_id):
                raise NotFound("no such conversation", field="conversation_id")
            return
        try:
            await self._tickets.GetTicket(
                tickets_pb2.GetTicketRequest(ticket_id=str(conv.ticket_id)),
                metadata=ident.metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
                raise NotFound("no such conversation", field="conversation_id") from None
            raise Unavailable(f"tickets unavailable: {err.code().name}") from err

    async def ListDeliveries(
        self, request: C.ListDeliveriesRequest, context: Context
    ) -> C.ListDeliveriesResponse:
        ident = _administrator()
        if request.state not in ("", "pending", "delivered", "dead"):
            raise InvalidArgument("pending, delivered or dead", field="state")
        channel = parse_uuid(request.channel_id, "channel_id") if request.channel_id else None
        limit = request.limit if 0 < request.limit <= 200 else 50
        rows = await self._repo.deliveries(
            uuid.UUID(ident.tenant_id), request.state, channel, limit
        )
        return C.ListDeliveriesResponse(deliveries=[delivery_pb(d) for d in rows])

    async def RetryDelivery(self, request: C.RetryDeliveryRequest, context: Context) -> C.Delivery:
        ident = _administrator()
        d = await self._replies.retry(
            uuid.UUID(ident.tenant_id), parse_uuid(request.delivery_id, "delivery_id")
        )
        return delivery_pb(d)
