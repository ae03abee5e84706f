"""A channel conversation linked to its ticket (issue 21; docs/channels.md): ingestion's
consumer of tickets' `ticket.created` / `ticket.message_added` (INGESTION_CHANNEL_TICKETS)
finds the conversation whose transcript names the event's message and records the ticket
on it — the ticket a reply's channel, GetConversation by ticket and the live view use —
announced as `channel.conversation` with action "linked". A message of a conversation
filed into another ticket (a split, a merge, a closed ticket's follow-up) moves the link
to that ticket."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox, first_time

from .channel_model import KINDS
from .channel_repo import ChannelRepo

DURABLE = registry.INGESTION_CHANNEL_TICKETS.durable


class ChannelLinks:
    def __init__(
        self, db: Database, repo: ChannelRepo, outbox: Outbox, clock: Clock, ids: IdGenerator
    ) -> None:
        self._db = db
        self._repo = repo
        self._outbox = outbox
        self._clock = clock
        self._ids = ids

    async def on_ticket_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        kind = env.WhichOneof("payload")
        if kind == "ticket_created":
            p = env.ticket_created
        elif kind == "ticket_message_added":
            p = env.ticket_message_added  # type: ignore[assignment]
        else:
            return
        if p.channel not in KINDS or not p.message_id or not p.ticket.id:
            return
        tenant = uuid.UUID(env.tenant_id)
        async with self._db.transaction() as conn:
            if not await first_time(conn, DURABLE, env):
                return
            conv = await self._repo.link_ticket(
                conn, tenant, uuid.UUID(p.message_id), uuid.UUID(p.ticket.id)
            )
            if conv is None:
                return
            channel = await self._repo.channel_of(tenant, conv.channel_id)
            assert channel is not None
            await self._outbox.add(
                conn,
                events.caused_by(
                    events.CHANNEL_CONVERSATION,
                    env,
                    event_id=self._ids.new_str(),
                    occurred_at=self._clock.now(),
                    payload=events_pb2.ChannelConversationChanged(
                        conversation_id=str(conv.id),
                        channel_id=str(conv.channel_id),
                        kind=channel.row.kind,
                        inbox_id=str(channel.row.inbox_id),
                        ticket_id=p.ticket.id,
                        action="linked",
                    ),
                    actor=events.system_actor("ingestion"),
                ),
            )
        self._outbox.wake()
        log.get("ingestion.channels").info(
            "conversation linked",
            tenant_id=env.tenant_id,
            conversation_id=str(conv.id),
            ticket_id=p.ticket.id,
        )
