"""What routing's rules read of a mail (services/routing/rules_facts.py) and how tickets
reads their decision (services/tickets/rule_decisions.py): no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.routing import rules_facts
from services.routing.rules.model import Attachment, Decision
from services.tickets import rule_decisions
from services.tickets.domain import Priority, Status

RAW = (
    b"From: =?UTF-8?B?5bGx55Sw?= <taro@example.co.jp>\r\n"
    b"To: support@shop.example\r\n"
    b"Subject: =?UTF-8?B?6L+U5ZOB?=\r\n"
    b"X-Tag: one\r\n"
    b"X-Tag: two\r\n"
    b"X-Folded: a\r\n b\r\n"
    b"\r\n"
    b"X-Not-A-Header: body text\r\n"
)


def test_headers_are_read_from_the_header_block_only_decoded_and_lower_cased() -> None:
    h = rules_facts.headers_of(RAW)
    assert h["subject"] == ("返品",)
    assert h["x-tag"] == ("one", "two")
    assert h["x-folded"] == ("a b",)
    assert "x-not-a-header" not in h


def test_details_and_facts_of_a_mail() -> None:
    parsed = {
        "text": "本文です",
        "attachments": [{"filename": "見積.PDF", "content_type": "Application/PDF"}],
    }
    details = rules_facts.details_of(json.dumps(parsed), RAW)
    assert details.attachments == (Attachment("見積.PDF", "application/pdf"),)
    assert details.text == "本文です"
    mail = events_pb2.MailSummary(subject="返品", size_bytes=123, has_attachments=True)
    getattr(mail, "from").address = "taro@example.co.jp"
    mail.to.add(address="support@shop.example")
    mail.cc.add(address="support@shop.example")
    facts = rules_facts.facts_of(
        mail,
        channel="smtp",
        received_at=datetime(2026, 12, 7, 1, 0),
        envelope_recipients=["help@shop.example"],
        ticket=rules_facts.ticket_state(events_pb2.TicketSummary(), "inbox-1"),
        details=details,
    )
    assert facts.recipients == ("support@shop.example", "help@shop.example")
    assert facts.body == "本文です"  # no search_text: the parsed text
    assert facts.received_at.tzinfo is UTC
    assert facts.attachment_count == 1
    assert facts.headers is not None and facts.headers["x-tag"] == ("one", "two")
    assert (facts.ticket.status, facts.ticket.priority, facts.ticket.inbox_id) == (
        "open",
        "normal",
        "inbox-1",
    )
    plain = rules_facts.facts_of(
        mail,
        channel="smtp",
        received_at=datetime(2026, 12, 7, tzinfo=UTC),
        envelope_recipients=[],
        ticket=rules_facts.ticket_state(events_pb2.TicketSummary()),
        details=None,
    )
    assert plain.headers is None and plain.attachments is None  # not fetched


def test_a_stored_tickets_fields() -> None:
    summary = events_pb2.TicketSummary(
        labels=["VIP"],
        category="請求",
        priority=common_pb2.PRIORITY_URGENT,
        status=common_pb2.TICKET_STATUS_PENDING,
    )
    summary.inbox.id = "inbox-2"
    state = rules_facts.ticket_state(summary, "ignored")
    assert (state.labels, state.category, state.priority, state.status, state.inbox_id) == (
        frozenset({"VIP"}),
        "請求",
        "urgent",
        "pending",
        "inbox-2",
    )


def test_the_decision_travels_and_tickets_reads_it_back() -> None:
    d = Decision(
        status="pending",
        assign_by_strategy=True,
        add_labels=["返品"],
        remove_labels=["old"],
        category="",
        priority="high",
        spam=True,
        trash=True,
        trace=[("r1", "返品", "add label 返品")],
    )
    pb = rules_facts.decision_pb(d)
    assert pb.HasField("category") and pb.category == ""
    assert pb.priority == common_pb2.PRIORITY_HIGH
    assert [(a.rule_id, a.rule_name, a.action) for a in pb.applied] == [
        ("r1", "返品", "add label 返品")
    ]
    edit = rule_decisions.edit_of(pb)
    assert edit.status is Status.TRASH  # spam wins over the status
    assert edit.priority is Priority.HIGH
    assert edit.category == ""
    assert edit.add_labels == ("返品",)
    assert edit.remove_labels == ("old",)
    assert set(edit.add_flags) == {"assign_by_strategy", "spam"}
    untouched = rule_decisions.edit_of(rules_facts.decision_pb(Decision(priority="low")))
    assert untouched.category is None and untouched.status is None and not untouched.add_flags


def test_a_stored_tickets_rules_read_its_latest_mail_that_came_in() -> None:
    found = tickets_pb2.GetTicketResponse()
    first = found.messages.add(id="m1", channel="smtp")
    first.mail.subject = "返品"
    found.messages.add(id="memo", channel="phone")  # a phone memo: no mail
    ours = found.messages.add(id="m2", channel="sent")
    ours.mail.subject = "Re: 返品"
    reply = found.messages.add(id="m3", channel="imap")
    reply.mail.subject = "Re: Re: 返品"
    assert [m.id for m in rules_facts.customer_mails(found)] == ["m1", "m3"]
