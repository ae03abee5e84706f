"""Facts from events (issue 19 §1), hand-computed: a reopen is a second resolution episode,
a reply outside business hours is 0 business seconds, an approval round trip counts one
request and one send-back for the right operators; and the fold into the rollups."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from switchboard.v1 import common_pb2

from services.reporting import facts as f
from services.reporting import histogram, rollups
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
