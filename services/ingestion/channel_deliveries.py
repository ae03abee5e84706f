"""Replies through channels (issue 21, ING-6; docs/channels.md): whether a reply may go
(`check_reply`: the channel is on, the reply window open), its delivery (`deliver`,
idempotent by outbound's send id) and the deliverer loop.

`deliver` appends the transcript row (direction "out") and queues `channel.message` and a
`channel_deliveries` row in one transaction. A chat reply is delivered then and there (the
transcript is the delivery: the visitor's socket shows it, a visitor who is away reads it
on reconnect). An API or LINE reply is pending: the deliverer claims due rows (a lease,
SKIP LOCKED — replicas never send the same one at once), sends each through its kind's
`ChannelSender` and on failure tries again after base · 2^(n-1) seconds (capped); after
the last attempt, or a failure not worth repeating, the delivery is dead, listed for an
administrator, who may retry it. Every change is announced as `channel.delivery`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log
from services.runtime import metrics as m
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.ids import IdGenerator
from services.runtime.metrics import Metrics
from services.runtime.outbox import Outbox
from services.runtime.periodic import PeriodicTask
from services.runtime.secrets import SecretBox
from services.runtime.webhook_http import LeasedDeliverer, RetrySettings

from . import channel_mail
from .channel_intake import message_event
from .channel_model import (
    ChannelRow,
    ChannelSender,
    ConversationRow,
    OutboundMessage,
    SendResult,
    parse_pseudo_address,
    reply_window_s,
)
from .channel_repo import ChannelRepo, DeliveryRow, Transcript

MAX_REPLY = 20_000


DeliverySettings = RetrySettings  # the channel replies' (SB_CHANNEL_*)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str = ""
    message: str = ""
    window_ends_at: datetime | None = None


@dataclass(frozen=True)
class Receipt:
    delivery_id: str
    state: str  # delivered | pending | dead | refused
    seq: int = 0
    error: str = ""
    duplicate: bool = False


def window_ends(channel: ChannelRow, conv: ConversationRow) -> datetime | None:
    seconds = reply_window_s(channel.kind, channel.settings)
    if not seconds or conv.last_inbound_at is None:
        return None
    return conv.last_inbound_at + timedelta(seconds=seconds)


def judge(channel: ChannelRow, deleted: bool, conv: ConversationRow, at: datetime) -> Verdict:
    """May a reply go to this conversation at `at`? Pure."""
    ends = window_ends(channel, conv)
    if deleted or not channel.enabled:
        return Verdict(False, "channel_disabled", f"the {channel.kind} channel is turned off", ends)
    if ends is not None and at > ends:
        return Verdict(
            False,
            "reply_window_closed",
            f"the reply window of this {channel.kind} conversation closed at "
            f"{ends.isoformat()}: the customer must write first",
            ends,
        )
    return Verdict(True, window_ends_at=ends)


def delivery_event(
    ids: IdGenerator, d: DeliveryRow, now: datetime, error: str = ""
) -> events_pb2.EventEnvelope:
    return events.envelope(
        events.CHANNEL_DELIVERY,
        event_id=ids.new_str(),
        tenant_id=str(d.tenant_id),
        occurred_at=now,
        payload=events_pb2.ChannelDeliveryChanged(
            delivery_id=str(d.id),
            channel_id=str(d.channel_id),
            kind=d.kind,
            conversation_id=str(d.conversation_id),
            ticket_id=str(d.ticket_id or ""),
            send_id=d.send_id,
            state=d.state,
            attempts=d.attempts,
            error=error or d.last_error,
        ),
        actor=events.system_actor("ingestion"),
    )


class ChannelReplies:
    """CheckReply, Deliver and RetryDelivery of ChannelsService."""

    def __init__(
        self,
        db: Database,
        repo: ChannelRepo,
        outbox: Outbox,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ids = ids
        self.wake: list[PeriodicTask] = []  # the deliverer, woken by a new delivery

    async def conversation(
        self, tenant: uuid.UUID, conversation_id: str, address: str
    ) -> tuple[ConversationRow, ChannelRow, bool]:
        """(conversation, its channel, whether the channel is deleted) by id or
        pseudo-address; NotFound otherwise."""
        conv_id: uuid.UUID | None = None
        if conversation_id:
            try:
                conv_id = uuid.UUID(conversation_id)
            except ValueError:
                raise InvalidArgument("not a conversation id", field="conversation_id") from None
        elif address:
            parsed = parse_pseudo_address(address)
            if parsed is None:
                raise InvalidArgument("not a channel address", field="address")
            conv_id = parsed[0]
        else:
            raise InvalidArgument("conversation_id or address is required", field="address")
        conv = await self._repo.conversation(tenant, conv_id)
        sealed = None if conv is None else await self._repo.channel_of(tenant, conv.channel_id)
        if conv is None or sealed is None:
            raise NotFound("no such conversation", field="conversation_id")
        deleted = await self._repo.get(tenant, sealed.row.id) is None
        return conv, sealed.row, deleted

    async def check_reply(
        self, tenant: uuid.UUID, conversation_id: str, address: str, at: datetime | None
    ) -> Verdict:
        try:
            conv, channel, deleted = await self.conversation(tenant, conversation_id, address)
        except NotFound:
            return Verdict(False, "no_conversation", "no such channel conversation")
        return judge(channel, deleted, conv, at or self._clock.now())

    async def deliver(
        self,
        tenant: uuid.UUID,
        *,
        send_id: str,
        conversation_id: str,
        address: str,
        text: str,
        author_name: str,
        ticket_id: str,
    ) -> Receipt:
        if not send_id or len(send_id) > 200:
            raise InvalidArgument("send_id is required (at most 200 characters)", field="send_id")
        if len(text) > MAX_REPLY:
            raise InvalidArgument(f"at most {MAX_REPLY} characters", field="text")
        if not text.strip():
            raise InvalidArgument("a reply needs text", field="text")
        ticket = uuid.UUID(ticket_id) if ticket_id else None
        conv, channel, deleted = await self.conversation(tenant, conversation_id, address)
        known = await self._repo.delivery_by_send(None, tenant, send_id)
        if known is not None:
            return Receipt(str(known.id), known.state, known.seq, known.last_error, True)
        now = self._clock.now()
        verdict = judge(channel, deleted, conv, now)
        if not verdict.allowed:
            return Receipt("", "refused", 0, verdict.message)
        state = "delivered" if channel.kind == "chat" else "pending"
        delivery_id = self._ids.new()
        async with self._db.transaction() as conn:
            locked = await self._repo.lock_conversation_by_id(conn, tenant, conv.id)
            assert locked is not None
            known = await self._repo.delivery_by_send(conn, tenant, send_id)
            if known is not None:  # a concurrent call with the same send id won
                return Receipt(str(known.id), known.state, known.seq, known.last_error, True)
            row = Transcript(
                conversation_id=conv.id,
                seq=locked.last_seq + 1,
                direction="out",
                key=send_id,
                text=channel_mail.body_text(text),
                attachments=[],
                author_name=channel_mail.one_line(author_name, channel_mail.MAX_NAME),
                message_id=None,
                created_at=now,
            )
            await self._repo.append(conn, tenant, row, inbound=False)
            await self._repo.add_delivery(
                conn,
                delivery_id=delivery_id,
                conv=locked,
                seq=row.seq,
                send_id=send_id,
                ticket_id=ticket or locked.ticket_id,
                state=state,
                now=now,
            )
            actor = common_pb2.Actor(
                kind=common_pb2.Actor.KIND_SYSTEM, id="ingestion", display=row.author_name
            )
            linked = replace(locked, ticket_id=locked.ticket_id or ticket)
            await self._outbox.add(conn, message_event(self._ids, channel, linked, row, actor))
            made = await self._repo.delivery_by_send(conn, tenant, send_id)
            assert made is not None
            await self._outbox.add(conn, delivery_event(self._ids, made, now))
        self._outbox.wake()
        for task in self.wake:
            task.wake()
        log.get("ingestion.channels").info(
            "channel reply queued",
            tenant_id=str(tenant),
            channel_id=str(channel.id),
            conversation_id=str(conv.id),
            delivery_id=str(delivery_id),
            state=state,
        )
        return Receipt(str(delivery_id), state, row.seq)

    async def retry(self, tenant: uuid.UUID, delivery_id: uuid.UUID) -> DeliveryRow:
        """A dead delivery tried again at once (attempts counted anew)."""
        found = await self._repo.delivery(tenant, delivery_id)
        if found is None:
            raise NotFound("no such delivery", field="delivery_id")
        now = self._clock.now()
        async with self._db.transaction() as conn:
            if not await self._repo.retry(conn, tenant, delivery_id, now):
                raise FailedPrecondition(
                    f"only a dead delivery is retried (this one is {found.state})",
                    field="delivery_id",
                )
            again = await self._repo.delivery_by_send(conn, tenant, found.send_id)
            assert again is not None
            await self._outbox.add(conn, delivery_event(self._ids, again, now))
        self._outbox.wake()
        for task in self.wake:
            task.wake()
        return again


class ChannelDeliverer(LeasedDeliverer[DeliveryRow]):
    def __init__(
        self,
        db: Database,
        repo: ChannelRepo,
        outbox: Outbox,
        secrets: SecretBox,
        senders: Mapping[str, ChannelSender],
        clock: Clock,
        ids: IdGenerator,
        settings: DeliverySettings,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__("channel-deliveries", clock, settings)
        self._attempts = (
            m.Children(metrics.counter(m.CHANNEL_DELIVERY_ATTEMPTS)) if metrics else None
        )
        self._took = m.Children(metrics.histogram(m.CHANNEL_DELIVERY_DURATION)) if metrics else None
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._secrets = secrets
        self._senders = senders
        self._ids = ids
        self._log = log.get("ingestion.channels")

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[DeliveryRow]:
        return await self._repo.claim(now, lease, limit)

    async def _send(self, d: DeliveryRow) -> SendResult:
        sender = self._senders.get(d.kind)
        sealed = await self._repo.get(d.tenant_id, d.channel_id)
        conv = await self._repo.conversation(d.tenant_id, d.conversation_id)
        if sender is None:
            return SendResult(False, retry=False, error=f"no sender for {d.kind} channels")
        if sealed is None or conv is None:
            return SendResult(False, retry=False, error="the channel was deleted")
        if not sealed.row.enabled:
            return SendResult(False, retry=False, error="the channel is turned off")
        rows = await self._repo.messages(d.tenant_id, d.conversation_id, d.seq - 1, 1)
        row = rows[0] if rows else None
        if row is None or row.seq != d.seq:
            return SendResult(False, retry=False, error="the reply is not in the transcript")
        bound = str(sealed.row.id)
        try:
            secret = self._secrets.open(sealed.secret_enc, bound) if sealed.secret_enc else None
            token = self._secrets.open(sealed.token_enc, bound) if sealed.token_enc else None
        except FailedPrecondition as err:
            return SendResult(False, retry=False, error=err.message)
        message = OutboundMessage(
            delivery_id=d.id,
            send_id=d.send_id,
            seq=d.seq,
            text=row.text,
            author_name=row.author_name,
            ticket_id=d.ticket_id or conv.ticket_id,
        )
        result = await sender.send(sealed.row, secret, token, conv, message, self._clock.now())
        if result.used_reply_token and conv.reply_token:
            await self._repo.spend_reply_token(conv.id, conv.reply_token)
        return result

    async def attempt(self, d: DeliveryRow) -> None:
        started = time.perf_counter()
        try:
            result = await self._send(d)
        except Exception as err:  # a sender's bug must not stop the loop or lose the row
            self._log.exception("channel send failed", tenant_id=str(d.tenant_id))
            result = SendResult(False, retry=True, error=f"{type(err).__name__}")
        now = self._clock.now()
        attempts = d.attempts + 1
        retry_at = None if result.ok else self.retry_at(attempts, final=not result.retry)
        if result.ok:
            state, at = "delivered", now
        elif retry_at is not None:
            state, at = "pending", retry_at
        else:
            state, at = "dead", now
        if self._attempts is not None and self._took is not None:
            self._took(d.kind).observe(time.perf_counter() - started)
            self._attempts(d.kind, "retrying" if state == "pending" else state).inc()
        async with self._db.transaction() as conn:
            settled = await self._repo.settle(
                conn, d, state=state, error=result.error, next_attempt_at=at, now=now
            )
            if settled is not None:
                await self._outbox.add(conn, delivery_event(self._ids, settled, now))
        self._outbox.wake()
        self._log.info(
            f"channel delivery {state}",
            tenant_id=str(d.tenant_id),
            channel_id=str(d.channel_id),
            conversation_id=str(d.conversation_id),
            delivery_id=str(d.id),
            attempts=attempts,
            error=result.error,
        )
