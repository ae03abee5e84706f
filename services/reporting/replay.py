"""Replaying the streams into the facts (issue 19 §2, `rebuild --replay-since` /
`--replay-from-seq`): a tenant's events of the four streams reporting consumes, from a
time or a stream sequence, fed through the consumers' own handlers (facts_intake.py; the
surveys' ratings_store.py) by a temporary consumer per stream, deleted afterwards. The
tickets' events come first, so the sends' and SLA alerts' facts find the tickets' state.
A fact already there is skipped (its key), so replaying what was applied changes
nothing; a ticket's state is made again from its `ticket.created` on, so replay from
before the tickets' creation (the streams keep 14 days)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import nats
from nats.js import api
from switchboard.v1 import events_pb2, routing_sla_pb2_grpc

from services.runtime import grpc_client, registry
from services.runtime import settings as rt_settings
from services.runtime.bus import ConsumerSpec, Delivery, Handler
from services.runtime.db import Database, with_database

from .app import ReportingSettings
from .facts_intake import FactsIntake
from .inbox_hours import InboxHours
from .ratings_store import RatingsIntake

BATCH = 256


@dataclass(frozen=True, slots=True)
class Start:
    since: datetime | None = None
    seq: int | None = None

    def config(self, name: str, spec: ConsumerSpec) -> api.ConsumerConfig:
        policy = api.DeliverPolicy.ALL
        if self.since is not None:
            policy = api.DeliverPolicy.BY_START_TIME
        elif self.seq is not None:
            policy = api.DeliverPolicy.BY_START_SEQUENCE
        return api.ConsumerConfig(
            durable_name=name,
            ack_policy=api.AckPolicy.NONE,
            deliver_policy=policy,
            opt_start_time=self.since,
            opt_start_seq=self.seq,
            filter_subjects=list(spec.filter_subjects),
            inactive_threshold=300.0,  # gone by itself if this command dies
        )


async def replay(tenants: set[str], start: Start) -> dict[str, int]:
    """Replay the tenants' events; how many events of each consumer were applied."""
    s = rt_settings.load(ReportingSettings)
    db = Database(with_database(s.database_url, s.database_name or "sb_reporting"))
    await db.open([], create=False)
    channel = grpc_client.channel(s.addr_of("routing"))
    nc = await nats.connect(s.nats_url)
    try:
        hours = InboxHours(routing_sla_pb2_grpc.SlaServiceStub(channel), 60.0)
        intake = FactsIntake(db, hours, lambda: None, once=False)
        done: dict[str, int] = {}
        for spec, handler in (
            (registry.REPORTING_TICKETS, intake.tickets),
            (registry.REPORTING_APPROVALS, intake.approvals),
            (registry.REPORTING_SENDS, intake.sends),
            (registry.REPORTING_SLA, intake.sla),
            (registry.REPORTING_SURVEYS, RatingsIntake(db, once=False).survey),
        ):
            done[spec.durable] = await _one(nc, spec, handler, tenants, start)
        return done
    finally:
        await nc.close()
        await channel.close()
        await db.close()


async def _one(
    nc: nats.NATS, spec: ConsumerSpec, handler: Handler, tenants: set[str], start: Start
) -> int:
    js = nc.jetstream()
    name = f"reporting__replay_{uuid.uuid4().hex[:12]}"
    stream = spec.stream.name
    await js.add_consumer(stream, config=start.config(name, spec))
    applied = 0
    try:
        sub = await js.pull_subscribe_bind(durable=name, stream=stream)
        while (await js.consumer_info(stream, name)).num_pending:
            try:
                msgs = await sub.fetch(BATCH, timeout=2.0)
            except (nats.errors.TimeoutError, TimeoutError):
                continue
            for msg in msgs:
                env = events_pb2.EventEnvelope.FromString(msg.data)
                if env.tenant_id not in tenants:
                    continue
                seq = msg.metadata.sequence.stream
                await handler(env, Delivery(msg, 1, seq, name))
                applied += 1
    finally:
        await js.delete_consumer(stream, name)
    return applied
