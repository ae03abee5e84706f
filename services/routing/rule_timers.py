"""The rule time triggers' timers (issue 18, RTE-1), free of I/O: which `no_first_reply`
and `pending_until` timers a ticket owes, given the tenant's rules and what routing knows
of the ticket. They live in the SLA's due-time index (sla_timers: target = the trigger)
and are replaced with the SLA's timers whenever a ticket event recomputes the ticket.

- `no_first_reply`: a ticket a customer started (not one an operator opened) that has no
  reply of ours (no mail with channel "sent") and is not closed owes, for each distinct
  `no_first_reply_minutes` N of the enabled rules of its inbox with the trigger, a timer
  at its creation + N wall-clock minutes. Its key (N, the creation) fires once: a ticket
  gets each N once, ever. A reply or a closing before then removes it.
- `pending_until`: a pending ticket with a pending-until date owes a timer at that date
  when an enabled rule of its inbox has the trigger. Keyed by the date: each date fires
  once; a new date arms a new one; leaving pending removes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from .rules import engine, model
from .rules.model import Rule
from .sla import CLOSED, Happened, TicketFacts
from .sla_records import SlaTicket

TARGETS = model.TIME_TRIGGERS
AT = "at"  # the `which` of a pending_until timer


@dataclass(frozen=True, slots=True)
class RuleTimer:
    kind: str  # the trigger: no_first_reply | pending_until
    which: str  # no_first_reply: the minutes; pending_until: "at"
    started_at: datetime  # the ticket's creation; the pending-until date
    fire_at: datetime
    due_at: datetime


def replied(facts: TicketFacts) -> bool:
    return any(h.what is Happened.OPERATOR for h in facts.history)


def timers_for(rules: Iterable[Rule], ticket: SlaTicket, facts: TicketFacts) -> list[RuleTimer]:
    """The rule timers `ticket` owes under the tenant's `rules` (in order)."""
    mine = [r for r in rules if r.definition.enabled and engine.applies_to(r, ticket.inbox_id)]
    out: list[RuleTimer] = []
    if ticket.status not in CLOSED and not ticket.opened_by_operator and not replied(facts):
        minutes = sorted(
            {
                r.definition.no_first_reply_minutes
                for r in mine
                if model.NO_FIRST_REPLY in r.definition.triggers
                and r.definition.no_first_reply_minutes
            }
        )
        for n in minutes:
            at = ticket.created_at + timedelta(minutes=n)
            out.append(RuleTimer(model.NO_FIRST_REPLY, str(n), ticket.created_at, at, at))
    if (
        ticket.status == "pending"
        and ticket.pending_until is not None
        and any(model.PENDING_UNTIL in r.definition.triggers for r in mine)
    ):
        at = ticket.pending_until
        out.append(RuleTimer(model.PENDING_UNTIL, AT, at, at, at))
    return out
