"""SLA due times from a ticket's history (RTE-4): first and next response, resolution,
pauses in pending, warnings, business hours, the choice of policy, and bad policies."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.routing.sla import (
    Happened,
    Happening,
    Kind,
    Policy,
    State,
    TicketFacts,
    check_policy,
    compute,
    select_policy,
    timers,
)
from services.runtime.calendars import ALWAYS, Calendar, make_slot
from services.runtime.errors import InvalidArgument

T0 = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # a Monday


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def policy(**kw: object) -> Policy:
    base = Policy(
        id="p1",
        name="standard",
        position=1,
        enabled=True,
        inbox_ids=(),
        categories=(),
        priorities=(),
        calendar_id="",
        first_response_minutes=60,
        next_response_minutes=30,
        resolution_minutes=240,
    )
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def status(minutes: float, s: str) -> Happening:
    return Happening(at(minutes), Happened.STATUS, s)


def customer(minutes: float) -> Happening:
    return Happening(at(minutes), Happened.CUSTOMER)


def reply(minutes: float) -> Happening:
    return Happening(at(minutes), Happened.OPERATOR)


def facts(*history: Happening) -> TicketFacts:
    return TicketFacts(created_at=T0, status="open", history=tuple(history))


def target(sla_targets: object, kind: Kind) -> object:
    found = [t for t in sla_targets if t.kind is kind]  # type: ignore[attr-defined]
    assert len(found) == 1
    return found[0]


def test_a_new_ticket_owes_a_first_response_and_a_resolution() -> None:
    sla = compute(policy(), ALWAYS, facts(), at(5))
    assert sla.state is State.OK and not sla.paused
    assert {t.kind: t.due_at for t in sla.targets} == {
        Kind.FIRST_RESPONSE: at(60),
        Kind.RESOLUTION: at(240),
    }
    assert sla.next_due_at == at(60)


def test_time_in_pending_does_not_count() -> None:
    history = (status(20, "pending"), status(60, "open"))
    paused = compute(policy(), ALWAYS, facts(*history[:1]), at(30))
    first = paused.targets[0]
    assert paused.paused and paused.state is State.PAUSED
    assert first.state is State.PAUSED and first.due_at is None
    assert first.remaining == timedelta(minutes=40)
    assert paused.next_due_at is None
    running = compute(policy(), ALWAYS, facts(*history), at(61))
    assert running.targets[0].due_at == at(100)  # 20 before the pause + 40 after it
    assert running.targets[1].due_at == at(280)


def test_a_policy_may_pause_in_other_statuses_or_none() -> None:
    never = compute(policy(pause_statuses=()), ALWAYS, facts(status(20, "pending")), at(30))
    assert never.targets[0].due_at == at(60) and not never.paused


def test_the_first_reply_in_time_meets_the_first_response() -> None:
    sla = compute(policy(), ALWAYS, facts(reply(45)), at(50))
    first = sla.targets[0]
    assert first.state is State.MET and first.met_at == at(45)
    assert sla.state is State.OK and sla.next_due_at == at(240)  # resolution still runs


def test_a_late_first_reply_stays_breached() -> None:
    sla = compute(policy(), ALWAYS, facts(reply(75)), at(80))
    assert sla.targets[0].state is State.BREACHED
    assert sla.targets[0].met_at == at(75)


def test_a_customer_writing_again_after_a_reply_starts_a_next_response_clock() -> None:
    history = (reply(10), customer(20), customer(25))
    sla = compute(policy(), ALWAYS, facts(*history), at(30))
    nxt = target(sla.targets, Kind.NEXT_RESPONSE)
    assert nxt.started_at == at(20) and nxt.due_at == at(50)  # type: ignore[attr-defined]
    answered = compute(policy(), ALWAYS, facts(*history, reply(40)), at(41))
    assert target(answered.targets, Kind.NEXT_RESPONSE).state is State.MET  # type: ignore[attr-defined]
    again = compute(policy(), ALWAYS, facts(*history, reply(40), customer(100)), at(101))
    assert target(again.targets, Kind.NEXT_RESPONSE).due_at == at(130)  # type: ignore[attr-defined]


def test_customer_messages_before_the_first_reply_do_not_start_a_next_response() -> None:
    sla = compute(policy(), ALWAYS, facts(customer(5), customer(10)), at(11))
    assert [t.kind for t in sla.targets] == [Kind.FIRST_RESPONSE, Kind.RESOLUTION]


def test_resolving_meets_the_resolution_and_reopening_runs_on_from_where_it_stopped() -> None:
    resolved = compute(policy(), ALWAYS, facts(reply(30), status(100, "resolved")), at(120))
    res = target(resolved.targets, Kind.RESOLUTION)
    assert res.state is State.MET and res.met_at == at(100)  # type: ignore[attr-defined]
    assert resolved.state is State.MET and resolved.next_due_at is None
    reopened = facts(reply(30), status(100, "resolved"), customer(300), status(300, "open"))
    sla = compute(policy(), ALWAYS, reopened, at(301))
    # 100 minutes ran before; 140 are left from 300
    assert target(sla.targets, Kind.RESOLUTION).due_at == at(440)  # type: ignore[attr-defined]
    assert target(sla.targets, Kind.NEXT_RESPONSE).due_at == at(330)  # type: ignore[attr-defined]


def test_closing_without_a_reply_ends_the_response_clock() -> None:
    sla = compute(policy(), ALWAYS, facts(status(10, "no_action")), at(500))
    assert {t.kind: t.state for t in sla.targets} == {
        Kind.FIRST_RESPONSE: State.MET,
        Kind.RESOLUTION: State.MET,
    }
    assert timers(sla) == []


def test_warning_before_minutes_or_at_a_percent() -> None:
    before = compute(policy(warn_before_minutes=15), ALWAYS, facts(), at(50))
    assert before.targets[0].warning_at == at(45) and before.state is State.WARNING
    pct = compute(policy(warn_at_percent=80), ALWAYS, facts(), at(1))
    assert pct.targets[0].warning_at == at(48) and pct.targets[1].warning_at == at(192)
    assert pct.state is State.OK
    assert compute(policy(), ALWAYS, facts(), at(61)).state is State.BREACHED


def test_timers_are_the_warnings_and_breaches_still_owed() -> None:
    sla = compute(policy(warn_at_percent=50), ALWAYS, facts(reply(10)), at(11))
    assert [(t.kind, t.which, t.fire_at) for t in timers(sla)] == [
        (Kind.RESOLUTION, "warning", at(120)),
        (Kind.RESOLUTION, "breach", at(240)),
    ]


def test_due_times_count_business_hours_over_a_japanese_holiday() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    weekdays = tuple(
        make_slot(d, "09:00", "18:00", False, field="s")
        for d in ("mon", "tue", "wed", "thu", "fri")
    )
    cal = Calendar.checked("Asia/Tokyo", weekdays, public_holidays="JP")
    created = datetime(2027, 1, 8, 17, 30, tzinfo=tokyo)  # Friday before 成人の日
    ticket = TicketFacts(created_at=created, status="open")
    sla = compute(policy(), cal, ticket, created)
    # 30 minutes on Friday, then Tuesday: the weekend and Monday the 11th are closed
    assert sla.targets[0].due_at == datetime(2027, 1, 12, 9, 30, tzinfo=tokyo)
    assert sla.targets[1].due_at == datetime(2027, 1, 12, 12, 30, tzinfo=tokyo)


def test_a_ticket_we_opened_owes_no_first_response() -> None:
    ticket = TicketFacts(created_at=T0, status="open", opened_by_operator=True)
    sla = compute(policy(), ALWAYS, ticket, at(1))
    assert [t.kind for t in sla.targets] == [Kind.RESOLUTION]


def test_the_first_enabled_policy_in_position_order_that_holds_applies() -> None:
    urgent = policy(id="u", position=1, priorities=("urgent",))
    sales = policy(id="s", position=2, inbox_ids=("sales",), enabled=True)
    off = policy(id="o", position=0, enabled=False)
    rest = policy(id="r", position=9)
    found = [
        select_policy([rest, sales, urgent, off], inbox, "", prio)
        for inbox, prio in (("sales", "urgent"), ("sales", "normal"), ("support", "low"))
    ]
    assert [p.id if p else None for p in found] == ["u", "s", "r"]
    assert select_policy([urgent], "support", "", "low") is None
    assert compute(None, ALWAYS, facts(), at(1)).state is State.NONE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_response_minutes": 0}, "first_response_minutes"),
        ({"resolution_minutes": 600_000}, "resolution_minutes"),
        (
            {
                "first_response_minutes": None,
                "next_response_minutes": None,
                "resolution_minutes": None,
            },
            "first_response_minutes",
        ),
        ({"pause_statuses": ("pending", "open")}, "pause_statuses[1]"),
        ({"priorities": ("asap",)}, "priorities[0]"),
        ({"warn_before_minutes": 5, "warn_at_percent": 50}, "warning"),
        ({"warn_at_percent": 100}, "warning.at_percent"),
        ({"name": " "}, "name"),
    ],
)
def test_a_policy_that_cannot_be_kept_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        check_policy(policy(**change))
    assert err.value.field == field
