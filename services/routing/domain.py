"""Routing decisions, free of I/O. Today a mail stays in the inbox it was addressed to and
goes to the ticket it belongs to; rules (RTE-1), assignment (RTE-2) and SLA (RTE-4)
extend `route`.

Where a mail's ticket is found is decided here, once: a mail we sent (channel "sent")
belongs to the ticket outbound sent it from (none: a new mail starts a ticket); any other
mail is asked of tickets, which owns the index of Message-IDs (`needs_thread_lookup`).
Tickets files the mail where this says.
"""

from __future__ import annotations

from switchboard.v1 import events_pb2

SENT = "sent"  # thread_reason of a mail we sent, filed in the ticket it was sent from


def needs_thread_lookup(received: events_pb2.MessageReceived) -> bool:
    """Whether tickets must be asked where the mail belongs (every mail but our own)."""
    return received.channel != "sent"


def route(
    received: events_pb2.MessageReceived, thread_ticket_id: str = "", thread_reason: str = ""
) -> events_pb2.MessageRouted:
    """The routing of a received mail, given the thread tickets found for it (ignored for
    a mail we sent, which carries its ticket)."""
    if not needs_thread_lookup(received):
        thread_ticket_id = received.ticket_id
        thread_reason = SENT if received.ticket_id else ""
    routed = events_pb2.MessageRouted(
        message_id=received.message_id,
        inbox=received.inbox,
        channel=received.channel,
        mail=received.mail,
        thread_ticket_id=thread_ticket_id,
        thread_reason=thread_reason,
    )
    routed.received_at.CopyFrom(received.received_at)
    return routed
