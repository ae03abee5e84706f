"""Facts from events (issue 19 §1), hand-computed: a reopen is a second resolution episode,
a reply outside business hours is 0 business seconds, an approval round trip counts one
request and one send-back for the right operators; and the fold into the rollups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from switchboard.v1 import common_pb2, events_pb2
from switchboard.v1 import routing_sla_pb2 as pb

from services.reporting import facts as f
from services.reporting import histogram, rollups
from services.reporting.inbox_hours import TenantHours, inbox_calendar_ids
from services.runtime import events
from services.runtime.calendars import ALWAYS, Calendar, make_slot
from tests import reporting_events as ev

TENANT = str(uuid.uuid4())
INBOX = str(uuid.uuid4())
TICKET = str(uuid.uuid4())
ALICE = str(uuid.uuid4())
BOB = str(uuid.uuid4())
# Monday 2026-03-02, 09:00 Tokyo = 00:00 UTC
MON_9 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
TOKYO_9_TO_17 = Calendar(
    "Asia/Tokyo",
    tuple(make_slot(d, "09:00", "17:00", False, field="s") for d in ("mon", "tue", "wed")),
)


def _metrics(facts: list[f.NewFact]) -> list[str]:
    return [x.metric for x in facts]


def test_a_reopen_makes_a_second_resolution_episode() -> None:
    t = ev.ticket(TICKET, INBOX)
    s, made = f.on_created(TENANT, ev.created(TENANT, t, MON_9, "m1"))
    assert _metrics(made) == ["arrival", "received"]
    resolved = ev.ticket(TICKET, INBOX, common_pb2.TICKET_STATUS_RESOLVED)
    at1 = MON_9 + timedelta(hours=1)
    s, made = f.on_updated(
        TENANT, ev.status_change(TENANT, resolved, at1, "open", "resolved", ALICE), s, ALWAYS
    )
    assert [(x.metric, x.key, x.wall_s, x.operator_id) for x in made] == [
        ("resolution", f"{TICKET}:1", 3600.0, ALICE)
    ]
    # the customer writes again: the ticket is reopened, a second episode starts
    at2 = MON_9 + timedelta(hours=3)
    s, made = f.on_message_added(
        TENANT, ev.message(TENANT, t, at2, "m2", reopened=True), s, ALWAYS, None
    )
    assert [(x.metric, x.key) for x in made] == [("reopen", f"{TICKET}:2"), ("received", "m2")]
    at3 = at2 + timedelta(minutes=30)
    s, made = f.on_updated(
        TENANT, ev.status_change(TENANT, resolved, at3, "open", "resolved", BOB), s, ALWAYS
    )
    assert [(x.metric, x.key, x.wall_s, x.operator_id) for x in made] == [
        ("resolution", f"{TICKET}:2", 1800.0, BOB)
    ]
    assert s is not None and s.episode == 2


def test_a_reply_outside_business_hours_counts_no_business_seconds() -> None:
    t = ev.ticket(TICKET, INBOX)
    evening = MON_9 + timedelta(hours=9)  # 18:00 Tokyo, closed
    s, _ = f.on_created(TENANT, ev.created(TENANT, t, evening, "m1"))
    reply_at = evening + timedelta(hours=2)  # 20:00 Tokyo
    s, made = f.on_message_added(
        TENANT, ev.message(TENANT, t, reply_at, "r1", "sent"), s, TOKYO_9_TO_17, ALICE
    )
    assert [(x.metric, x.wall_s, x.business_s, x.operator_id) for x in made] == [
        ("first_reply", 7200.0, 0.0, ALICE),
        ("reply", 7200.0, 0.0, ALICE),
    ]
    # a second customer message at 16:30 Tokyo next day, answered at 09:30 the day after:
    # 30 open minutes that day and 30 the next
    ask = MON_9 + timedelta(days=1, hours=7, minutes=30)
    s, _ = f.on_message_added(TENANT, ev.message(TENANT, t, ask, "m2"), s, TOKYO_9_TO_17, None)
    answer = MON_9 + timedelta(days=2, minutes=30)
    s, made = f.on_message_added(
        TENANT, ev.message(TENANT, t, answer, "r2", "sent"), s, TOKYO_9_TO_17, None
    )
    assert [(x.metric, x.wall_s, x.business_s) for x in made] == [("reply", 61200.0, 3600.0)]


def test_an_approval_round_trip_counts_for_the_right_operators() -> None:
    asked = MON_9
    req = ev.approval(
        events.APPROVAL_REQUESTED, TENANT, asked, request_id="q1", inbox=INBOX, author=ALICE
    )
    back = ev.approval(
        events.APPROVAL_SENT_BACK,
        TENANT,
        asked + timedelta(minutes=10),
        request_id="q1",
        inbox=INBOX,
        author=ALICE,
        approver=BOB,
        requested_at=asked,
    )
    made = f.on_approval(TENANT, req, ALWAYS) + f.on_approval(TENANT, back, ALWAYS)
    assert [(x.metric, x.operator_id, x.other_operator_id, x.wall_s) for x in made] == [
        ("approval_request", ALICE, None, None),
        ("send_back", ALICE, BOB, 600.0),
        ("send_back_given", BOB, ALICE, 600.0),
    ]


def test_tickets_born_in_the_trash_and_splits_make_no_facts() -> None:
    trash = ev.ticket(TICKET, INBOX, common_pb2.TICKET_STATUS_TRASH)
    assert f.on_created(TENANT, ev.created(TENANT, trash, MON_9, "m1")) == (None, [])
    split = ev.ticket(TICKET, INBOX)
    s, made = f.on_created(TENANT, ev.created(TENANT, split, MON_9, "m1", channel=""))
    assert s is not None and made == []


def test_the_fold_sums_counts_durations_and_histograms_per_dimension() -> None:
    def fact(at: datetime, wall: float, labels: tuple[str, ...]) -> rollups.FoldFact:
        return rollups.FoldFact(
            TENANT, "reply", at, INBOX, ALICE, "smtp", "", "high", labels, wall, wall / 2
        )

    facts = [
        fact(MON_9 + timedelta(minutes=5), 120.0, ("a", "b")),
        fact(MON_9 + timedelta(minutes=50), 600.0, ("a",)),
        fact(MON_9 + timedelta(hours=1), 60.0, ()),
    ]
    hours = rollups.deltas(facts, "hour")
    total = hours[(TENANT, "reply", "", MON_9, INBOX, "")]
    assert (total.count, total.sum_wall, total.sum_business) == (2, 720.0, 360.0)
    assert total.hist_wall == histogram.of([120, 600])
    assert hours[(TENANT, "reply", "label", MON_9, INBOX, "b")].count == 1
    assert hours[(TENANT, "reply", "operator", MON_9, INBOX, ALICE)].count == 2
    assert hours[(TENANT, "reply", "", MON_9 + timedelta(hours=1), INBOX, "")].count == 1
    quarter = rollups.deltas(facts, "15m")
    assert quarter[(TENANT, "reply", "", MON_9 + timedelta(minutes=45), INBOX, "")].count == 1
    assert rollups.bucket(MON_9 + timedelta(minutes=29, seconds=59), "15m") == MON_9 + timedelta(
        minutes=15
    )


def test_a_sent_forward_counts_as_sent_and_as_a_forward_for_its_author() -> None:
    def sent(draft_kind: str, previous: str = "sending") -> list[f.NewFact]:
        c = events_pb2.SendChanged(
            send_id="s1", kind="reply", inbox_id=INBOX, state="sent", previous_state=previous
        )
        env = events.envelope(
            events.SEND_CHANGED,
            event_id=str(uuid.uuid4()),
            tenant_id=TENANT,
            occurred_at=MON_9,
            payload=c,
            actor=ev.SYSTEM,
        )
        return f.on_sent(TENANT, env, ALICE, None, draft_kind)

    assert [(x.metric, x.operator_id, x.channel) for x in sent("forward")] == [
        ("sent", ALICE, "reply"),
        ("forward", ALICE, "reply"),
    ]
    assert _metrics(sent("reply")) == ["sent"]
    assert sent("reply", previous="sent") == []


def test_the_inbox_calendar_is_its_first_policy_without_category_or_priority() -> None:
    other = str(uuid.uuid4())
    policies = [
        # first by position, but only for urgent tickets: not the inbox's own hours
        pb.SlaPolicy(
            id="p0",
            position=0,
            enabled=True,
            inbox_ids=[INBOX],
            priorities=["urgent"],
            calendar_id="c-urgent",
        ),
        pb.SlaPolicy(id="p1", position=1, enabled=False, inbox_ids=[INBOX], calendar_id="c-off"),
        pb.SlaPolicy(id="p2", position=2, enabled=True, inbox_ids=[INBOX], calendar_id="c-tokyo"),
        pb.SlaPolicy(id="p3", position=3, enabled=True, calendar_id="c-all"),
    ]
    named, default = inbox_calendar_ids(policies)
    assert named == {INBOX: "c-tokyo"} and default == "c-all"
    hours = TenantHours(named, default, {"c-tokyo": TOKYO_9_TO_17})
    assert hours.of(INBOX) is TOKYO_9_TO_17
    assert hours.of(other) is ALWAYS  # its calendar is unknown: around the clock
    assert TenantHours(*inbox_calendar_ids([]), {}).of(INBOX) is ALWAYS


def test_a_reply_sent_with_resolve_is_still_a_reply_and_a_restored_ticket_reopens() -> None:
    t = ev.ticket(TICKET, INBOX)
    resolved = ev.ticket(TICKET, INBOX, common_pb2.TICKET_STATUS_RESOLVED)
    trash = ev.ticket(TICKET, INBOX, common_pb2.TICKET_STATUS_TRASH)
    s, _ = f.on_created(TENANT, ev.created(TENANT, t, MON_9, "m1"))
    # the reply went out with "resolve": the status changes before its copy is filed
    at = MON_9 + timedelta(minutes=20)
    s, made = f.on_updated(
        TENANT, ev.status_change(TENANT, resolved, at, "open", "resolved", ALICE), s, ALWAYS
    )
    assert _metrics(made) == ["resolution"]
    s, made = f.on_message_added(
        TENANT,
        ev.message(TENANT, resolved, at + timedelta(seconds=5), "r1", "sent"),
        s,
        ALWAYS,
        ALICE,
    )
    assert [(x.metric, x.wall_s) for x in made] == [("first_reply", 1205.0), ("reply", 1205.0)]
    # deleted, restored to open, resolved again: a second episode
    later = MON_9 + timedelta(hours=2)
    s, made = f.on_updated(
        TENANT, ev.status_change(TENANT, trash, later, "resolved", "trash", BOB), s, ALWAYS
    )
    assert [(x.metric, x.operator_id) for x in made] == [("trash", BOB)]
    s, made = f.on_updated(
        TENANT, ev.status_change(TENANT, t, later, "trash", "open", BOB), s, ALWAYS
    )
    assert [(x.metric, x.key) for x in made] == [("reopen", f"{TICKET}:2")]
    s, made = f.on_updated(
        TENANT,
        ev.status_change(TENANT, resolved, later + timedelta(minutes=1), "open", "resolved", BOB),
        s,
        ALWAYS,
    )
    assert [(x.metric, x.key, x.wall_s) for x in made] == [("resolution", f"{TICKET}:2", 60.0)]


def test_transfers_assignments_and_sla_alerts_count_for_the_right_inbox_and_operator() -> None:
    old_inbox = str(uuid.uuid4())
    t = ev.ticket(TICKET, old_inbox, labels=("返品",))
    s, _ = f.on_created(TENANT, ev.created(TENANT, t, MON_9, "m1"))
    moved = ev.ticket(TICKET, INBOX, labels=("返品",))
    u = events_pb2.TicketUpdated(ticket=moved, action="transfer")
    u.previous_inbox.id = old_inbox
    env = events.envelope(
        events.TICKET_UPDATED, event_id="e1", tenant_id=TENANT, occurred_at=MON_9,
        payload=u, actor=ev.op(BOB),
    )  # fmt: skip
    s, made = f.on_updated(TENANT, env, s, ALWAYS)
    assert [(x.metric, x.inbox_id, x.operator_id, x.labels) for x in made] == [
        ("transfer", old_inbox, BOB, ("返品",))
    ]
    assigned = events_pb2.TicketAssigned(ticket=ev.ticket(TICKET, INBOX, assignee=ALICE))
    assigned.assignee.id = ALICE
    env = events.envelope(
        events.TICKET_ASSIGNED, event_id="e2", tenant_id=TENANT, occurred_at=MON_9,
        payload=assigned, actor=ev.op(BOB),
    )  # fmt: skip
    s, made = f.on_assigned(TENANT, env, s)
    assert [(x.metric, x.inbox_id, x.operator_id, x.other_operator_id) for x in made] == [
        ("assignment", INBOX, ALICE, BOB)
    ]
    alert = events_pb2.SlaAlert(ticket_id=TICKET, target="first_response", inbox_id=INBOX)
    alert.started_at.FromDatetime(MON_9)
    env = events.envelope(
        events.SLA_BREACHED, event_id="e3", tenant_id=TENANT, occurred_at=MON_9,
        payload=alert, actor=ev.SYSTEM,
    )  # fmt: skip
    [breach] = f.on_sla(TENANT, env, s)
    assert (breach.metric, breach.operator_id, breach.channel, breach.key) == (
        "sla_breach",
        ALICE,
        "first_response",
        f"{TICKET}:first_response:{MON_9.isoformat()}",
    )
