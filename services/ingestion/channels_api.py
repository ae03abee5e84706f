"""ChannelsService over gRPC (issue 21, ING-6; docs/channels.md): the administration of a
tenant's channels (manage_inboxes; credentials sealed with the SecretBox, never returned),
signed webhooks in (dispatched by kind to the `SignedParser`s of the composition root),
and outbound's side of replies (CheckReply, Deliver), conversations and deliveries."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import grpc
from google.protobuf import json_format
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
from .channel_intake import ChannelIntake
from .channel_model import (
    CAPABILITIES,
    KINDS,
    MAX_REPLY_WINDOW_S,
    ChannelRow,
    ConversationRow,
    SignedParser,
    reply_window_s,
)
from .channel_repo import ChannelRepo, DeliveryRow, Sealed, Transcript

MAX_NAME = 200
MAX_BODY = 10 * 1024 * 1024
SETTINGS = {"chat": C.ChatSettings, "api": C.ApiSettings, "line": C.LineSettings}
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?$"
)


def _administrator() -> identity.Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_INBOXES, "manage channels")
    return ident


def _ts(pb: Any, name: str, value: Any) -> None:
    if value is not None:
        getattr(pb, name).FromDatetime(value)


def capabilities_pb(kind: str, window_s: int | None = None) -> C.ChannelCapabilities:
    """The kind's capabilities; `window_s`: the channel's own reply window (api)."""
    c = CAPABILITIES[kind]
    return C.ChannelCapabilities(
        threading=c.threading,
        attachments_in=c.attachments_in,
        attachments_out=c.attachments_out,
        typing=c.typing,
        reply_window_s=c.reply_window_s if window_s is None else window_s,
        delivery_receipts=c.delivery_receipts,
    )


def channel_pb(row: ChannelRow) -> C.Channel:
    pb = C.Channel(
        id=str(row.id),
        kind=row.kind,
        inbox_id=str(row.inbox_id),
        name=row.name,
        enabled=row.enabled,
        public_key=row.public_key,
        secret_hint=row.secret_hint,
        token_set=row.token_set,
        capabilities=capabilities_pb(row.kind, reply_window_s(row.kind, row.settings)),
    )
    json_format.ParseDict(row.settings, getattr(pb, row.kind), ignore_unknown_fields=True)
    _ts(pb, "created_at", row.created_at)
    _ts(pb, "updated_at", row.updated_at)
    return pb


def conversation_pb(
    conv: ConversationRow, kind: str, inbox_id: uuid.UUID, window: Any, sees_addresses: bool
) -> C.Conversation:
    pb = C.Conversation(
        id=str(conv.id),
        channel_id=str(conv.channel_id),
        kind=kind,
        inbox_id=str(inbox_id),
        external_id=conv.external_id,
        sender_name=conv.sender_name,
        email=conv.email if sees_addresses or not conv.email else "***",
        ticket_id=str(conv.ticket_id or ""),
        last_seq=conv.last_seq,
        capabilities=capabilities_pb(kind),
        address=f"{conv.id}@{kind}.channels.invalid",
    )
    _ts(pb, "last_inbound_at", conv.last_inbound_at)
    _ts(pb, "ended_at", conv.ended_at)
    _ts(pb, "reply_window_ends_at", window)
    return pb


def message_pb(t: Transcript) -> C.ChatMessage:
    pb = C.ChatMessage(
        seq=t.seq,
        direction=t.direction,
        text=t.text,
        author_name=t.author_name,
        key=t.key,
        attachments=[
            C.Attachment(
                name=a.get("name", ""),
                content_type=a.get("content_type", ""),
                size=int(a.get("size", 0)),
            )
            for a in t.attachments
        ],
    )
    pb.created_at.FromDatetime(t.created_at)
    return pb


def delivery_pb(d: DeliveryRow) -> C.Delivery:
    pb = C.Delivery(
        id=str(d.id),
        channel_id=str(d.channel_id),
        channel_name=d.channel_name,
        kind=d.kind,
        conversation_id=str(d.conversation_id),
        ticket_id=str(d.ticket_id or ""),
        send_id=d.send_id,
        state=d.state,
        attempts=d.attempts,
        last_error=d.last_error,
    )
    _ts(pb, "created_at", d.created_at)
    if d.state == "pending":
        _ts(pb, "next_attempt_at", d.next_attempt_at)
    _ts(pb, "delivered_at", d.delivered_at)
    return pb


def check_settings(kind: str, pb: Any) -> dict[str, Any]:
    """A kind's settings checked (InvalidArgument naming `<kind>.<field>`), as stored."""
    if kind == "chat":
        for origin in pb.allowed_origins:
            if not _ORIGIN.match(origin) or len(origin) > 300:
                raise InvalidArgument(
                    f"{origin!r} is not an origin like https://shop.example",
                    field="chat.allowed_origins",
                )
        if pb.colour and not _COLOUR.match(pb.colour):
            raise InvalidArgument("a colour like #0b57d0", field="chat.colour")
        if pb.position not in ("", "right", "left"):
            raise InvalidArgument("right or left", field="chat.position")
        for name in ("greeting_ja", "greeting_en"):
            if len(getattr(pb, name)) > 500:
                raise InvalidArgument("at most 500 characters", field=f"chat.{name}")
        if pb.offline_form_id:
            parse_uuid(pb.offline_form_id, "chat.offline_form_id")
    elif kind == "api":
        url = pb.webhook_url
        parts = urlsplit(url)
        if url and (
            parts.scheme not in ("https", "http")
            or not parts.hostname
            or len(url) > 2000
            or any(c in url for c in "\r\n\0 \t")
        ):
            raise InvalidArgument("an http(s) URL", field="api.webhook_url")
        if not 0 <= pb.reply_window_s <= MAX_REPLY_WINDOW_S:
            raise InvalidArgument(
                f"seconds from 0 (none) to {MAX_REPLY_WINDOW_S} (30 days)",
                field="api.reply_window_s",
            )
    elif kind == "line" and len(pb.bot_user_id) > 100:
        raise InvalidArgument("at most 100 characters", field="line.bot_user_id")
    return dict(json_format.MessageToDict(pb, preserving_proto_field_name=True))


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

    def _seal(self, value: str, channel_id: uuid.UUID, field: str) -> bytes:
        if len(value) > 4096 or any(c in value for c in "\r\n\0"):
            raise InvalidArgument("at most 4096 characters on one line", field=field)
        return self._box.seal(value, str(channel_id))

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
        secret = self._seal(request.secret, row.id, "secret") if request.secret else None
        token = (
            self._seal(request.access_token, row.id, "access_token")
            if request.access_token
            else None
        )
        async with self._db.transaction() as conn:
            await self._repo.create(conn, row)
            await self._repo.set_credentials(
                conn,
                row.tenant_id,
                row.id,
                secret_enc=secret,
                secret_hint=signing.hint(request.secret) if request.secret else None,
                token_enc=token,
                now=now,
            )
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
        secret = self._seal(request.secret, found.id, "secret") if request.secret else None
        token = (
            self._seal(request.access_token, found.id, "access_token")
            if request.access_token
            else None
        )
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
                conn,
                found.tenant_id,
                found.id,
                secret_enc=secret,
                secret_hint=signing.hint(request.secret) if request.secret else None,
                token_enc=token,
                now=now,
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
        out = C.ReceiveSignedResponse()
        for msg in parser.parse(body, now):
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
        at = (
            request.at.ToDatetime(tzinfo=self._clock.now().tzinfo)
            if request.HasField("at")
            else None
        )
        v = await self._replies.check_reply(
            uuid.UUID(ident.tenant_id), request.conversation_id, request.address, at
        )
        out = C.CheckReplyResponse(allowed=v.allowed, reason=v.reason, message=v.message)
        _ts(out, "window_ends_at", v.window_ends_at)
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
            conv = await self._repo.conversation_of_ticket(
                tenant, parse_uuid(request.ticket_id, "ticket_id")
            )
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
