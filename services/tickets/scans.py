"""A virus found after the mail was filed (sb.ingest.message.scanned, ING-5): the virus
scanner did not answer when the mail came, so it was filed like any other and scanned
later. An infected mail then does what it would have done at once: the ticket it opened
goes to the trash (restorable, its status before kept); one that joined an existing
ticket leaves that conversation where it is, as spam does. A verdict that comes before
the mail is filed (routing behind) is retried until it is."""

from __future__ import annotations

import uuid

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import Poison
from services.runtime.outbox import first_time

from . import domain
from .convert import summary_pb
from .deps import Deps

SCANS_DURABLE = registry.TICKETS_SCANS.durable


class NotFiledYet(Exception):
    """The scanned mail is not in a ticket yet: try again later."""


class ScanVerdicts:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.scans")

    async def on_scanned(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        scanned = events.payload_of(env, events.MESSAGE_SCANNED)
        if scanned.virus.state != events.INFECTED:
            return
        try:
            message_id = uuid.UUID(scanned.message_id)
        except ValueError:
            raise Poison(f"bad message id {scanned.message_id!r}") from None
        tenant = env.tenant_id
        found = "; ".join(
            f"{f.signature} in {f.filename or f'attachment {f.attachment_index}'}"
            for f in scanned.virus.findings
        )
        async with d.db.transaction() as conn:
            if not await first_time(conn, SCANS_DURABLE, env):
                return
            message = await d.repo.message_row(conn, tenant, message_id)
            if message is None:
                raise NotFiledYet(f"message {message_id} is not filed yet")
            row = await d.repo.row(conn, tenant, message.ticket_id, for_update=True)
            opened = await conn.fetchval(
                "SELECT id FROM messages WHERE tenant_id = $1 AND ticket_id = $2 "
                "ORDER BY received_at, id LIMIT 1",
                uuid.UUID(tenant),
                message.ticket_id,
            )
            if (
                row is None
                or opened != message_id
                or row.merged_into is not None
                or row.status == domain.Status.TRASH.value
            ):
                return
            applied = domain.apply_edit(row, domain.FieldEdit(status=domain.Status.TRASH))
            now = d.clock.now()
            row = await d.repo.update_fields(conn, tenant, row.id, applied.values, now)
            comment = f"virus found: {found}"
            actor = events.system_actor("tickets")
            await d.repo.add_audit(
                conn,
                id=d.ids.new(),
                tenant_id=tenant,
                ticket_id=row.id,
                at=now,
                actor=actor,
                action="virus",
                changes=applied.changes,
                comment=comment,
            )
            payload = events_pb2.TicketUpdated(
                ticket=summary_pb(row),
                changes=[
                    events_pb2.FieldChange(field=c.field, old_value=c.old, new_value=c.new)
                    for c in applied.changes
                ],
                comment=comment,
                action="virus",
            )
            await d.outbox.add(
                conn,
                events.caused_by(
                    events.TICKET_UPDATED,
                    env,
                    event_id=d.ids.new_str(),
                    occurred_at=now,
                    payload=payload,
                    actor=actor,
                ),
            )
        d.outbox.wake()
        self._log.info(
            "ticket moved to the trash: virus", ticket_id=str(row.id), message_id=str(message_id)
        )
