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
