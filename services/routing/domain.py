"""Routing decisions, free of I/O. Today a mail stays in the inbox it was addressed to,
and carries the ticket tickets said it answers; rules (RTE-1), assignment (RTE-2) and SLA
(RTE-4) extend `route`."""

from __future__ import annotations

from switchboard.v1 import events_pb2


def route(
    received: events_pb2.MessageReceived, thread_ticket_id: str = "", thread_reason: str = ""
) -> events_pb2.MessageRouted:
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


def lookup(received: events_pb2.MessageReceived) -> events_pb2.MessageReceived:
    """What to ask tickets about a mail. A mail we sent (channel "sent") carries our own
    signed Message-ID: asked as if it answered itself, it finds the ticket it was sent
    from."""
    if received.channel != "sent" or not received.mail.rfc822_message_id:
        return received
    own = events_pb2.MessageReceived()
    own.CopyFrom(received)
    own.mail.in_reply_to = received.mail.rfc822_message_id
    return own
