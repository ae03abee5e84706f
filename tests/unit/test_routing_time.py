"""Issue 18, the rule time triggers and the SLA at intake, free of I/O: a rule's
`no_first_reply_minutes` (required with the trigger, refused without), the calendars a
rule names (refused on save when unknown), which timers a ticket owes, whether a fired
timer still holds for the ticket as it is now, a ticket's pending-until date (tickets'
edit rules), and the new ticket routing computes the SLA of."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.routing import rule_timers
from services.routing.rules import model, validate
from services.routing.rules.model import Rule
from services.routing.rules_time import still_due
from services.routing.sla import Happened, Happening, TicketFacts
from services.routing.sla_intake import new_ticket
from services.routing.sla_records import SlaTicket
from services.runtime.errors import InvalidArgument
from services.tickets import domain
from tests.unit.test_tickets_domain import _row

T0 = datetime(2027, 1, 4, 1, 0, tzinfo=UTC)
INBOX = str(uuid.uuid4())
CAL = str(uuid.uuid4())


def _raw(**more: Any) -> dict[str, Any]:
    return {"name": "r", "triggers": ["no_first_reply"], "actions": [{"type": "stop"}], **more}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_raw(), "required with the trigger no_first_reply"),
        (_raw(no_first_reply_minutes=0), "required with the trigger no_first_reply"),
        (_raw(no_first_reply_minutes=1.5), "whole number"),
        (_raw(no_first_reply_minutes="30"), "whole number"),
        (_raw(no_first_reply_minutes=525_601), "1–525600"),
        (_raw(triggers=["new_ticket"], no_first_reply_minutes=30), "only with the trigger"),
    ],
)
def test_no_first_reply_minutes_are_required_with_the_trigger_and_only_with_it(
    raw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        validate.parse(raw)
    assert err.value.field == "no_first_reply_minutes" and message in err.value.message


def test_time_triggers_parse_and_round_trip() -> None:
    rule = validate.parse(
        _raw(triggers=["no_first_reply", "pending_until"], no_first_reply_minutes=30)
    )
    assert rule.triggers == ("no_first_reply", "pending_until")
    assert rule.no_first_reply_minutes == 30
    assert validate.parse(validate.to_json(rule)) == rule
    pending = validate.parse(_raw(triggers=["pending_until"]))
    assert pending.no_first_reply_minutes is None
    assert validate.to_json(pending)["no_first_reply_minutes"] is None


def test_the_calendars_a_rule_names_with_their_fields() -> None:
    other = str(uuid.uuid4())
    rule = validate.parse(
        _raw(
            triggers=["new_ticket"],
            business_hours={"calendar_id": CAL, "when": "inside"},
            conditions={
                "match": "all",
                "conditions": [
                    {"field": "subject", "operator": "contains", "value": "返品"},
                    {
                        "match": "any",
                        "conditions": [
                            {"field": "business_hours", "operator": "outside", "value": other}
                        ],
                    },
                ],
            },
        )
    )
    assert validate.calendar_refs(rule) == [
        ("business_hours.calendar_id", CAL),
        ("conditions.conditions[1].conditions[0].value", other),
    ]


def _rule(trigger: str, minutes: int | None = None, **more: Any) -> Rule:
    raw = {"name": "r", "triggers": [trigger], "actions": [{"type": "stop"}], **more}
    if minutes is not None:
        raw["no_first_reply_minutes"] = minutes
    return Rule(str(uuid.uuid4()), 0, 1, validate.parse(raw))


def _ticket(**kw: Any) -> SlaTicket:
    base = SlaTicket(str(uuid.uuid4()), INBOX, "", "normal", "open", T0, False, "", "ok", None)
    return dataclasses.replace(base, **kw)


NO_HISTORY = TicketFacts(T0, "open")


def test_the_timers_a_ticket_owes() -> None:
    rules = [
        _rule("no_first_reply", 30),
        _rule("no_first_reply", 30),
        _rule("no_first_reply", 10, enabled=False),
        _rule("no_first_reply", 20, inbox_id=str(uuid.uuid4())),
        _rule("no_first_reply", 90, inbox_id=INBOX),
        _rule("pending_until"),
    ]
    owed = rule_timers.timers_for(rules, _ticket(), NO_HISTORY)
    assert [(t.kind, t.which, t.fire_at) for t in owed] == [
        ("no_first_reply", "30", T0 + timedelta(minutes=30)),
        ("no_first_reply", "90", T0 + timedelta(minutes=90)),
    ]
    replied = TicketFacts(T0, "open", (Happening(T0 + timedelta(minutes=5), Happened.OPERATOR),))
    assert rule_timers.timers_for(rules, _ticket(), replied) == []
    assert rule_timers.timers_for(rules, _ticket(opened_by_operator=True), NO_HISTORY) == []
    assert rule_timers.timers_for(rules, _ticket(status="resolved"), NO_HISTORY) == []
    date = T0 + timedelta(days=2)
    pending = _ticket(status="pending", pending_until=date)
    assert [
        (t.kind, t.which, t.started_at, t.fire_at)
        for t in rule_timers.timers_for(rules[-1:], pending, NO_HISTORY)
    ] == [("pending_until", "at", date, date)]
    # no pending_until rule, or not pending (any more): no timer
    assert (
        rule_timers.timers_for(rules[:1], _ticket(status="pending", pending_until=date), replied)
        == []
    )
    assert rule_timers.timers_for(rules[-1:], _ticket(pending_until=date), NO_HISTORY) == []


def _found(
    status: int, *channels: str, pending_until: datetime | None = None
) -> tickets_pb2.GetTicketResponse:
    found = tickets_pb2.GetTicketResponse()
    found.ticket.id = str(uuid.uuid4())
    found.ticket.status = status  # type: ignore[assignment]
    if pending_until is not None:
        found.ticket.pending_until.FromDatetime(pending_until)
    for c in channels:
        found.messages.add(channel=c)
    return found


def test_a_fired_timer_holds_only_for_the_ticket_as_it_still_is() -> None:
    nfr = events_pb2.RuleTimerDue(trigger=model.NO_FIRST_REPLY, minutes=30)
    assert still_due(nfr, _found(common_pb2.TICKET_STATUS_OPEN, "smtp"))
    assert not still_due(nfr, _found(common_pb2.TICKET_STATUS_OPEN, "smtp", "sent"))
    assert not still_due(nfr, _found(common_pb2.TICKET_STATUS_RESOLVED, "smtp"))
    date = T0 + timedelta(hours=3)
    pu = events_pb2.RuleTimerDue(trigger=model.PENDING_UNTIL)
    pu.started_at.FromDatetime(date)
    assert still_due(pu, _found(common_pb2.TICKET_STATUS_PENDING, pending_until=date))
    assert not still_due(
        pu, _found(common_pb2.TICKET_STATUS_PENDING, pending_until=date + timedelta(hours=1))
    )
    assert not still_due(pu, _found(common_pb2.TICKET_STATUS_OPEN))


def test_only_a_pending_ticket_has_a_pending_until_date() -> None:
    date = datetime(2026, 12, 10, 0, 0, tzinfo=UTC)
    at, clear = domain.parse_pending_until("2026-12-10T09:00:00+09:00")
    assert (at, clear) == (date, False)
    assert domain.parse_pending_until("") == (None, True)
    for bad in ("tomorrow", "2026-12-10T09:00:00"):
        with pytest.raises(InvalidArgument) as err:
            domain.parse_pending_until(bad)
        assert err.value.field == "pending_until"
    # set together with pending; refused on a ticket that stays open
    applied = domain.apply_edit(
        _row(), domain.FieldEdit(status=domain.Status.PENDING, pending_until=date)
    )
    assert applied.values == {"status": "pending", "pending_until": date}
    assert applied.changes[-1] == domain.Change("pending_until", "", "2026-12-10T00:00:00Z")
    with pytest.raises(InvalidArgument) as err:
        domain.apply_edit(_row(), domain.FieldEdit(pending_until=date))
    assert err.value.field == "pending_until"
    # leaving pending loses it; clearing it keeps the status
    waiting = _row(status="pending", pending_until=date)
    reopened = domain.apply_edit(waiting, domain.FieldEdit(status=domain.Status.OPEN))
    assert reopened.values == {"status": "open", "pending_until": None}
    cleared = domain.apply_edit(waiting, domain.FieldEdit(clear_pending_until=True))
    assert cleared.values == {"pending_until": None}
    assert domain.apply_edit(waiting, domain.FieldEdit(pending_until=date)).values == {}


def _routed(**decision: Any) -> tuple[events_pb2.MessageReceived, events_pb2.MessageRouted]:
    received = events_pb2.MessageReceived(channel="smtp", inbox=common_pb2.InboxRef(id=INBOX))
    received.received_at.FromDatetime(T0)
    routed = events_pb2.MessageRouted(new_ticket_id=str(uuid.uuid4()))
    if decision:
        routed.decision.CopyFrom(events_pb2.RoutingDecision(**decision))
    return received, routed


def test_the_new_ticket_routing_computes_the_sla_of_is_as_the_rules_left_it() -> None:
    received, routed = _routed()
    t = new_ticket(received, routed)
    assert t is not None
    assert (t.ticket_id, t.inbox_id, t.priority, t.status, t.created_at) == (
        routed.new_ticket_id,
        INBOX,
        "normal",
        "open",
        T0,
    )
    moved = str(uuid.uuid4())
    received, routed = _routed(
        inbox_id=moved,
        category="返品",
        priority=common_pb2.PRIORITY_HIGH,
        status=common_pb2.TICKET_STATUS_PENDING,
    )
    t = new_ticket(received, routed)
    assert t is not None and (t.inbox_id, t.category, t.priority, t.status) == (
        moved,
        "返品",
        "high",
        "pending",
    )
    received, routed = _routed(spam=True)
    assert (new_ticket(received, routed) or _ticket()).status == "trash"
    # a mail joining a ticket, or one we sent: not a new ticket
    received, routed = _routed()
    routed.thread_ticket_id = str(uuid.uuid4())
    assert new_ticket(received, routed) is None
    received, routed = _routed()
    received.channel = "sent"
    assert new_ticket(received, routed) is None
