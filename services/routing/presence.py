"""Presence pushed live (issue 18, RTE-2): what counts as a change of an operator's
presence, and the `presence.changed` event the gateway pushes to the tenant's operators.
A heartbeat that only moves the lapse time is no change (not announced, not in the
operation log). Free of I/O."""

from __future__ import annotations

from datetime import datetime

from switchboard.v1 import events_pb2
from switchboard.v1 import routing_assign_pb2 as pb

from services.runtime import events
from services.runtime.identity import Identity, operator_actor

from .assign_repo import PresenceRow
from .assignment import effective_presence

NAMES = {
    pb.PRESENCE_STATUS_ONLINE: "online",
    pb.PRESENCE_STATUS_AWAY: "away",
    pb.PRESENCE_STATUS_OFFLINE: "offline",
}


def presence_changed(before: PresenceRow | None, after: PresenceRow, now: datetime) -> bool:
    """Whether `after` changes what others see: the status as set, or what counts now
    (a lapsed "online" that a heartbeat brings back). Never set counts as offline."""
    if before is None:
        return True
    was = effective_presence(before.status, before.expires_at, now)
    return before.status is not after.status or was is not effective_presence(
        after.status, after.expires_at, now
    )


def presence_event(
    ident: Identity, presence: pb.OperatorPresence, now: datetime, event_id: str
) -> events_pb2.EventEnvelope:
    """presence.changed for the operator's presence as SetPresence answers it."""
    payload = events_pb2.PresenceChanged(
        operator_id=presence.operator_id,
        status=NAMES.get(presence.status, "offline"),
        effective=NAMES.get(presence.effective, "offline"),
        load=presence.load,
    )
    if presence.HasField("expires_at"):
        payload.expires_at.CopyFrom(presence.expires_at)
    if presence.HasField("updated_at"):
        payload.updated_at.CopyFrom(presence.updated_at)
    if presence.HasField("capacity"):
        payload.capacity = presence.capacity.value
    return events.envelope(
        events.PRESENCE_CHANGED,
        event_id=event_id,
        tenant_id=ident.tenant_id,
        occurred_at=now,
        payload=payload,
        actor=operator_actor(ident),
        correlation_id=ident.correlation_id,
    )
