"""The event catalogue: subjects, envelopes, and refusing the wrong payload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from switchboard.v1 import events_pb2

from services.runtime import events
from services.runtime.errors import InvalidArgument, Poison


def _received() -> events_pb2.EventEnvelope:
    payload = events_pb2.MessageReceived(message_id="m1", channel="smtp")
    return events.envelope(
        events.MESSAGE_RECEIVED,
        event_id="e1",
        tenant_id="t1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload=payload,
        actor=events.system_actor("ingestion"),
    )


def test_every_event_type_has_a_subject_in_its_stream_and_a_payload_field() -> None:
    fields = {f.name for f in events_pb2.EventEnvelope.DESCRIPTOR.oneofs_by_name["payload"].fields}
    for etype in events.EVENT_TYPES.values():
        assert etype.subject.startswith(f"sb.{etype.stream.domain}.")
        assert etype.payload_field in fields


def test_a_chain_keeps_tenant_and_correlation_and_names_its_cause() -> None:
    first = _received()
    assert first.correlation_id == "e1" and first.causation_id == ""
    routed = events.caused_by(
        events.MESSAGE_ROUTED,
        first,
        event_id="e2",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload=events_pb2.MessageRouted(message_id="m1"),
        actor=events.system_actor("routing"),
    )
    assert (routed.tenant_id, routed.correlation_id, routed.causation_id) == ("t1", "e1", "e1")
    assert events.subject_of(routed) == "sb.routing.message.routed"


def test_the_wrong_payload_is_poison_and_an_event_needs_a_tenant() -> None:
    env = _received()
    assert events.payload_of(env, events.MESSAGE_RECEIVED).message_id == "m1"
    with pytest.raises(Poison):
        events.payload_of(env, events.MESSAGE_ROUTED)
    with pytest.raises(InvalidArgument):
        events.envelope(
            events.TICKET_CREATED,
            event_id="e",
            tenant_id="",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            payload=events_pb2.TicketCreated(),
            actor=events.system_actor("tickets"),
        )
