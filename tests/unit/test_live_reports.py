"""The live figures' I/O-free parts (issue 19, RPT-5 / RPT-7): what a ticket event tells
reporting's live row (services/reporting/live_model.py), the late levels by the inbox's
thresholds, and the JSON a viewer gets — only the inboxes they may see, summed
(gateway/views_live_reports.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from switchboard.v1 import common_pb2, events_pb2
from switchboard.v1 import reporting_live_pb2 as pb

from gateway import views_live_reports as views
from services.reporting.live_model import Threshold, change_of, late_levels, level_of
from services.runtime import events
from services.runtime.errors import Poison

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _env(etype: events.EventType, payload: object, minute: int = 0) -> events_pb2.EventEnvelope:
    return events.envelope(
        etype,
        event_id="01a24d04-cd90-762d-9676-7075ae9ca5fc",
        tenant_id="01a24d04-cd90-762d-9676-7075ae9ca5fd",
        occurred_at=AT + timedelta(minutes=minute),
        payload=payload,  # type: ignore[arg-type]
        actor=events.system_actor("test"),
    )


def _summary(
    status: int = common_pb2.TICKET_STATUS_OPEN, minute: int = 0
) -> events_pb2.TicketSummary:
    s = events_pb2.TicketSummary(id="t1", status=status, inbox=common_pb2.InboxRef(id="i1"))
    s.received_at.FromDatetime(AT)
    s.updated_at.FromDatetime(AT + timedelta(minutes=minute))
    return s


def test_a_customer_mail_starts_a_wait_at_its_arrival() -> None:
    c = change_of(
        _env(
            events.TICKET_CREATED,
            events_pb2.TicketCreated(ticket=_summary(), message_id="m1", channel="smtp"),
            minute=1,
        )
    )
    assert c.customer_message == ("m1", AT) and c.answered_at is None
    assert (c.status, c.inbox_id, c.assignee_id) == ("open", "i1", None)


def test_a_ticket_we_started_and_a_mail_we_sent_are_answers() -> None:
    started = change_of(
        _env(
            events.TICKET_CREATED,
            events_pb2.TicketCreated(ticket=_summary(), message_id="m0", channel="sent"),
        )
    )
    assert started.customer_message is None and started.answered_at == AT
    reply = change_of(
        _env(
            events.TICKET_MESSAGE_ADDED,
            events_pb2.TicketMessageAdded(
                ticket=_summary(minute=7), message_id="m2", channel="sent"
            ),
            minute=7,
        )
    )
    assert reply.customer_message is None and reply.answered_at == AT + timedelta(minutes=7)


def test_an_automatic_reply_of_ours_answers_nobody() -> None:
    added = events_pb2.TicketMessageAdded(
        ticket=_summary(minute=1), message_id="m3", channel="sent"
    )
    added.mail.auto_submitted = True
    c = change_of(_env(events.TICKET_MESSAGE_ADDED, added, minute=1))
    assert c.customer_message is None and c.answered_at is None


@pytest.mark.parametrize(
    ("status", "name"),
    [(common_pb2.TICKET_STATUS_RESOLVED, "resolved"), (common_pb2.TICKET_STATUS_TRASH, "trash")],
)
def test_a_closing_ends_every_wait_begun_before_it(status: int, name: str) -> None:
    c = change_of(
        _env(events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=_summary(status, 9)), minute=9)
    )
    assert c.status == name and c.answered_at == AT + timedelta(minutes=9)


def test_a_merged_ticket_counts_nowhere_and_other_events_are_poison() -> None:
    s = _summary(minute=3)
    s.merged_into = "t2"
    assert (
        change_of(_env(events.TICKET_UPDATED, events_pb2.TicketUpdated(ticket=s))).status
        == "merged"
    )
    with pytest.raises(Poison):
        change_of(_env(events.COMMENT_ADDED, events_pb2.CommentAdded(ticket=_summary())))
    with pytest.raises(Poison):
        change_of(_env(events.TICKET_UPDATED, events_pb2.TicketUpdated()))


THRESHOLDS = [Threshold(30, "#ffcc00"), Threshold(120, "#ff0000")]


def test_late_levels_count_each_wait_at_its_highest_threshold() -> None:
    assert [level_of(THRESHOLDS, m) for m in (0, 29, 30, 119, 120, 5000)] == [0, 0, 1, 1, 2, 2]
    late = late_levels(THRESHOLDS, [(10, 4), (30, 2), (45, 1), (121, 3)])
    assert [(x.level, x.after_minutes, x.count) for x in late] == [(1, 30, 3), (2, 120, 3)]
    assert late_levels([], [(500, 2)]) == []


def _queue() -> pb.LiveQueue:
    q = pb.LiveQueue()
    q.at.FromDatetime(AT)
    a = q.inboxes.add(inbox_id="a", name="Help", waiting=2, near_breach=1, breached=0)
    a.oldest_waiting_since.FromDatetime(AT - timedelta(minutes=5))
    a.late.add(level=1, after_minutes=3, color="#ff0", count=2)
    b = q.inboxes.add(inbox_id="b", name="Private", waiting=1, near_breach=0, breached=1)
    b.oldest_waiting_since.FromDatetime(AT - timedelta(minutes=50))
    q.inboxes.add(inbox_id="c", name="Quiet")
    return q


def test_the_queue_shows_only_the_inboxes_the_viewer_sees_and_sums_them() -> None:
    body = views.queue(_queue(), lambda i: i != "b", None)
    assert [i["inbox_id"] for i in body["inboxes"]] == ["a", "c"]
    assert body["inboxes"][1]["oldest_waiting_since"] is None
    assert body["totals"] == {
        "waiting": 2,
        "oldest_waiting_since": "2026-12-07T08:55:00Z",
        "oldest_wait_seconds": 300,
        "late_total": 2,
        "near_breach": 1,
        "breached": 0,
    }
    everything = views.queue(_queue(), lambda i: True, None)
    assert everything["totals"]["oldest_wait_seconds"] == 3000
    assert everything["totals"]["waiting"] == 3
    one = views.queue(_queue(), lambda i: True, "b")
    assert [i["inbox_id"] for i in one["inboxes"]] == ["b"] and one["inbox_id"] == "b"


def test_assignment_sums_each_assignee_across_the_inboxes_seen() -> None:
    resp = pb.LiveAssignment(
        inboxes=[common_pb2.InboxRef(id="a", name="Help"), common_pb2.InboxRef(id="b", name="P")],
        rows=[
            pb.AssigneeLoad(inbox_id="a", operator_id="o1", display_name="Ito", open=1, pending=1),
            pb.AssigneeLoad(inbox_id="b", operator_id="o1", display_name="Ito", open=2),
            pb.AssigneeLoad(inbox_id="a", operator_id="o2", display_name="Abe", open=2),
            pb.AssigneeLoad(inbox_id="a", operator_id="", open=3),
            pb.AssigneeLoad(inbox_id="b", operator_id="", pending=4),
        ],
    )
    resp.at.FromDatetime(AT)
    seen = views.assignment(resp, lambda i: i == "a", None)
    assert seen["inboxes"] == [{"id": "a", "name": "Help"}]
    assert [(p["display_name"], p["open"], p["pending"]) for p in seen["assignees"]] == [
        ("Abe", 2, 0),
        ("Ito", 1, 1),
    ]
    assert seen["unassigned"] == {"open": 3, "pending": 0}
    assert seen["totals"] == {"open": 6, "pending": 1}
    both = views.assignment(resp, lambda i: True, None)
    assert [(p["display_name"], p["open"]) for p in both["assignees"]] == [("Ito", 3), ("Abe", 2)]
    assert both["totals"] == {"open": 8, "pending": 5}
