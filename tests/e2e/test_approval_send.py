"""The hand-over of a final approval to outbound (issue 17), on the real stack with the
aiosmtpd peer: `approve_and_send` sends exactly the approved revision — with the
approver's words — once, now or at the author's time; the request ends `sent`. A SIGKILL
of approval right after the decision commits still sends once; a redelivered
`approval.approved` sends nothing more; a draft changed after approval is not sent and
the request is voided. Stage deadlines remind once per stage, also across a restart."""

from __future__ import annotations

import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import nats
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext
from switchboard.v1 import (
    approval_pb2,
    common_pb2,
    composition_pb2,
    composition_pb2_grpc,
    events_pb2,
)

from services.devstack.stack import Stack
from services.runtime import events as ev
from services.runtime.db import with_database
from tests.conftest import Infra
from tests.e2e.test_accounts import call
from tests.e2e.test_approval import (
    Office,
    Stub,
    decide,
    grpc_stubs,
    make_office,
    new_draft,
    save,
)
from tests.e2e.test_compose import lock, mail_ticket
from tests.e2e.test_outbound import reply_draft
from tests.e2e.test_outgoing_guards import _audit
from tests.helpers import eventually
from tests.smtp_peer import Received, SmtpPeer

pytestmark = pytest.mark.e2e

APPROVED_SUBJECT = ev.APPROVAL_APPROVED.subject

__all__ = ["grpc_stubs"]  # the fixture, used by name

A = approval_pb2
Compose = composition_pb2_grpc.CompositionServiceStub


class Bus:
    """The approval.* events of one tenant as they are announced, and JetStream."""

    def __init__(self, nc: nats.NATS, tenant_id: str) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.tenant_id = tenant_id
        self.events: list[tuple[str, events_pb2.EventEnvelope]] = []

    async def on_msg(self, msg: Any) -> None:
        env = events_pb2.EventEnvelope.FromString(msg.data)
        if env.tenant_id == self.tenant_id:
            self.events.append((msg.subject, env))

    def of(self, etype: str, request_id: str) -> list[tuple[str, events_pb2.EventEnvelope]]:
        """The distinct events (a relay killed between publishing and noting it publishes
        again under the same id: JetStream drops the copy, a plain subscriber sees it)."""
        found: dict[str, tuple[str, events_pb2.EventEnvelope]] = {}
        for s, e in self.events:
            if e.type == etype and e.approval_changed.request_id == request_id:
                found.setdefault(e.event_id, (s, e))
        return list(found.values())

    async def drained(self, stream: str, durable: str) -> bool:
        """The durable consumer has taken and acknowledged everything in its stream."""
        info = await self.js.consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0


@pytest.fixture
async def bus(stack: Stack) -> AsyncIterator[Any]:
    nc = await nats.connect(stack.nats_url)
    made: list[Bus] = []

    async def make(tenant_id: str) -> Bus:
        b = Bus(nc, tenant_id)
        await nc.subscribe("sb.approval.>", cb=b.on_msg)
        made.append(b)
        return b

    yield make
    await nc.close()


def text(r: Received) -> str:
    return str(r.message.get_body(("plain",)).get_content())


def at_sink(peer: SmtpPeer, tag: str) -> list[Received]:
    return [r for r in peer.received if tag in text(r)]


async def arrived(peer: SmtpPeer, tag: str) -> list[Received]:
    return at_sink(peer, tag)


async def announced(events: Bus, etype: str, request_id: str) -> list[Any]:
    return events.of(etype, request_id)


async def state_of(stub: Stub, office: Office, request_id: str) -> int:
    got = await stub.GetRequest(
        A.GetRequestRequest(request_id=request_id), metadata=office.sups[0].metadata()
    )
    return int(got.state)


async def until_state(stub: Stub, office: Office, request_id: str, state: int) -> None:
    async def there() -> bool:
        return await state_of(stub, office, request_id) == state

    await eventually(there, timeout=30)


async def sends_of(stack: Stack, token: str, draft_id: str, state: str = "") -> list[Any]:
    query = f"?state={state}" if state else ""
    code, body, _ = await call(stack, "GET", f"/api/v1/sends{query}", token=token)
    assert code == 200, body
    return [s for s in body["items"] if s["draft_id"] == draft_id]


async def test_approve_and_send_hands_the_approver_s_words_to_outbound_once(
    stack: Stack, smtp_peer: SmtpPeer, grpc_stubs: tuple[Stub, Compose], bus: Any
) -> None:
    """A trainee's reply on a ticket: she asks for approval (her reply lock goes), the
    approver takes the lock, changes a word and approves and sends; the customer gets
    the approver's word once, the send is the trainee's, the ticket gets the status she
    chose."""
    stub, _compose = grpc_stubs
    office = await make_office(stack, sups=1)
    author, sup = office.trainee, office.sups[0]
    events = await bus(office.tenant.tenant_id)
    tag = uuid.uuid4().hex[:10]
    ticket = await mail_ticket(stack, office.tenant, author.token, f"Refund {tag}")
    draft, _fence = await reply_draft(
        stack, office.tenant, author.token, ticket, body=f"We refund you tomorrow. [{tag}]"
    )
    req = await stub.RequestApproval(
        A.RequestApprovalRequest(
            draft_id=draft["id"], note="please check", status_after=common_pb2.TICKET_STATUS_PENDING
        ),
        metadata=author.metadata(),
    )
    # the approver edits under the ticket's reply lock: a new revision, theirs
    sup_fence = await lock(stack, sup.token, ticket["id"])
    code, seen, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=sup.token)
    assert code == 200 and seen["state"] == "in_approval", seen
    edit = {
        "fence": sup_fence,
        "from_address": office.tenant.address,
        "from_name": "Help",
        "to": seen["current"]["to"],  # (the trainee sees them masked)
        "cc": [],
        "subject": seen["current"]["subject"],
        "body_text": f"We refund you today. [{tag}]",
        "signature_text": "",
        "include_quote": False,
    }
    code, edited, _ = await call(
        stack, "PUT", f"/api/v1/drafts/{draft['id']}", edit, token=sup.token
    )
    assert code == 200, edited
    revision = int(edited["current"]["revision"])
    done = await decide(stub, sup, req, A.VERDICT_APPROVE_AND_SEND, revision=revision)
    assert done.state == A.REQUEST_STATE_APPROVED and done.revision == revision

    [got] = await eventually(lambda: arrived(smtp_peer, tag), timeout=30)
    assert "We refund you today." in text(got) and "tomorrow" not in text(got)
    assert got.rcpt_tos == ["taro@customer.example"]
    await until_state(stub, office, req.id, A.REQUEST_STATE_SENT)
    [item] = await sends_of(stack, sup.token, draft["id"])
    assert item["operator"]["id"] == author.id and item["draft_revision"] == revision
    assert item["message_id"] == got.message_id

    async def resolved_as_chosen() -> bool:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=sup.token)
        return bool(t["status"] == "pending")

    await eventually(resolved_as_chosen, timeout=20)
    # the ticket's audit trail names the approver as who made it go
    [submitted] = await _audit(stack, sup.token, ticket["id"], "send.submitted")
    assert submitted["actor"]["id"] == sup.id
    await eventually(lambda: announced(events, "approval.sent", req.id), timeout=15)

    # the approved event again — redelivered as it is, and replayed under a new id —
    # changes nothing: still one send, one mail
    [(subject, approved)] = [
        (s, e) for s, e in events.of("approval.approved", req.id) if e.approval_changed.send
    ]
    replay = events_pb2.EventEnvelope()
    replay.CopyFrom(approved)
    replay.event_id = str(uuid.uuid4())
    for env in (approved, replay):
        await events.js.publish(
            subject, env.SerializeToString(), headers={"Nats-Msg-Id": str(uuid.uuid4())}
        )
    await eventually(lambda: events.drained("APPROVAL", "outbound__approvals"), timeout=30)
    assert len(await sends_of(stack, sup.token, draft["id"])) == 1
    assert len(at_sink(smtp_peer, tag)) == 1
    assert await state_of(stub, office, req.id) == A.REQUEST_STATE_SENT


def stamp(at: datetime) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(at)
    return t


async def trainee_request(
    stub: Stub, compose: Compose, office: Office, body: str, **fields: Any
) -> tuple[Any, approval_pb2.ApprovalRequest]:
    """A trainee's new mail (no ticket) asking for approval."""
    draft = await new_draft(compose, office, office.trainee, body)
    req = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id, **fields), metadata=office.trainee.metadata()
    )
    return draft, req


async def test_a_scheduled_approval_waits_in_outbound_s_scheduled_list(
    stack: Stack, smtp_peer: SmtpPeer, grpc_stubs: tuple[Stub, Compose], bus: Any
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    sup = office.sups[0]
    tag = uuid.uuid4().hex[:10]
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    draft, req = await trainee_request(
        stub, compose, office, f"See you next week [{tag}]", send_at=stamp(later)
    )
    assert req.send_at.ToDatetime(tzinfo=UTC) == later
    await decide(stub, sup, req, A.VERDICT_APPROVE_AND_SEND)
    await until_state(stub, office, req.id, A.REQUEST_STATE_SENT)
    [item] = await sends_of(stack, sup.token, draft.id, "scheduled")
    assert item["send_at"] == later.isoformat().replace("+00:00", "Z")
    assert item["operator"]["id"] == office.trainee.id
    assert not at_sink(smtp_peer, tag)  # it waits for its time
    # brought forward by a supervisor, it goes, once
    soon = datetime.now(UTC) + timedelta(seconds=1)
    code, out, _ = await call(
        stack,
        "PUT",
        f"/api/v1/sends/{item['id']}/schedule",
        {"send_at": soon.isoformat()},
        token=sup.token,
    )
    assert code == 200, out
    [got] = await eventually(lambda: arrived(smtp_peer, tag), timeout=30)
    assert got.message_id == item["message_id"]


async def _unpublished(stack: Stack, request_id: str) -> list[str]:
    """The subjects of approval's outbox rows about the request not yet published."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_approval"))
    try:
        rows = await conn.fetch(
            "SELECT subject, payload FROM outbox WHERE published_at IS NULL ORDER BY created_at"
        )
    finally:
        await conn.close()
    return [
        r["subject"]
        for r in rows
        if events_pb2.EventEnvelope.FromString(r["payload"]).approval_changed.request_id
        == request_id
    ]


async def test_sigkill_of_approval_right_after_the_decision_still_sends_once(
    stack: Stack,
    infra: Infra,
    smtp_peer: SmtpPeer,
    grpc_stubs: tuple[Stub, Compose],
    bus: Any,
) -> None:
    """The decision commits with its `approval.approved` in approval's outbox; NATS is
    away, so the relay cannot publish it before approval dies. After the restart the
    relay publishes it, outbound hands it over: one mail."""
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    tag = uuid.uuid4().hex[:10]
    draft, req = await trainee_request(stub, compose, office, f"Thanks for waiting [{tag}]")
    await eventually(lambda: _none(_unpublished(stack, req.id)), timeout=15)
    infra.nats.stop()
    try:
        await decide(stub, office.sups[0], req, A.VERDICT_APPROVE_AND_SEND)
        assert await _unpublished(stack, req.id) == [APPROVED_SUBJECT]
        stack.kill("approval", signal.SIGKILL)
    finally:
        await infra.nats.start()
    stack.start_process("approval")
    await stack.wait_healthy(timeout=60)
    await eventually(lambda: arrived(smtp_peer, tag), timeout=60)
    await until_state(stub, office, req.id, A.REQUEST_STATE_SENT)
    events = await bus(office.tenant.tenant_id)
    await eventually(lambda: events.drained("APPROVAL", "outbound__approvals"), timeout=30)
    assert len(at_sink(smtp_peer, tag)) == 1
    assert len(await sends_of(stack, office.sups[0].token, draft.id)) == 1


async def _none(probe: Any) -> bool:
    return not await probe


async def test_a_draft_changed_after_approval_is_not_sent_and_the_request_is_voided(
    stack: Stack, smtp_peer: SmtpPeer, grpc_stubs: tuple[Stub, Compose], bus: Any
) -> None:
    """Outbound is down when the approval is given; the author changes the draft before
    it comes back: the hand-over finds another revision and sends nothing."""
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    tag = uuid.uuid4().hex[:10]
    draft, req = await trainee_request(stub, compose, office, f"Approved words [{tag}]")
    stack.kill("outbound", signal.SIGKILL)
    try:
        await decide(stub, office.sups[0], req, A.VERDICT_APPROVE_AND_SEND)
        await save(compose, office.trainee, draft, f"Changed words [{tag}]")
    finally:
        stack.start_process("outbound")
    await stack.wait_healthy(timeout=60)
    events = await bus(office.tenant.tenant_id)
    await until_state(stub, office, req.id, A.REQUEST_STATE_VOIDED)
    await eventually(lambda: events.drained("APPROVAL", "outbound__approvals"), timeout=30)
    assert await sends_of(stack, office.sups[0].token, draft.id) == []
    assert not at_sink(smtp_peer, tag)
    current = await compose.GetDraft(
        composition_pb2.GetDraftRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert current.state == "open"


async def _move_stage_start(stack: Stack, request_id: str, minutes: int) -> None:
    """Time passes for one request (moved in approval's database: the clock is real)."""
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_approval"))
    try:
        await conn.execute(
            "UPDATE requests SET stage_started_at = stage_started_at - $2::interval WHERE id = $1",
            uuid.UUID(request_id),
            timedelta(minutes=minutes),
        )
    finally:
        await conn.close()


async def _reminded_stages(stack: Stack, request_id: str) -> list[int]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_approval"))
    try:
        rows = await conn.fetch(
            "SELECT stage FROM reminders WHERE request_id = $1 ORDER BY stage",
            uuid.UUID(request_id),
        )
    finally:
        await conn.close()
    return [r["stage"] for r in rows]


async def test_a_stage_past_its_deadline_reminds_once_also_after_a_restart(
    stack: Stack, grpc_stubs: tuple[Stub, Compose], bus: Any
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=3)
    s1, s2, s3 = office.sups
    events = await bus(office.tenant.tenant_id)

    def op(o: Any) -> approval_pb2.Approver:
        return A.Approver(kind=A.Approver.KIND_OPERATOR, id=o.id)

    await stub.CreatePolicy(
        A.ApprovalPolicy(
            name="Three steps",
            stages=[
                A.Stage(approvers=[op(s1)], deadline_minutes=30),
                A.Stage(approvers=[op(s2), A.Approver(kind=A.Approver.KIND_ROLE, id="admin")]),
                A.Stage(approvers=[op(s3)]),
            ],
        ),
        metadata=s1.metadata(),
    )
    _draft, req = await trainee_request(stub, compose, office, "Remind them")
    assert not req.late
    await _move_stage_start(stack, req.id, 31)
    [(_s, env)] = await eventually(
        lambda: announced(events, "approval.reminded", req.id), timeout=20
    )
    p = env.approval_changed
    assert p.stage == 0 and p.deadline_minutes == 30 and p.author.id == office.trainee.id
    assert [(a.kind, a.id) for a in p.approvers] == [("operator", s1.id)]
    assert [(a.kind, a.id) for a in p.next_approvers] == [("operator", s2.id), ("role", "admin")]
    seen = await stub.GetRequest(A.GetRequestRequest(request_id=req.id), metadata=s1.metadata())
    assert seen.late

    # a restart of approval does not remind again: another overdue request is reminded
    # after it (the sweep has looked at both), the first one still once
    stack.kill("approval", signal.SIGKILL)
    stack.start_process("approval")
    await stack.wait_healthy(timeout=60)
    _d2, second = await trainee_request(stub, compose, office, "Remind them too")
    await _move_stage_start(stack, second.id, 31)
    await eventually(lambda: announced(events, "approval.reminded", second.id), timeout=20)
    assert len(events.of("approval.reminded", req.id)) == 1
    assert await _reminded_stages(stack, req.id) == [0]
    # the next stage has no deadline: deciding the first moves on, nothing more reminds
    moved = await decide(stub, s1, seen, A.VERDICT_APPROVE)
    assert moved.stage == 1 and not moved.late
