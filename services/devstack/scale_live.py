"""Reporting's live rows of the scale data set (issue 19 §5), free of I/O: what the live
consumer (services/reporting/live_events.py, live_model.py `change_of`) would hold after
each generated ticket's events, written through reporting's bulk path
(`services.reporting.live_bulk.write_live`): the ticket's inbox, status, assignee and
updated time (the row's version); answered at our latest reply, or at the closing of a
closed ticket; waiting since its oldest customer mail after that, those mails kept as
its unanswered customer messages. The SLA columns stay empty (the scale tenant has no
SLA policy running)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime

from services.reporting.live_bulk import LiveMessage, LiveRow
from services.reporting.live_model import CLOSED, SENT
from services.tickets.bulk import BulkTicket

from .scale import Batch, Generator, Linked


def batch_live(gen: Generator, batch: Batch) -> tuple[list[LiveRow], list[LiveMessage]]:
    by_ticket: dict[uuid.UUID, list[Linked]] = defaultdict(list)
    for m in batch.mails:
        by_ticket[m.ticket_id].append(m)
    rows: list[LiveRow] = []
    messages: list[LiveMessage] = []
    for t in batch.tickets:
        row, waiting = ticket_live(gen.tenant.id, t, by_ticket[t.id])
        rows.append(row)
        messages.extend(waiting)
    return rows, messages


def ticket_live(
    tenant: uuid.UUID, t: BulkTicket, mails: list[Linked]
) -> tuple[LiveRow, list[LiveMessage]]:
    answered: datetime | None = None
    for m in mails:
        if m.mail.channel == SENT:  # the generator sends no automatic replies
            answered = max(answered or m.mail.received_at, m.mail.received_at)
    if t.status in CLOSED:
        answered = max(answered or t.updated_at, t.updated_at)
    waiting = [
        LiveMessage(tenant, t.id, m.mail.received_at, str(m.mail.id))
        for m in mails
        if m.mail.channel != SENT and (answered is None or m.mail.received_at > answered)
    ]
    row = LiveRow(
        tenant_id=tenant,
        ticket_id=t.id,
        inbox_id=t.inbox_id,
        status=t.status,
        assignee_id=t.assignee_id,
        version=t.updated_at,
        answered_at=answered,
        waiting_since=min((m.at for m in waiting), default=None),
    )
    return row, waiting
