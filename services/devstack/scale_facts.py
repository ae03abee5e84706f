"""Reporting's facts of the scale data set (issue 19 §5), free of I/O: what reporting's
consumers would have recorded had the generated tenant's events gone by, made from the
same generated batches (services/devstack/scale.py) and written through reporting's bulk
path (`services.reporting.facts_bulk.write_facts`). The metric definitions are reporting's
(/work/notes/issue19-facts-schema.md, services/reporting/facts.py): arrival and received
per customer mail, first reply and reply times, sends, resolution (one episode: the data
set reopens nothing), trash, assignment, approval requests and approvals. The scale
tenant has no SLA calendar: business time is wall time (around the clock)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from services.reporting.facts import NewFact
from services.tickets.bulk import BulkTicket

from .scale import Batch, Generator, Linked

APPROVAL_WAIT_S = 60.0  # a trainee's request is approved this long before the send


def batch_facts(gen: Generator, batch: Batch) -> list[NewFact]:
    by_ticket: dict[uuid.UUID, list[Linked]] = defaultdict(list)
    for m in batch.mails:
        by_ticket[m.ticket_id].append(m)
    out: list[NewFact] = []
    for t in batch.tickets:
        out.extend(ticket_facts(gen, t, by_ticket[t.id]))
    return out


def ticket_facts(gen: Generator, t: BulkTicket, mails: list[Linked]) -> list[NewFact]:
    tenant = str(gen.tenant.id)

    def fact(
        metric: str,
        key: str,
        at: datetime,
        operator: uuid.UUID | None = None,
        other: uuid.UUID | None = None,
        seconds: float | None = None,
        channel: str = "email",
    ) -> NewFact:
        return NewFact(
            tenant_id=tenant,
            metric=metric,
            key=key,
            at=at,
            inbox_id=str(t.inbox_id),
            ticket_id=str(t.id),
            operator_id=str(operator) if operator else None,
            other_operator_id=str(other) if other else None,
            channel=channel,
            category=t.category,
            priority=t.priority,
            labels=t.labels,
            wall_s=seconds,
            business_s=seconds,
        )

    out = [fact("arrival", str(t.id), t.received_at)]
    waiting: datetime | None = None  # the oldest unanswered customer mail
    replied = False
    approvals = iter(t.approvals)
    for m in mails:
        mail = m.mail
        if mail.channel != "sent":
            out.append(fact("received", str(mail.id), mail.received_at))
            waiting = waiting or mail.received_at
            continue
        who = m.operator_id
        if not replied:
            replied = True
            wall = (mail.received_at - t.received_at).total_seconds()
            out.append(fact("first_reply", str(t.id), mail.received_at, who, seconds=wall))
        if waiting is not None:
            wall = (mail.received_at - waiting).total_seconds()
            out.append(fact("reply", str(mail.id), mail.received_at, who, seconds=wall))
            waiting = None
        out.append(fact("sent", str(mail.id), mail.received_at, who, channel="reply"))
        request = next(approvals, None)
        if request is not None:
            approver = gen.approver(t.inbox_id)
            asked = mail.received_at.timestamp() - APPROVAL_WAIT_S
            at = datetime.fromtimestamp(asked, mail.received_at.tzinfo)
            out.append(fact("approval_request", str(request), at, who))
            out.append(
                fact("approval_given", f"{request}:1", mail.received_at, approver, who,
                     seconds=APPROVAL_WAIT_S)
            )  # fmt: skip
    for c in t.changes:
        if c.action == "assign":
            out.append(fact("assignment", f"{t.id}:assign", c.at, t.assignee_id))
        elif c.new == "resolved":
            wall = (c.at - t.received_at).total_seconds()
            out.append(
                fact("resolution", f"{t.id}:1", c.at, c.operator_id, t.assignee_id, seconds=wall)
            )
        elif c.new == "trash":
            out.append(fact("trash", f"{t.id}:trash", c.at, c.operator_id))
    return out
