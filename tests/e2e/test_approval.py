"""Approval before send (issue 17) through the approval gRPC API, on the real stack: a
trainee's draft needs approval and gets it; any change to the approved revision voids
it; two approvers racing on a stage make one decision and one 409 naming the winner;
three stages in order with self-approval refused; send back, revise, resubmit with the
history of both rounds; policies refused field by field with nothing stored; and
outbound's guard: 403 `approval_required` through the API until the exact revision is
approved, then the approved words at the SMTP peer once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import nats
import pytest
from switchboard.v1 import (
    approval_pb2,
    approval_pb2_grpc,
    composition_pb2,
    composition_pb2_grpc,
    events_pb2,
)

from services.devstack.stack import Stack
from tests.e2e.test_reply_locks import Op, add_operators
from tests.helpers import Tenant, api_call, create_tenant, eventually
from tests.smtp_peer import Received, SmtpPeer

pytestmark = pytest.mark.e2e

A = approval_pb2
Stub = approval_pb2_grpc.ApprovalServiceStub


@dataclass
class Office:
    tenant: Tenant
    trainee: Op
    agent: Op
    sups: list[Op]


@pytest.fixture
async def grpc_stubs(
    stack: Stack,
) -> AsyncIterator[tuple[Stub, composition_pb2_grpc.CompositionServiceStub]]:
    ports = stack.config.ports.grpc
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['approval']}") as a,
        grpc.aio.insecure_channel(f"127.0.0.1:{ports['composition']}") as c,
    ):
        yield Stub(a), composition_pb2_grpc.CompositionServiceStub(c)


async def make_office(stack: Stack, sups: int = 2) -> Office:
    tenant = await create_tenant(stack)
    return Office(
        tenant,
        (await add_operators(stack, tenant.tenant_id, 1, ("trainee",), "Trainee"))[0],
        (await add_operators(stack, tenant.tenant_id, 1, ("agent",), "Agent"))[0],
        await add_operators(stack, tenant.tenant_id, sups, ("agent", "supervisor"), "Sup"),
    )


async def new_draft(
    compose: composition_pb2_grpc.CompositionServiceStub, office: Office, author: Op, body: str
) -> composition_pb2.Draft:
    """A new mail (no ticket, so no reply lock) written by `author`."""
    draft = await compose.CreateDraft(
        composition_pb2.CreateDraftRequest(
            inbox_id=office.tenant.inbox_id, kind=composition_pb2.DRAFT_KIND_NEW
        ),
        metadata=author.metadata(),
        timeout=10,
    )
    return await save(compose, author, draft, body)


async def save(
    compose: composition_pb2_grpc.CompositionServiceStub,
    who: Op,
    draft: composition_pb2.Draft,
    body: str,
) -> composition_pb2.Draft:
    cur = draft.current
    saved: composition_pb2.Draft = await compose.SaveDraft(
        composition_pb2.SaveDraftRequest(
            draft_id=draft.id,
            from_address=cur.from_address,
            from_name=cur.from_name,
            to=["customer@example.com"],
            subject="Your order",
            body_text=body,
            signature_text=cur.signature_text,
        ),
        metadata=who.metadata(),
        timeout=10,
    )
    return saved


async def refused(call: object) -> tuple[grpc.StatusCode, str, str]:
    """The code, message and field of a refused call."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    fields = [v for k, v in err.value.trailing_metadata() or () if k == "x-sb-field"]
    return err.value.code(), err.value.details() or "", str(fields[0]) if fields else ""


async def decide(
    stub: Stub,
    who: Op,
    req: approval_pb2.ApprovalRequest,
    verdict: int,
    comment: str = "",
    revision: int | None = None,
) -> approval_pb2.ApprovalRequest:
    out: approval_pb2.ApprovalRequest = await stub.Decide(
        A.DecideRequest(
            request_id=req.id,
            verdict=verdict,  # type: ignore[arg-type]
            comment=comment,
            stage=req.stage,
            revision=req.revision if revision is None else revision,
        ),
        metadata=who.metadata(),
        timeout=10,
    )
    return out


async def test_a_trainee_s_draft_needs_approval_gets_it_and_a_change_voids_it(
    stack: Stack, grpc_stubs: tuple[Stub, composition_pb2_grpc.CompositionServiceStub]
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack)
    draft = await new_draft(compose, office, office.trainee, "Thank you for your order.")

    seen = await stub.Evaluate(
        A.EvaluateRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert seen.needs_approval and list(seen.reasons) == ["no_permission"]
    assert not seen.approved and seen.revision == draft.current.revision
    agent_draft = await new_draft(compose, office, office.agent, "Hello")
    free = await stub.Evaluate(
        A.EvaluateRequest(draft_id=agent_draft.id), metadata=office.agent.metadata()
    )
    assert not free.needs_approval
    asked = await stub.Evaluate(
        A.EvaluateRequest(draft_id=agent_draft.id, requested=True), metadata=office.agent.metadata()
    )
    assert list(asked.reasons) == ["requested"]

    req = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id, note="first reply, please check"),
        metadata=office.trainee.metadata(),
    )
    assert req.state == A.REQUEST_STATE_PENDING and req.stage == 0 and len(req.stages) == 1
    assert req.content_hash == seen.content_hash and req.author.id == office.trainee.id
    # one live request per draft
    code, _, field = await refused(
        stub.RequestApproval(
            A.RequestApprovalRequest(draft_id=draft.id), metadata=office.trainee.metadata()
        )
    )
    assert (code, field) == (grpc.StatusCode.ALREADY_EXISTS, "draft_id")

    # the queue: a supervisor of the inbox sees it, an agent (no `approve`) does not
    queue = await stub.ListQueue(A.ListQueueRequest(), metadata=office.sups[0].metadata())
    assert [r.id for r in queue.requests] == [req.id]
    assert queue.requests[0].note == "first reply, please check"
    assert not (
        await stub.ListQueue(A.ListQueueRequest(), metadata=office.agent.metadata())
    ).requests
    code, _, _ = await refused(decide(stub, office.agent, req, A.VERDICT_APPROVE))
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # while pending its author may not change it, nor may someone who cannot approve;
    # an approver may (a new mail: one who sees its inbox), as a revision of their own. A
    # decision on what the approver saw before is refused; they decide on what is there
    # now, and the request binds that revision
    code, message, _ = await refused(save(compose, office.trainee, draft, "Changed my mind"))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "awaiting approval" in message
    code, message, _ = await refused(save(compose, office.agent, draft, "Let me help"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "awaiting approval" in message
    edited = await save(compose, office.sups[1], draft, "Thank you very much for your order.")
    assert edited.state == "in_approval" and edited.current.saved_by.id == office.sups[1].id
    code, _, field = await refused(decide(stub, office.sups[0], req, A.VERDICT_APPROVE))
    assert (code, field) == (grpc.StatusCode.FAILED_PRECONDITION, "revision")
    done = await decide(
        stub, office.sups[0], req, A.VERDICT_APPROVE, revision=edited.current.revision
    )
    assert done.state == A.REQUEST_STATE_APPROVED and done.revision == edited.current.revision
    assert [d.approver.id for d in done.decisions] == [office.sups[0].id]
    assert done.finished_by.id == office.sups[0].id

    ok = await stub.Evaluate(
        A.EvaluateRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert ok.needs_approval and ok.approved and ok.request_id == req.id
    assert not (
        await stub.ListQueue(A.ListQueueRequest(), metadata=office.sups[1].metadata())
    ).requests

    # any change after approval voids it
    await save(compose, office.trainee, edited, "Thank you very much for your order!!")
    after = await stub.Evaluate(
        A.EvaluateRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert after.needs_approval and not after.approved
    voided = await stub.GetRequest(
        A.GetRequestRequest(request_id=req.id), metadata=office.trainee.metadata()
    )
    assert voided.state == A.REQUEST_STATE_VOIDED
    code, message, _ = await refused(
        decide(stub, office.sups[1], req, A.VERDICT_APPROVE, revision=after.revision)
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "voided" in message

    # another tenant sees nothing of it
    other = await make_office(stack, sups=1)
    code, _, _ = await refused(
        stub.GetRequest(A.GetRequestRequest(request_id=req.id), metadata=other.sups[0].metadata())
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_two_approvers_racing_on_one_stage_make_one_decision_and_one_409(
    stack: Stack, grpc_stubs: tuple[Stub, composition_pb2_grpc.CompositionServiceStub]
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack)
    for _ in range(3):
        draft = await new_draft(compose, office, office.trainee, "Race me")
        req = await stub.RequestApproval(
            A.RequestApprovalRequest(draft_id=draft.id), metadata=office.trainee.metadata()
        )
        results = await asyncio.gather(
            decide(stub, office.sups[0], req, A.VERDICT_APPROVE),
            decide(stub, office.sups[1], req, A.VERDICT_SEND_BACK, "use the polite form"),
            return_exceptions=True,
        )
        wins = [r for r in results if isinstance(r, A.ApprovalRequest)]
        losses = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
        assert len(wins) == 1 and len(losses) == 1, results
        assert losses[0].code() == grpc.StatusCode.FAILED_PRECONDITION
        winner = wins[0].decisions[0].approver.display_name
        assert winner in (losses[0].details() or "")
        final = await stub.GetRequest(
            A.GetRequestRequest(request_id=req.id), metadata=office.trainee.metadata()
        )
        assert len(final.decisions) == 1


async def test_three_stages_in_order_self_approval_refused_and_send_back_then_resubmit(
    stack: Stack, grpc_stubs: tuple[Stub, composition_pb2_grpc.CompositionServiceStub]
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=3)
    s1, s2, s3 = office.sups
    admin_md = s1.metadata()
    nc = await nats.connect(stack.nats_url)
    announced: list[events_pb2.EventEnvelope] = []

    async def on_msg(msg: Any) -> None:
        env = events_pb2.EventEnvelope.FromString(msg.data)
        if env.tenant_id == office.tenant.tenant_id:
            announced.append(env)

    await nc.subscribe("sb.approval.>", cb=on_msg)

    def stage(*approvers: approval_pb2.Approver, deadline_minutes: int = 0) -> approval_pb2.Stage:
        return A.Stage(approvers=list(approvers), deadline_minutes=deadline_minutes)

    def op(o: Op) -> approval_pb2.Approver:
        return A.Approver(kind=A.Approver.KIND_OPERATOR, id=o.id)

    members = A.Approver(kind=A.Approver.KIND_INBOX_MEMBERS)
    # refused field by field, nothing stored
    bad = [
        (A.ApprovalPolicy(name="x", stages=[stage(members)] * 4), "stages"),
        (A.ApprovalPolicy(name="x", stages=[stage(members), stage()]), "stages[1].approvers"),
        (
            A.ApprovalPolicy(
                name="x",
                stages=[
                    stage(
                        A.Approver(
                            kind=A.Approver.KIND_OPERATOR, id="00000000-0000-7000-8000-000000000000"
                        )
                    )
                ],
            ),
            "stages[0].approvers[0].id",
        ),
        (
            A.ApprovalPolicy(
                name="x", stages=[stage(A.Approver(kind=A.Approver.KIND_ROLE, id="boss"))]
            ),
            "stages[0].approvers[0].id",
        ),
    ]
    for policy, field in bad:
        code, _, got = await refused(stub.CreatePolicy(policy, metadata=admin_md))
        assert (code, got) == (grpc.StatusCode.INVALID_ARGUMENT, field)
    listed = await stub.ListPolicies(A.ListPoliciesRequest(), metadata=admin_md)
    assert [p.builtin for p in listed.policies] == [True]
    code, _, _ = await refused(
        stub.CreatePolicy(
            A.ApprovalPolicy(name="x", stages=[stage(members)]), metadata=office.agent.metadata()
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    made = await stub.CreatePolicy(
        A.ApprovalPolicy(
            name="Three steps",
            stages=[
                stage(A.Approver(kind=A.Approver.KIND_ROLE, id="supervisor")),
                stage(op(s2)),
                stage(op(s3), deadline_minutes=30),
            ],
        ),
        metadata=admin_md,
    )
    assert made.version == 1 and [len(s.approvers) for s in made.stages] == [1, 1, 1]

    # a supervisor's own request: self-approval refused
    own = await new_draft(compose, office, s1, "I ask too")
    mine = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=own.id), metadata=s1.metadata()
    )
    code, message, _ = await refused(decide(stub, s1, mine, A.VERDICT_APPROVE))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "own" in message

    draft = await new_draft(compose, office, office.trainee, "Round one")
    req = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert len(req.stages) == 3
    one = await decide(stub, s1, req, A.VERDICT_APPROVE)
    assert one.state == A.REQUEST_STATE_PENDING and one.stage == 1
    code, _, _ = await refused(decide(stub, s3, one, A.VERDICT_APPROVE))  # stage 2 is s2's
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # a stale view of stage 1 is told who decided it
    code, message, _ = await refused(decide(stub, s2, req, A.VERDICT_APPROVE))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and s1.name in message
    code, _, field = await refused(decide(stub, s2, one, A.VERDICT_SEND_BACK, "  "))
    assert (code, field) == (grpc.StatusCode.INVALID_ARGUMENT, "comment")
    back = await decide(stub, s2, one, A.VERDICT_SEND_BACK, "敬語を直してください")
    assert back.state == A.REQUEST_STATE_SENT_BACK and back.finished_by.id == s2.id
    code, message, _ = await refused(decide(stub, s3, back, A.VERDICT_APPROVE))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "sent back by " + s2.name in message

    # revise and resubmit: a new round; the history lists both
    revised = await save(compose, office.trainee, draft, "Round two")
    again = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert again.id != req.id and again.revision == revised.current.revision
    again = await decide(stub, s1, again, A.VERDICT_APPROVE)
    code, _, field = await refused(decide(stub, s2, again, A.VERDICT_APPROVE_AND_SEND))
    assert (code, field) == (grpc.StatusCode.FAILED_PRECONDITION, "verdict")
    again = await decide(stub, s2, again, A.VERDICT_APPROVE)
    assert again.stage == 2
    queue = await stub.ListQueue(A.ListQueueRequest(), metadata=s3.metadata())
    assert again.id in [r.id for r in queue.requests]
    again = await decide(stub, s3, again, A.VERDICT_APPROVE)
    assert again.state == A.REQUEST_STATE_APPROVED
    assert [d.stage for d in again.decisions] == [0, 1, 2]
    history = await stub.ListHistory(
        A.ListHistoryRequest(draft_id=draft.id), metadata=office.trainee.metadata()
    )
    assert [(r.id, r.state) for r in history.requests] == [
        (req.id, A.REQUEST_STATE_SENT_BACK),
        (again.id, A.REQUEST_STATE_APPROVED),
    ]
    assert history.requests[0].decisions[-1].comment == "敬語を直してください"

    # cancelling: by its author; a second cancel names who cancelled
    cancelled = await stub.CancelRequest(
        A.CancelRequestRequest(request_id=again.id), metadata=office.trainee.metadata()
    )
    assert cancelled.state == A.REQUEST_STATE_CANCELLED
    code, message, _ = await refused(
        stub.CancelRequest(
            A.CancelRequestRequest(request_id=again.id), metadata=office.trainee.metadata()
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and office.trainee.name in message

    # every step announced through the outbox, with who and which stage, for reports
    def of_draft() -> list[tuple[str, str, int, str, bool]]:
        return [
            (
                e.type,
                e.approval_changed.request_id,
                e.approval_changed.stage,
                e.approval_changed.approver.id,
                e.approval_changed.final,
            )
            for e in announced
            if e.approval_changed.draft_id == draft.id
        ]

    expected = [
        ("approval.requested", req.id, 0, "", False),
        ("approval.approved", req.id, 0, s1.id, False),
        ("approval.sent_back", req.id, 1, s2.id, False),
        ("approval.requested", again.id, 0, "", False),
        ("approval.approved", again.id, 0, s1.id, False),
        ("approval.approved", again.id, 1, s2.id, False),
        ("approval.approved", again.id, 2, s3.id, True),
        ("approval.cancelled", again.id, 2, office.trainee.id, False),
    ]

    async def all_announced() -> bool:
        return len(of_draft()) >= len(expected)

    await eventually(all_announced, timeout=15)
    assert sorted(of_draft()) == sorted(expected)
    assert all(
        e.approval_changed.author.id == office.trainee.id
        for e in announced
        if e.approval_changed.draft_id == draft.id
    )
    await nc.close()


async def test_outbound_refuses_an_unapproved_send_and_sends_the_approved_revision_once(
    stack: Stack,
    smtp_peer: SmtpPeer,
    grpc_stubs: tuple[Stub, composition_pb2_grpc.CompositionServiceStub],
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    trainee, sup = office.trainee, office.sups[0]
    draft = await new_draft(compose, office, trainee, "We will refund you tomorrow.")
    path = f"/api/v1/drafts/{draft.id}/send"

    code, body = await api_call(stack, trainee.token, "POST", path, {})
    assert code == 403 and body["error"]["code"] == "approval_required", body
    req = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id), metadata=trainee.metadata()
    )
    code, body = await api_call(stack, trainee.token, "POST", path, {})
    # pending: the draft is held for approval, not sent
    assert code == 409 and "in_approval" in body["error"]["message"], body
    await decide(stub, sup, req, A.VERDICT_APPROVE)
    # approved, then changed: void, refused again
    today = f"We will refund you today ({uuid.uuid4().hex[:8]})."
    changed = await save(compose, trainee, draft, today)
    code, body = await api_call(stack, trainee.token, "POST", path, {})
    assert code == 403 and body["error"]["code"] == "approval_required"
    again = await stub.RequestApproval(
        A.RequestApprovalRequest(draft_id=draft.id), metadata=trainee.metadata()
    )
    assert again.revision == changed.current.revision
    await decide(stub, sup, again, A.VERDICT_APPROVE)

    code, item = await api_call(stack, trainee.token, "POST", path, {})
    assert code == 201, item
    code, twice = await api_call(stack, trainee.token, "POST", path, {})
    assert code in (201, 409) and (code == 409 or twice["id"] == item["id"])

    def text(r: Received) -> str:
        return str(r.message.get_body(("plain",)).get_content())

    async def delivered() -> list[Received]:
        return [r for r in smtp_peer.received if today in text(r)]

    [got] = await eventually(delivered, timeout=30)
    # (the trainee sees the Message-ID masked like an address; the supervisor does not)
    code, seen = await api_call(stack, sup.token, "GET", f"/api/v1/sends/{item['id']}")
    assert code == 200 and got.message_id == seen["message_id"]
    # an agent's own mail needs nothing
    free = await new_draft(compose, office, office.agent, "Hello")
    code, item2 = await api_call(
        stack, office.agent.token, "POST", f"/api/v1/drafts/{free.id}/send", {}
    )
    assert code == 201, item2
