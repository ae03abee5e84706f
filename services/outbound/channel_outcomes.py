"""A channel reply's delivery learnt afterwards (issue 21; docs/channels.md). An API or
LINE reply is `sent` once ingestion has taken it (its deliverer then retries the webhook or
the LINE call with back-off); when the delivery ends dead, ingestion's `channel.delivery`
event marks that send `bounced` with the reason, as a mail's bounce does — the operator
sees in the ticket that the customer did not get it. An administrator's retry that
delivers it after all makes it `sent` again."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import Unavailable
from services.runtime.outbox import first_time

from .api import Deps
from .changes import send_changed

DURABLE = registry.OUTBOUND_CHANNEL_DELIVERIES.durable
PREFIX = "channel delivery failed"
_ACTOR = events.system_actor("outbound")


def dead_note(kind: str, attempts: int, error: str) -> str:
    """The bounce note of a dead channel delivery."""
    return f"{PREFIX} ({kind}, {attempts} attempts): {error or 'no answer'}"[:500]


class ChannelOutcomes:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("outbound.channel_outcomes")

    async def on_delivery(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        changed = events.payload_of(env, events.CHANNEL_DELIVERY)
        if changed.state not in ("dead", "delivered") or not changed.send_id:
            return
        try:
            send_id = uuid.UUID(changed.send_id)
        except ValueError:
            return  # not one of our sends
        d = self._d
        async with d.db.transaction() as conn:
            row = await d.repo.get(conn, env.tenant_id, send_id, lock=True)
            if row is None:
                return
            if row.state == "sending":
                # Deliver answered, the dispatcher has not recorded it yet: again shortly
                raise Unavailable("the send is still being recorded")
            if not await first_time(conn, DURABLE, env):
                return
            now = d.clock.now()
            if changed.state == "dead" and row.state == "sent":
                state, note = "bounced", dead_note(changed.kind, changed.attempts, changed.error)
            elif changed.state == "delivered" and (
                row.state == "bounced" and (row.bounce or "").startswith(PREFIX)
            ):
                state, note = "sent", ""
            else:
                return
            await d.repo.set_outcome(
                conn,
                row,
                state=state,
                bounce=note,
                now=now,
                env=send_changed(
                    d.ids,
                    row,
                    action="bounced" if state == "bounced" else "delivered",
                    state=state,
                    previous=row.state,
                    at=now,
                    actor=_ACTOR,
                    message=note,
                    cause=env,
                ),
            )
        d.outbox.wake()
        self._log.info(
            "channel delivery outcome",
            send_id=str(row.id),
            tenant_id=env.tenant_id,
            delivery_id=changed.delivery_id,
            state=state,
        )
