"""Routing decisions, free of I/O. Today a mail stays in the inbox it was addressed to;
rules (RTE-1), assignment (RTE-2) and SLA (RTE-4) extend `route`."""

from __future__ import annotations

from switchboard.v1 import events_pb2


def route(received: events_pb2.MessageReceived) -> events_pb2.MessageRouted:
    routed = events_pb2.MessageRouted(
        message_id=received.message_id,
        inbox=received.inbox,
        channel=received.channel,
        mail=received.mail,
    )
    routed.received_at.CopyFrom(received.received_at)
    return routed
