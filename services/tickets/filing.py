"""Filing a routed mail (message.routed): into the ticket it answers, or a new ticket."""

from __future__ import annotations

import uuid
from datetime import UTC

from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.outbox import first_time

from . import domain, rule_decisions, thread_rules
from .convert import summary_pb
from .deps import Deps

ROUTED_DURABLE = registry.TICKETS_ROUTED.durable


class Filing:
    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._log = log.get("tickets.filing")

    def _new_id(self, routed: events_pb2.MessageRouted) -> str:
        """A new ticket's id: the one routing minted for it (so its once-per-ticket rules
        know the ticket), else a fresh one."""
        try:
            return str(uuid.UUID(routed.new_ticket_id))
        except ValueError:
            return self._d.ids.new_str()

    async def on_routed(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        d = self._d
        routed = events.payload_of(env, events.MESSAGE_ROUTED)
        tenant = env.tenant_id
        mail = routed.mail
        sender = getattr(mail, "from")
        junk = events.is_junk(mail)
        ours = routed.channel == "sent"  # a mail we sent: filed, changes nothing else
        actor = events.system_actor("tickets")
        summary = events_pb2.MailSummary()
        summary.CopyFrom(mail)
        summary.ClearField("search_text")
        decided = routed.decision if routed.HasField("decision") and not ours else None
        names = await rule_decisions.names(d, tenant, decided) if decided else None
        async with d.db.transaction() as conn:
            if not await first_time(conn, ROUTED_DURABLE, env):
                return
            if await d.repo.message_known(conn, tenant, routed.message_id):
                return  # the same mail announced again under another event id
            now = d.clock.now()
            received_at = routed.received_at.ToDatetime(tzinfo=UTC)
            # spam, blocked senders and viruses do not fill the address book
            contact_id = (
                None
                if junk or ours
                else await d.contacts.for_sender(
                    conn, tenant, sender.address, sender.name, now, cause=env
                )
            )
            target = None
            join = thread_rules.Join.NEW
            stranger = False
            if routed.thread_ticket_id:
                found = await d.repo.final_ticket(conn, tenant, uuid.UUID(routed.thread_ticket_id))
                if found is not None:
                    target = await d.repo.row(conn, tenant, found.id, for_update=True)
                    assert target is not None  # found just now; tickets are never deleted
                    settings = await d.repo.inbox_settings(conn, tenant, [target.inbox_id])
                    s = settings.get(target.inbox_id)
                    join = (
                        thread_rules.Join.APPEND
                        if ours
                        else thread_rules.join_existing(
                            domain.Status(target.status),
                            target.closed_at,
                            now,
                            s.new_ticket_after_days if s else 0,
                            mail_is_junk=junk,
                        )
                    )
            if target is None or join is thread_rules.Join.NEW:
                new = domain.ticket_for_new_message(self._new_id(routed), routed)
                number = await d.repo.next_number(conn, tenant)
                row = await d.repo.insert_ticket(
                    conn,
                    tenant,
                    new,
                    now,
                    number=number,
                    contact_id=contact_id,
                    message_count=1,
                    language="" if ours else routed.language,
                )
                await d.repo.insert_message(conn, tenant, new.id, routed, received_at, count=False)
                if routed.sla_state and new.id == routed.new_ticket_id:
                    # routing's SLA of the new ticket (issue 18 step 5), as an sla.changed
                    # of the routed event's time would set it
                    due = (
                        routed.sla_due_at.ToDatetime(tzinfo=UTC)
                        if routed.HasField("sla_due_at")
                        else None
                    )
                    sla_at = env.occurred_at.ToDatetime(tzinfo=UTC)
                    row = await d.repo.update_fields(
                        conn, tenant, row.id, {"sla_due_at": due, "sla_changed_at": sla_at}, now
                    )
                await d.repo.add_audit(
                    conn,
                    id=d.ids.new(),
                    tenant_id=tenant,
                    ticket_id=row.id,
                    at=now,
                    actor=actor,
                    action="create",
                    changes=[domain.Change("status", "", row.status)],
                )
                ruled = None
                if decided is not None and names is not None:
                    ruled = await rule_decisions.apply(d, conn, tenant, row, decided, names, now)
                    row = ruled.row
                payload = events_pb2.TicketCreated(
                    ticket=summary_pb(row),
                    message_id=routed.message_id,
                    mail=summary,
                    channel=routed.channel,
                )
                out = events.caused_by(
                    events.TICKET_CREATED,
                    env,
                    event_id=d.ids.new_str(),
                    occurred_at=now,
                    payload=payload,
                    actor=actor,
                )
                what = "ticket created"
                log.also(ticket_id=new.id)
            else:
                ticket_id = str(target.id)
                log.also(ticket_id=ticket_id)
                stranger = thread_rules.is_stranger(
                    channel=routed.channel,
                    joined=True,
                    sender_is_participant=ours
                    or await d.repo.is_participant(conn, tenant, target.id, sender.address),
                )
                await d.repo.insert_message(
                    conn, tenant, ticket_id, routed, received_at, stranger=stranger
                )
                values: dict[str, object] = {}
                if join is thread_rules.Join.REOPEN:
                    values = {"status": "open", "status_before_trash": None, "closed_at": None}
                    await d.repo.add_audit(
                        conn,
                        id=d.ids.new(),
                        tenant_id=tenant,
                        ticket_id=target.id,
                        at=now,
                        actor=common_pb2.Actor(
                            kind=common_pb2.Actor.KIND_CUSTOMER,
                            id=sender.address,
                            display=sender.name or sender.address,
                        ),
                        action="reopen",
                        changes=[domain.Change("status", target.status, "open")],
                        comment="a stranger wrote" if stranger else "the customer replied",
                    )
                if routed.language and not target.language and not ours:
                    values["language"] = routed.language  # the first mail it could tell
                row = await d.repo.update_fields(conn, tenant, target.id, values, now)
                ruled = None
                if decided is not None and names is not None:
                    ruled = await rule_decisions.apply(d, conn, tenant, row, decided, names, now)
                    row = ruled.row
                out = events.caused_by(
                    events.TICKET_MESSAGE_ADDED,
                    env,
                    event_id=d.ids.new_str(),
                    occurred_at=now,
                    payload=events_pb2.TicketMessageAdded(
                        ticket=summary_pb(row),
                        message_id=routed.message_id,
                        channel=routed.channel,
                        reopened=join is thread_rules.Join.REOPEN,
                        mail=summary,
                        stranger=stranger,
                    ),
                    actor=actor,
                )
                what = "mail threaded"
            await d.outbox.add(conn, out)
            if ruled is not None:  # a new ticket's ticket.created carries its fields
                await rule_decisions.announce(
                    d,
                    conn,
                    env,
                    ruled,
                    now,
                    rule_depth=1,
                    updated=what == "mail threaded",
                    decision=decided,
                    reply_to=events_pb2.RuleReplyTo(
                        message_id=routed.message_id,
                        mail=summary,
                        channel=routed.channel,
                        stranger=stranger,
                    ),
                )
        d.outbox.wake()
        self._log.info(
            what,
            message_id=routed.message_id,
            reason=routed.thread_reason or "new",
            stranger=stranger,
        )
