"""A trainee's reply through approval on a ticket (issue 17), on the real stack: the
trainee takes the reply lock and writes; requesting approval releases the lock, holds
the draft (`in_approval`: their own save is refused, a supervisor holding the lock
saves a revision of their own) and puts the ticket in the "awaiting approval" view,
live; sending back, or cancelling, opens the draft for the trainee again and takes the
ticket out of the view; each step is on the ticket's timeline with the note or comment;
and approval's events delivered again change nothing twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import nats
import pytest
from switchboard.v1 import composition_pb2, composition_pb2_grpc, events_pb2

from services.devstack.stack import Stack
from services.runtime import events
from tests.e2e.test_approval import A, Office, Stub, decide, grpc_stubs, make_office, refused
from tests.e2e.test_reply_locks import Live, Op, Team, lock_path, new_ticket
from tests.helpers import api_call, eventually, published

pytestmark = pytest.mark.e2e
__all__ = ["grpc_stubs"]  # the fixture, used by name

Compose = composition_pb2_grpc.CompositionServiceStub


async def take_lock(stack: Stack, who: Op, ticket_id: str) -> int:
    code, lock = await api_call(stack, who.token, "POST", lock_path(ticket_id))
    assert code == 200 and lock["holder"]["id"] == who.id, lock
    return int(lock["fence"])


async def let_go(stack: Stack, who: Op, ticket_id: str, fence: int) -> None:
    code, body = await api_call(stack, who.token, "DELETE", f"{lock_path(ticket_id)}?fence={fence}")
    assert (code, body) == (200, {"released": True})


async def write(
    compose: Compose, who: Op, draft: composition_pb2.Draft, body: str, fence: int
) -> composition_pb2.Draft:
    cur = draft.current
    saved: composition_pb2.Draft = await compose.SaveDraft(
        composition_pb2.SaveDraftRequest(
            draft_id=draft.id,
            fence=fence,
            from_address=cur.from_address,
            from_name=cur.from_name,
            to=list(cur.to),
            subject=cur.subject,
            body_text=body,
            signature_text=cur.signature_text,
        ),
        metadata=who.metadata(),
        timeout=10,
    )
    return saved


async def get_draft(compose: Compose, who: Op, draft_id: str) -> composition_pb2.Draft:
    found: composition_pb2.Draft = await compose.GetDraft(
        composition_pb2.GetDraftRequest(draft_id=draft_id), metadata=who.metadata(), timeout=10
    )
    return found


async def awaiting(stack: Stack, who: Op, ticket_id: str) -> bool:
    """Whether the ticket is in the awaiting_approval view, which its own detail agrees
    with. The two are read one after the other: an event applied between the reads makes
    them differ for a moment, so they are read again until they agree."""

    async def agreed() -> tuple[bool] | None:
        code, page = await api_call(
            stack, who.token, "GET", "/api/v1/tickets?view=awaiting_approval&limit=100"
        )
        assert code == 200, page
        listed = ticket_id in [t["id"] for t in page["items"]]
        code, detail = await api_call(stack, who.token, "GET", f"/api/v1/tickets/{ticket_id}")
        assert code == 200, detail
        return (listed,) if detail["awaiting_approval"] is listed else None

    [listed] = await eventually(agreed, timeout=15)
    return listed


async def timeline(stack: Stack, who: Op, ticket_id: str) -> list[tuple[str, str | None]]:
    """The ticket's approval entries, oldest first: (action, note or comment)."""
    code, page = await api_call(
        stack, who.token, "GET", f"/api/v1/tickets/{ticket_id}/audit?limit=100"
    )
    assert code == 200, page
    return sorted(
        ((e["at"], e["action"], e["comment"]) for e in page["items"] if "approval" in e["action"]),
    )  # type: ignore[return-value]


def entries(rows: list[Any]) -> list[tuple[str, str | None]]:
    return [(action, comment) for _, action, comment in rows]


class Trainee:
    """The office, a customer's ticket and the trainee's reply to it."""

    def __init__(self, stack: Stack, office: Office, compose: Compose, stub: Stub) -> None:
        self.stack, self.office, self.compose, self.stub = stack, office, compose, stub
        self.me = office.trainee
        self.sup = office.sups[0]

    async def start(self) -> composition_pb2.Draft:
        o = self.office
        self.ticket = await new_ticket(self.stack, Team(o.tenant, [o.agent], self.sup))
        self.tid = self.ticket["id"]
        self.fence = await take_lock(self.stack, self.me, self.tid)
        draft = await self.compose.CreateDraft(
            composition_pb2.CreateDraftRequest(
                ticket_id=self.tid, kind=composition_pb2.DRAFT_KIND_REPLY, fence=self.fence
            ),
            metadata=self.me.metadata(),
            timeout=10,
        )
        return await write(self.compose, self.me, draft, "Thank you for waiting.", self.fence)

    async def request(self, draft: composition_pb2.Draft, note: str) -> Any:
        return await self.stub.RequestApproval(
            A.RequestApprovalRequest(draft_id=draft.id, note=note), metadata=self.me.metadata()
        )


@pytest.fixture
async def announced(stack: Stack) -> AsyncIterator[list[events_pb2.EventEnvelope]]:
    """Every approval.* event published meanwhile (core NATS, as they go by)."""
    async with published(stack, "sb.approval.>") as got:
        yield got


async def test_a_trainee_s_reply_waits_for_approval_without_holding_the_ticket(
    stack: Stack, grpc_stubs: tuple[Stub, Compose]
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    t = Trainee(stack, office, compose, stub)
    trainee, sup = t.me, t.sup
    draft = await t.start()
    tid = t.tid
    # the trainee may not send it alone
    code, body = await api_call(
        stack, trainee.token, "POST", f"/api/v1/drafts/{draft.id}/send", {"fence": t.fence}
    )
    assert code == 403 and body["error"]["code"] == "approval_required", body

    async with Live(stack, sup) as live:
        req = await t.request(draft, "初めての返信です。敬語を見てください")

        # the lock is released, the draft held, the ticket awaiting approval — live too
        code, body = await api_call(stack, trainee.token, "GET", lock_path(tid))
        assert code == 404, body
        held = await get_draft(compose, trainee, draft.id)
        assert held.state == "in_approval" and held.approval_request_id == req.id

        async def pushed() -> bool:
            return any(
                e["type"] == "ticket.updated"
                and e["ticket"]["id"] == tid
                and e["ticket"]["awaiting_approval"]
                for e in live.events
            )

        await eventually(pushed, timeout=15)
    assert await awaiting(stack, sup, tid)

    # the trainee's own save is refused while it is pending, even holding the lock
    fence = await take_lock(stack, trainee, tid)
    code, message, field = await refused(write(compose, trainee, held, "Sorry!", fence))
    assert (code, field) == (grpc.StatusCode.FAILED_PRECONDITION, "draft_id")
    assert "awaiting approval" in message
    code, message, _ = await refused(
        compose.DiscardDraft(
            composition_pb2.DiscardDraftRequest(draft_id=draft.id, fence=fence),
            metadata=trainee.metadata(),
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "awaiting approval" in message
    await let_go(stack, trainee, tid, fence)

    # the supervisor takes the lock and saves a revision of their own
    sup_fence = await take_lock(stack, sup, tid)
    edited = await write(compose, sup, held, "Thank you very much for waiting.", sup_fence)
    assert edited.state == "in_approval"
    assert edited.current.saved_by.id == sup.id
    assert [r.saved_by.id for r in edited.revisions][-2:] == [trainee.id, sup.id]
    await let_go(stack, sup, tid, sup_fence)

    # sent back: open for the trainee again, no longer awaiting approval
    queue = await stub.ListQueue(A.ListQueueRequest(), metadata=sup.metadata())
    [mine] = [r for r in queue.requests if r.id == req.id]
    await decide(
        stub,
        sup,
        mine,
        A.VERDICT_SEND_BACK,
        "もう少し丁寧に",
        revision=edited.current.revision,
    )
    assert (await get_draft(compose, trainee, draft.id)).state == "open"

    async def not_awaiting() -> bool:
        return not await awaiting(stack, sup, tid)

    await eventually(not_awaiting, timeout=15)
    fence = await take_lock(stack, trainee, tid)
    revised = await write(compose, trainee, edited, "Thank you very much for waiting!", fence)
    assert revised.state == "open" and revised.current.saved_by.id == trainee.id

    # a second round, cancelled by the trainee: likewise
    again = await t.request(revised, "直しました")
    assert (await get_draft(compose, trainee, draft.id)).state == "in_approval"

    async def is_awaiting() -> bool:
        return await awaiting(stack, sup, tid)

    await eventually(is_awaiting, timeout=15)
    await stub.CancelRequest(
        A.CancelRequestRequest(request_id=again.id), metadata=trainee.metadata()
    )
    assert (await get_draft(compose, trainee, draft.id)).state == "open"
    await eventually(not_awaiting, timeout=15)

    # every step on the ticket's timeline, with the note and the comment
    expected = [
        ("approval.requested", "初めての返信です。敬語を見てください"),
        ("approval.sent_back", "もう少し丁寧に"),
        ("approval.requested", "直しました"),
        ("approval.cancelled", None),
    ]

    async def all_entries() -> bool:
        return len(entries(await timeline(stack, sup, tid))) >= len(expected)

    await eventually(all_entries, timeout=15)
    assert entries(await timeline(stack, sup, tid)) == expected


async def drained(stack: Stack, durable: str) -> bool:
    """The consumer has every approval event delivered and acknowledged."""
    nc = await nats.connect(stack.nats_url)
    try:
        info = await nc.jetstream().consumer_info(events.APPROVAL.name, durable)
    finally:
        await nc.close()
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_approval_events_delivered_again_change_nothing_twice(
    stack: Stack,
    grpc_stubs: tuple[Stub, Compose],
    announced: list[events_pb2.EventEnvelope],
) -> None:
    stub, compose = grpc_stubs
    office = await make_office(stack, sups=1)
    t = Trainee(stack, office, compose, stub)
    draft = await t.start()
    first = await t.request(draft, "one")
    await decide(stub, t.sup, first, A.VERDICT_SEND_BACK, "two")
    second = await t.request(await get_draft(compose, t.me, draft.id), "three")
    await stub.CancelRequest(A.CancelRequestRequest(request_id=second.id), metadata=t.me.metadata())
    mine = {first.id, second.id}

    async def four() -> list[events_pb2.EventEnvelope] | None:
        found = [e for e in announced if e.approval_changed.request_id in mine]
        return found if len(found) >= 4 else None

    envs = await eventually(four, timeout=15)
    assert [e.type for e in envs] == [
        "approval.requested",
        "approval.sent_back",
        "approval.requested",
        "approval.cancelled",
    ]
    for durable in ("tickets__approvals", "composition__approvals"):
        await eventually(lambda d=durable: drained(stack, d), timeout=15)  # type: ignore[misc]
    before = (
        await timeline(stack, t.sup, t.tid),
        await awaiting(stack, t.sup, t.tid),
        await get_draft(compose, t.me, draft.id),
    )
    assert before[1] is False and before[2].state == "open"

    # the same events again (a redelivery: new message ids, the same event ids), and a
    # late `requested` of the first round under an event id never seen
    nc = await nats.connect(stack.nats_url)
    js = nc.jetstream()
    late = events_pb2.EventEnvelope()
    late.CopyFrom(envs[0])
    late.event_id = str(uuid.uuid4())
    for env in [*envs, late]:
        await js.publish(
            events.subject_of(env),
            env.SerializeToString(),
            headers={"Nats-Msg-Id": f"again-{uuid.uuid4()}"},
        )
    await nc.close()
    for durable in ("tickets__approvals", "composition__approvals"):
        await eventually(lambda d=durable: drained(stack, d), timeout=15)  # type: ignore[misc]

    after_draft = await get_draft(compose, t.me, draft.id)
    assert (
        after_draft.state == "open" and after_draft.current.revision == before[2].current.revision
    )
    assert await awaiting(stack, t.sup, t.tid) is False
    rows = await timeline(stack, t.sup, t.tid)

    # the redelivered four added nothing; the late one is one more entry, nothing else
    # (stamped with the time the event says, so it sorts among the first round's)
    def key(e: tuple[str, str | None]) -> tuple[str, str]:
        return e[0], e[1] or ""

    assert len(rows) == len(before[0]) + 1
    assert sorted(entries(rows), key=key) == sorted(
        [*entries(before[0]), ("approval.requested", "one")], key=key
    )

    # the events alone do the work when approval's own call did not come: a third round,
    # then its end announced (and only announced) — the draft opens from the event
    third = await t.request(after_draft, "four")
    assert (await get_draft(compose, t.me, draft.id)).state == "in_approval"
    ended = events_pb2.EventEnvelope()
    ended.CopyFrom(envs[3])
    ended.event_id = str(uuid.uuid4())
    ended.approval_changed.request_id = third.id
    nc = await nats.connect(stack.nats_url)
    await nc.jetstream().publish(
        events.subject_of(ended), ended.SerializeToString(), headers={"Nats-Msg-Id": ended.event_id}
    )
    await nc.close()

    async def opened() -> bool:
        return (await get_draft(compose, t.me, draft.id)).state == "open"

    await eventually(opened, timeout=15)
