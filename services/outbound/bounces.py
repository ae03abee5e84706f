"""Bounces (OUT-3): a delivery status notification that ingestion received and linked to
the mail it returns (`dsn_original_message_id`) marks that sent mail `bounced` — when
its statuses say the failure is permanent (5.x.x); a delay notice (4.x.x) is noted only.
A permanent failure also puts the failed recipient on the tenant's suppression list
(reason `bounced`, issue 20), for any mail outbound sent: no campaign mails it again.
The DSN itself is filed into the ticket by tickets, as any mail."""

from __future__ import annotations

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import InvalidArgument
from services.runtime.outbox import first_time

from . import suppression
from .api import Deps
from .changes import send_changed
from .suppression_domain import hard_bounced

BOUNCES_DURABLE = registry.OUTBOUND_BOUNCES.durable
_ACTOR = events.system_actor("outbound")


class Bounces:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("outbound.bounces")

    async def on_received(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        received = events.payload_of(env, events.MESSAGE_RECEIVED)
        original = received.mail.dsn_original_message_id
        if not original or received.channel == "sent":
            return
        d = self._d
        statuses = list(received.mail.dsn_statuses)
        permanent = any(s.startswith("5") for s in statuses) or not statuses
        note = ", ".join(statuses) or "returned"
        async with d.db.transaction() as conn:
            if not await first_time(conn, BOUNCES_DURABLE, env):
                return
            row = await d.repo.by_message_id(conn, env.tenant_id, original)
            if row is None:
                return  # not a mail we sent
            now = d.clock.now()
            suppressed = hard_bounced(
                statuses, list(received.mail.dsn_recipients), list(row.recipients)
            )
            for address in suppressed:
                try:
                    await suppression.suppress(conn, env.tenant_id, address, "bounced", now=now)
                except InvalidArgument:
                    continue  # not an address the list can hold
            if permanent and row.state == "sent":
                await d.repo.set_state(
                    conn,
                    row,
                    state="bounced",
                    now=now,
                    bounce=note,
                    env=send_changed(
                        d.ids,
                        row,
                        action="bounced",
                        state="bounced",
                        previous="sent",
                        at=now,
                        actor=_ACTOR,
                        message=note,
                        cause=env,
                    ),
                )
            else:
                await conn.execute(
                    "UPDATE sends SET bounce = $2, updated_at = $3 WHERE id = $1",
                    row.id,
                    ("delayed: " if not permanent else "") + note,
                    now,
                )
        d.outbox.wake()
        self._log.info(
            "bounce linked",
            send_id=str(row.id),
            tenant_id=env.tenant_id,
            statuses=statuses,
            permanent=permanent,
            suppressed=len(suppressed),
        )
