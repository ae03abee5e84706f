"""What approval learns from others' events: outbound's `send.changed` (`submitted`) for
the draft of an approved request means the approved revision was handed to outbound —
by the hand-over of an `approve_and_send` (outbound's `outbound__approvals`) or by the
author sending it after an `approve` — so the request is marked `sent` and
`approval.sent` announced. Idempotent: the event is applied once (`processed_events`),
and only an `approved` request moves."""

from __future__ import annotations

from dataclasses import replace

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from . import convert
from .api_policies import Deps
from .stages import State

SENDS = registry.APPROVAL_SENDS


class Sends:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("approval.sends")

    async def on_send_changed(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        p = events.payload_of(env, events.SEND_CHANGED)
        if p.action != "submitted" or not p.draft_id:
            return
        d = self._d
        tenant = env.tenant_id
        async with d.db.transaction() as conn:
            if not await first_time(conn, SENDS.durable, env):
                return
            r = await d.repo.approved_of_draft(conn, tenant, p.draft_id)
            if r is None:
                return  # a draft that needed no approval (or its request is settled)
            sent = await d.repo.update_request(conn, tenant, replace(r, state=State.SENT))
            past = (await d.repo.decisions_by_request(conn, tenant, [r.id]))[r.id]
            await d.outbox.add(
                conn,
                events.caused_by(
                    events.APPROVAL_SENT,
                    env,
                    event_id=d.ids.new_str(),
                    occurred_at=d.clock.now(),
                    payload=convert.changed_pb(sent, decisions=past, now=d.clock.now()),
                    actor=env.actor,
                ),
            )
        d.outbox.wake()
        self._log.info(
            "approved request handed to outbound",
            tenant_id=tenant,
            request_id=r.id,
            send_id=p.send_id,
        )
