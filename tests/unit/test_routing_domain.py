"""Where a mail's ticket is decided: once, in routing (services/routing/domain.py)."""

from __future__ import annotations

from switchboard.v1 import common_pb2, events_pb2

from services.routing import domain

TICKET = "0190f0d2-0000-7000-8000-000000000001"
OTHER = "0190f0d2-0000-7000-8000-000000000002"


def _received(channel: str, ticket_id: str = "") -> events_pb2.MessageReceived:
    received = events_pb2.MessageReceived(
        message_id="0190f0d2-0000-7000-8000-0000000000aa",
        inbox=common_pb2.InboxRef(id="0190f0d2-0000-7000-8000-0000000000bb", name="Support"),
        channel=channel,
        ticket_id=ticket_id,
    )
    received.mail.subject = "Re: 配送について"
    received.mail.in_reply_to = "<someone-else@example.jp>"
    return received


def test_a_mail_we_sent_goes_to_the_ticket_it_was_sent_from_without_asking() -> None:
    received = _received("sent", TICKET)
    assert not domain.needs_thread_lookup(received)
    routed = domain.route(received)
    assert (routed.thread_ticket_id, routed.thread_reason) == (TICKET, "sent")
    assert routed.mail.subject == "Re: 配送について"


def test_a_new_mail_we_sent_starts_a_ticket() -> None:
    routed = domain.route(_received("sent"))
    assert (routed.thread_ticket_id, routed.thread_reason) == ("", "")


def test_received_mail_goes_where_tickets_said_whatever_ticket_it_claims() -> None:
    """Only outbound's RecordSent sets a ticket id; on any other channel the thread is the
    one tickets found (its forged-reference rules), never a ticket the message names."""
    received = _received("smtp", OTHER)
    assert domain.needs_thread_lookup(received)
    routed = domain.route(received, TICKET, "signed_reference")
    assert (routed.thread_ticket_id, routed.thread_reason) == (TICKET, "signed_reference")
    assert domain.route(received).thread_ticket_id == ""
