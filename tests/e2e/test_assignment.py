"""Assignment (issue 18, RTE-2) through the real processes: an inbox set to least loaded,
operators' capacities and presence through the API, mails by SMTP; the assignments
stay within capacity, an offline operator receives nothing, coming online or freeing
capacity pulls the backlog, two routing replicas assign each ticket once."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from services.devstack.stack import ROOT, Stack
from tests.helpers import Tenant, api_call, create_tenant, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e

PASSWORD = "assign-secret-42"


@dataclass(frozen=True)
class Team:
    tenant: Tenant
    admin: str  # token
    ops: dict[str, tuple[str, str]]  # name → (operator id, token)


async def _team(stack: Stack, names: tuple[str, ...]) -> Team:
    """A tenant of its own with an administrator and these operators, members of its inbox."""
    tenant = await create_tenant(stack)
    admin = await login(stack, tenant.login, tenant.password)
    ops: dict[str, tuple[str, str]] = {}
    for name in names:
        who = f"{name}-{uuid.uuid4().hex[:6]}@ops.example"
        code, made = await api_call(
            stack,
            admin,
            "POST",
            "/api/v1/operators",
            {
                "login": who,
                "display_name": name,
                "inbox_ids": [tenant.inbox_id],
                "temporary_password": "temporary-password-1",
            },
        )
        assert code == 201, made
        token = await login(stack, who, "temporary-password-1")
        code, body = await api_call(
            stack,
            token,
            "POST",
            "/api/v1/me/password",
            {"current_password": "temporary-password-1", "new_password": PASSWORD},
        )
        assert code == 200, body
        ops[name] = (made["operator"]["id"], await login(stack, who, PASSWORD))
    return Team(tenant, admin, ops)


async def _capacity(stack: Stack, team: Team, name: str, capacity: int | None) -> None:
    op_id = team.ops[name][0]
    body = {"capacity": capacity, "languages": ["ja"]}
    code, saved = await api_call(
        stack, team.admin, "PUT", f"/api/v1/operators/{op_id}/routing", body
    )
    assert code == 200 and saved["capacity"] == capacity, saved


async def _presence(stack: Stack, team: Team, name: str, status: str) -> None:
    code, body = await api_call(
        stack, team.ops[name][1], "PUT", "/api/v1/me/presence", {"status": status}
    )
    assert code == 200 and body["effective"] == status, body


async def _strategy(stack: Stack, team: Team, **fields: Any) -> dict[str, Any]:
    path = f"/api/v1/inboxes/{team.tenant.inbox_id}/assignment"
    code, body = await api_call(stack, team.admin, "PUT", path, fields)
    assert code == 200, body
    return dict(body)


def _mail(stack: Stack, team: Team, subject: str) -> None:
    to = team.tenant.address
    send(stack.smtp_port, make_mail(subject, to=to), [to])


async def _tickets(stack: Stack, team: Team, tag: str) -> list[dict[str, Any]]:
    code, body = await api_call(stack, team.admin, "GET", "/api/v1/tickets?limit=200&status=open")
    assert code == 200, body
    return [t for t in body["items"] if tag in t["subject"]]


def _by_operator(team: Team, tickets: list[dict[str, Any]]) -> Counter[str]:
    names = {op_id: name for name, (op_id, _) in team.ops.items()}
    return Counter(names[t["assignee"]["id"]] if t["assignee"] else "-" for t in tickets)


async def _loads(stack: Stack, team: Team) -> dict[str, int]:
    code, body = await api_call(stack, team.admin, "GET", "/api/v1/presence")
    assert code == 200, body
    names = {op_id: name for name, (op_id, _) in team.ops.items()}
    return {
        names[p["operator_id"]]: p["load"] for p in body["operators"] if p["operator_id"] in names
    }


async def test_least_loaded_assigns_within_capacity_and_the_backlog_moves(stack: Stack) -> None:
    team = await _team(stack, ("ann", "bob", "cat", "dan", "eve"))
    for name, capacity in (("ann", 2), ("bob", 1), ("cat", 0), ("dan", 7), ("eve", None)):
        await _capacity(stack, team, name, capacity)
    for name in ("ann", "bob", "cat"):
        await _presence(stack, team, name, "online")
    await _presence(stack, team, "eve", "offline")  # no limit, but offline
    saved = await _strategy(stack, team, strategy="least_loaded")
    assert saved["strategy"] == "least_loaded" and saved["capacity"] is None

    tag = f"assign{uuid.uuid4().hex[:8]}"
    for i in range(10):
        await asyncio.to_thread(_mail, stack, team, f"{tag} question {i}")

    async def ten_with_three_assigned() -> Counter[str] | None:
        tickets = await _tickets(stack, team, tag)
        given = _by_operator(team, tickets)
        return given if len(tickets) == 10 and given["-"] == 7 else None

    given = await eventually(ten_with_three_assigned, timeout=60, every=0.3)
    assert given == {"ann": 2, "bob": 1, "-": 7}

    # dan comes online: the seven waiting go to him (his capacity), none to eve (offline)
    await _presence(stack, team, "dan", "online")

    async def backlog_moved() -> Counter[str] | None:
        given = _by_operator(team, await _tickets(stack, team, tag))
        return given if given["-"] == 0 else None

    given = await eventually(backlog_moved, timeout=30, every=0.3)
    assert given == {"ann": 2, "bob": 1, "dan": 7}
    assert await _loads(stack, team) == {"ann": 2, "bob": 1, "cat": 0, "dan": 7, "eve": 0}

    # everyone is full: a new mail waits; ann resolving one of hers frees room for it
    await asyncio.to_thread(_mail, stack, team, f"{tag} later")
    later = await eventually(lambda: _one(stack, team, f"{tag} later"), timeout=30, every=0.3)
    assert later["assignee"] is None
    ann_id, ann_token = team.ops["ann"]
    mine = [
        t for t in await _tickets(stack, team, tag) if (t["assignee"] or {}).get("id") == ann_id
    ]
    code, body = await api_call(
        stack, ann_token, "PATCH", f"/api/v1/tickets/{mine[0]['id']}", {"status": "resolved"}
    )
    assert code == 200, body

    async def later_assigned() -> dict[str, Any] | None:
        t = await _one(stack, team, f"{tag} later")
        return t if t and t["assignee"] else None

    assigned = await eventually(later_assigned, timeout=30, every=0.3)
    assert assigned["assignee"]["id"] == ann_id
    code, audit = await api_call(
        stack, team.admin, "GET", f"/api/v1/tickets/{assigned['id']}/audit"
    )
    assert code == 200, audit
    entries = [e for e in audit["items"] if any(c["field"] == "assignee" for c in e["changes"])]
    assert [(e["actor"]["id"], e["comment"]) for e in entries] == [
        ("routing", "assigned by least loaded")
    ]


async def _one(stack: Stack, team: Team, subject: str) -> dict[str, Any] | None:
    found = [t for t in await _tickets(stack, team, subject.split()[0]) if t["subject"] == subject]
    return found[0] if found else None


async def test_two_routing_replicas_assign_each_ticket_once_within_capacity(stack: Stack) -> None:
    from services.devstack.infra import free_port, spawn

    env = stack.env_for("routing")
    env.update(SB_GRPC_PORT=str(free_port()), SB_METRICS_PORT=str(free_port()))
    second = spawn(
        [sys.executable, "-m", "services.routing"],
        env=env,
        log=open(stack.log_path("routing-2"), "ab"),  # noqa: ASYNC230 - lives with the process
        cwd=ROOT,
    )
    try:
        names = ("op1", "op2", "op3", "op4")
        team = await _team(stack, names)
        for name in names:
            await _capacity(stack, team, name, 8)
            await _presence(stack, team, name, "online")
        await _strategy(stack, team, strategy="round_robin")
        tag = f"twice{uuid.uuid4().hex[:8]}"

        def burst(start: int) -> None:
            for i in range(start, start + 15):
                _mail(stack, team, f"{tag} mail {i}")

        await asyncio.gather(*(asyncio.to_thread(burst, k * 15) for k in range(4)))

        async def settled() -> list[dict[str, Any]] | None:
            tickets = await _tickets(stack, team, tag)
            given = _by_operator(team, tickets)
            return tickets if len(tickets) == 60 and given["-"] == 60 - 32 else None

        tickets = await eventually(settled, timeout=120, every=0.5)
        assert _by_operator(team, tickets) == {"op1": 8, "op2": 8, "op3": 8, "op4": 8, "-": 28}
        assert await _loads(stack, team) == {n: 8 for n in names}
        for t in (t for t in tickets if t["assignee"]):
            code, audit = await api_call(
                stack, team.admin, "GET", f"/api/v1/tickets/{t['id']}/audit"
            )
            assert code == 200, audit
            changes = [c for e in audit["items"] for c in e["changes"] if c["field"] == "assignee"]
            assert len(changes) == 1, (t["id"], audit)
    finally:
        if second.poll() is None:
            second.send_signal(signal.SIGTERM)
            second.wait(20)


async def test_bad_settings_are_refused_naming_the_field_and_nothing_is_saved(
    stack: Stack,
) -> None:
    team = await _team(stack, ("ann",))
    ann_id, ann_token = team.ops["ann"]
    inbox = f"/api/v1/inboxes/{team.tenant.inbox_id}/assignment"
    routing = f"/api/v1/operators/{ann_id}/routing"
    refused = [
        (inbox, {"strategy": "least_loaded", "capacity": -1}, "capacity"),
        (inbox, {"strategy": "fastest"}, "strategy"),
        (
            inbox,
            {"strategy": "least_loaded", "channel_capacity": {"mail": -2}},
            "channel_capacity",
        ),
        (
            inbox,
            {"strategy": "least_loaded", "tiers": [{"operator_ids": [str(uuid.uuid4())]}]},
            "tiers[0].operator_ids",
        ),
        (
            inbox,
            {
                "strategy": "least_loaded",
                "tiers": [{"operator_ids": [ann_id]}, {"operator_ids": [ann_id]}],
            },
            "tiers[1].operator_ids",
        ),
        (routing, {"capacity": -1}, "capacity"),
        (routing, {"skills": [{"name": "返品", "level": 9}]}, "skills.level"),
        (
            routing,
            {"skills": [{"name": "返品", "level": 1}, {"name": "返品", "level": 2}]},
            "skills.name",
        ),
        (routing, {"languages": ["japanese"]}, "languages"),
    ]
    for path, body, field in refused:
        code, answer = await api_call(stack, team.admin, "PUT", path, body)
        assert code == 400, (body, answer)
        assert answer["error"]["field"] == field, (body, answer)
    code, policy = await api_call(stack, team.admin, "GET", inbox)
    assert code == 200 and policy["strategy"] == "manual" and policy["updated_at"] is None
    code, profile = await api_call(stack, team.admin, "GET", routing)
    assert code == 200 and profile["capacity"] is None and profile["skills"] == []

    code, answer = await api_call(
        stack, ann_token, "PUT", "/api/v1/me/presence", {"status": "busy"}
    )
    assert code == 400 and answer["error"]["field"] == "status"
    code, mine = await api_call(stack, ann_token, "GET", "/api/v1/me/presence")
    assert code == 200 and mine["status"] == "offline" and mine["updated_at"] is None

    # an agent configures nothing; another tenant's inbox and operator are not found
    code, answer = await api_call(stack, ann_token, "PUT", inbox, {"strategy": "round_robin"})
    assert code == 403, answer
    code, answer = await api_call(stack, ann_token, "GET", routing)
    assert code == 403, answer
    other = await _team(stack, ())
    code, answer = await api_call(stack, other.admin, "GET", inbox)
    assert code == 404, answer
    code, answer = await api_call(stack, other.admin, "PUT", routing, {"capacity": 1})
    assert code == 404, answer


async def test_a_ticket_handed_to_the_strategy_is_assigned_in_a_manual_inbox(stack: Stack) -> None:
    """The flag a rule's "hand to the inbox's assignment strategy" leaves on the ticket
    (set here through the API, as tickets keeps it) makes the assigner take the ticket
    although the inbox's strategy is manual; the ticket beside it waits for a person."""
    team = await _team(stack, ("ann",))
    await _capacity(stack, team, "ann", 2)
    await _presence(stack, team, "ann", "online")
    tag = f"handed{uuid.uuid4().hex[:8]}"
    for subject in (f"{tag} plain", f"{tag} handed"):
        await asyncio.to_thread(_mail, stack, team, subject)
    plain = await eventually(lambda: _one(stack, team, f"{tag} plain"), timeout=30, every=0.3)
    handed = await eventually(lambda: _one(stack, team, f"{tag} handed"), timeout=30, every=0.3)
    code, body = await api_call(
        stack,
        team.admin,
        "PATCH",
        f"/api/v1/tickets/{handed['id']}",
        {"add_flags": ["assign_by_strategy"]},
    )
    assert code == 200, body

    async def assigned() -> dict[str, Any] | None:
        t = await _one(stack, team, f"{tag} handed")
        return t if t and t["assignee"] else None

    ticket = await eventually(assigned, timeout=30, every=0.3)
    assert ticket["assignee"]["id"] == team.ops["ann"][0]
    still = await _one(stack, team, f"{tag} plain")
    assert still is not None and still["id"] == plain["id"] and still["assignee"] is None


async def test_tickets_assigns_for_the_assigner_only_if_still_unassigned(stack: Stack) -> None:
    """tickets.AssignTicket, the precondition the assigner relies on: a ticket someone was
    given meanwhile is not given again (the answer says so, with the ticket as it is); an
    operator's call is refused."""
    import grpc
    from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

    from services.runtime.identity import Identity

    team = await _team(stack, ("ann", "bob"))
    tag = f"precond{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(_mail, stack, team, f"{tag} one")
    ticket = await eventually(lambda: _one(stack, team, f"{tag} one"), timeout=30, every=0.3)
    (ann, _), (bob, _) = team.ops["ann"], team.ops["bob"]
    routing = Identity(tenant_id=team.tenant.tenant_id, display_name="routing").metadata()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['tickets']}") as ch:
        stub = tickets_pb2_grpc.TicketsServiceStub(ch)

        def ask(assignee: str, expected: str) -> tickets_pb2.AssignTicketRequest:
            return tickets_pb2.AssignTicketRequest(
                ticket_id=ticket["id"], assignee_id=assignee, expected_assignee_id=expected
            )

        first = await stub.AssignTicket(ask(ann, ""), metadata=routing, timeout=10)
        assert first.assigned and first.ticket.assignee.id == ann
        again = await stub.AssignTicket(ask(bob, ""), metadata=routing, timeout=10)
        assert not again.assigned and again.ticket.assignee.id == ann
        back = await stub.AssignTicket(ask("", ann), metadata=routing, timeout=10)
        assert back.assigned and not back.ticket.HasField("assignee")
        operator = Identity(
            tenant_id=team.tenant.tenant_id, operator_id=ann, inboxes=None, display_name="ann"
        ).metadata()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AssignTicket(ask(ann, ""), metadata=operator, timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    code, audit = await api_call(stack, team.admin, "GET", f"/api/v1/tickets/{ticket['id']}/audit")
    assert code == 200, audit
    changes = [c for e in audit["items"] for c in e["changes"] if c["field"] == "assignee"]
    assert len(changes) == 2  # given to ann, taken back; bob's never happened


async def test_tickets_assigns_a_batch_each_under_its_own_precondition(stack: Stack) -> None:
    """tickets.AssignTickets, the assigner's batch: in one call, a waiting ticket is given,
    one someone holds is not (the answer shows its holder), an unknown ticket has no
    answer ticket; a ticket twice or an operator's call is refused and changes nothing."""
    import grpc
    from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

    from services.runtime.identity import Identity

    team = await _team(stack, ("ann", "bob"))
    tag = f"batch{uuid.uuid4().hex[:8]}"
    for name in ("one", "two"):
        await asyncio.to_thread(_mail, stack, team, f"{tag} {name}")
    one = await eventually(lambda: _one(stack, team, f"{tag} one"), timeout=30, every=0.3)
    two = await eventually(lambda: _one(stack, team, f"{tag} two"), timeout=30, every=0.3)
    (ann, _), (bob, _) = team.ops["ann"], team.ops["bob"]
    code, body = await api_call(
        stack, team.admin, "PATCH", f"/api/v1/tickets/{two['id']}", {"assignee_id": bob}
    )
    assert code == 200, body
    routing = Identity(tenant_id=team.tenant.tenant_id, display_name="routing").metadata()

    def item(ticket_id: str, assignee: str) -> tickets_pb2.AssignTicketRequest:
        return tickets_pb2.AssignTicketRequest(
            ticket_id=ticket_id, assignee_id=assignee, comment="assigned by least loaded"
        )

    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['tickets']}") as ch:
        stub = tickets_pb2_grpc.TicketsServiceStub(ch)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            twice = [item(one["id"], ann), item(one["id"], bob)]
            await stub.AssignTickets(
                tickets_pb2.AssignTicketsRequest(items=twice), metadata=routing, timeout=10
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        operator = Identity(
            tenant_id=team.tenant.tenant_id, operator_id=ann, inboxes=None, display_name="ann"
        ).metadata()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.AssignTickets(
                tickets_pb2.AssignTicketsRequest(items=[item(one["id"], ann)]),
                metadata=operator,
                timeout=10,
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        unknown = str(uuid.uuid4())
        items = [item(one["id"], ann), item(two["id"], ann), item(unknown, ann)]
        answer = await stub.AssignTickets(
            tickets_pb2.AssignTicketsRequest(items=items), metadata=routing, timeout=10
        )
    given, held, missing = answer.results
    assert given.assigned and given.ticket.assignee.id == ann
    assert not held.assigned and held.ticket.assignee.id == bob
    assert not missing.assigned and not missing.HasField("ticket")
    code, audit = await api_call(stack, team.admin, "GET", f"/api/v1/tickets/{one['id']}/audit")
    assert code == 200, audit
    notes = [
        (e["comment"], c["new"])
        for e in audit["items"]
        for c in e["changes"]
        if c["field"] == "assignee"
    ]
    assert notes == [("assigned by least loaded", "ann")]  # once, though asked three times
    code, seen = await api_call(stack, team.ops["ann"][1], "GET", f"/api/v1/tickets/{one['id']}")
    assert code == 200 and seen["assignee"]["id"] == ann, seen


async def test_presence_is_pushed_live_and_heartbeats_stay_out_of_the_operation_log(
    stack: Stack,
) -> None:
    """An operator's change of presence reaches another operator's live socket at once; a
    heartbeat (the same status again) is neither pushed nor in the operation log."""
    import aiohttp

    team = await _team(stack, ("ann", "bob"))
    bob_id = team.ops["bob"][0]

    async def presence_pushes(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        while True:
            msg = await ws.receive_json(timeout=15)
            if msg.get("type") == "presence.changed":
                return dict(msg)

    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live",
            headers={"Authorization": f"Bearer {team.ops['ann'][1]}"},
        ) as ws:
            await ws.receive(timeout=5)  # hello
            await _presence(stack, team, "bob", "online")
            first = await presence_pushes(ws)
            assert first["operator"]["operator_id"] == bob_id
            assert first["operator"]["effective"] == "online"
            assert first["operator"]["expires_at"] and first["by"]["id"] == bob_id
            await _presence(stack, team, "bob", "online")  # a heartbeat
            await _presence(stack, team, "bob", "away")
            second = await presence_pushes(ws)  # the heartbeat pushed nothing before it
            assert (second["operator"]["status"], second["operator"]["effective"]) == (
                "away",
                "away",
            )
            assert second["operator"]["expires_at"] is None
    await _presence(stack, team, "bob", "offline")  # announced after the heartbeat would be

    async def logged() -> list[int] | None:
        code, body = await api_call(
            stack,
            team.admin,
            "GET",
            f"/api/v1/operations?action=setMyPresence&operator_id={bob_id}",
        )
        assert code == 200, body
        return [e["status"] for e in body["items"]] if len(body["items"]) >= 3 else None

    # online, away, offline — not the heartbeat between them
    assert await eventually(logged, timeout=30, every=0.3) == [200, 200, 200]
