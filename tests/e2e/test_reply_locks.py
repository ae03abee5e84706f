"""Reply locks (TKT-3) through the gateway and the tickets gRPC API, on real Redis,
PostgreSQL and NATS: one winner among 200 concurrent operators, the holder as assignee,
renew / release / take over, live pushes, expiry after the TTL with stale fences refused,
and a Redis that restarts empty while locks are held."""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

from services.accounts.domain import hash_password, token_hash
from services.devstack.stack import Ports, Stack, StackConfig
from services.runtime import permissions
from services.runtime.db import with_database
from services.runtime.identity import Identity
from tests.conftest import DEMO_PASSWORD
from tests.helpers import Tenant, all_tickets, api_call, create_tenant, eventually, make_mail, send

pytestmark = pytest.mark.e2e

SHORT_TTL_S = 5.0


@dataclass(frozen=True)
class Op:
    id: str
    name: str
    token: str
    tenant_id: str
    roles: tuple[str, ...]

    @property
    def ref(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}

    def metadata(self) -> list[tuple[str, str]]:
        """As the gateway would send it: the roles' permissions, every inbox."""
        granted = frozenset().union(*(permissions.BUILTIN_ROLES[r][0] for r in self.roles))
        return Identity(
            self.tenant_id, self.id, self.roles, "", self.name, permissions=granted
        ).metadata()


async def add_operators(
    stack: Stack, tenant_id: str, count: int, roles: tuple[str, ...], label: str
) -> list[Op]:
    """Operators with open sessions, written into accounts' database as an administrator's
    tooling would (one password hash for all: argon2 is slow on purpose)."""
    pw = hash_password(secrets.token_urlsafe(12))
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    ops = [
        Op(
            str(uuid.uuid4()),
            f"{label} {i:03d}",
            secrets.token_urlsafe(32),
            tenant_id,
            roles,
        )
        for i in range(count)
    ]
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_accounts"))
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO operators (id, tenant_id, login, display_name, password_hash, roles) "
                "VALUES ($1,$2,$3,$4,$5,$6)",
                [
                    (
                        uuid.UUID(o.id),
                        uuid.UUID(tenant_id),
                        f"{label.replace(' ', '-')}-{tag}-{i}@ops.example".lower(),
                        o.name,
                        pw,
                        list(roles),
                    )
                    for i, o in enumerate(ops)
                ],
            )
            await conn.execute(
                "INSERT INTO inbox_members (tenant_id, inbox_id, operator_id) "
                "SELECT i.tenant_id, i.id, o FROM inboxes i, unnest($2::uuid[]) o "
                "WHERE i.tenant_id = $1",
                uuid.UUID(tenant_id),
                [uuid.UUID(o.id) for o in ops],
            )
            await conn.executemany(
                "INSERT INTO sessions (id, token_hash, tenant_id, operator_id, created_at, "
                "expires_at) VALUES (gen_random_uuid(),$1,$2,$3,$4,$5)",
                [
                    (
                        token_hash(o.token),
                        uuid.UUID(tenant_id),
                        uuid.UUID(o.id),
                        now,
                        now + timedelta(hours=2),
                    )
                    for o in ops
                ],
            )
    finally:
        await conn.close()
    return ops


@dataclass
class Team:
    tenant: Tenant
    agents: list[Op]
    supervisor: Op


async def make_team(stack: Stack, agents: int = 3) -> Team:
    tenant = await create_tenant(stack)
    return Team(
        tenant,
        await add_operators(stack, tenant.tenant_id, agents, ("agent",), "Agent"),
        (await add_operators(stack, tenant.tenant_id, 1, ("agent", "supervisor"), "Sup"))[0],
    )


async def new_ticket(stack: Stack, team: Team) -> dict[str, Any]:
    subject = f"Lock me {uuid.uuid4().hex[:8]}"
    address = team.tenant.address
    await asyncio.to_thread(send, stack.smtp_port, make_mail(subject, to=address), [address])
    token = team.agents[0].token

    async def found() -> list[dict[str, Any]]:
        return [t for t in await all_tickets(stack, token) if t["subject"] == subject]

    [ticket] = await eventually(found, timeout=30)
    return ticket


def lock_path(ticket_id: str, suffix: str = "") -> str:
    return f"/api/v1/tickets/{ticket_id}/lock{suffix}"


class Live:
    """One operator's live WebSocket, collecting what it is pushed."""

    def __init__(self, stack: Stack, op: Op) -> None:
        self._stack, self._op = stack, op
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> Live:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(
            f"{self._stack.gateway_url}/api/v1/live",
            headers={"Authorization": f"Bearer {self._op.token}"},
        )
        hello = json.loads((await self._ws.receive(timeout=10)).data)
        assert hello["type"] == "hello" and hello["operator"]["id"] == self._op.id
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self._ws:
            self.events.append(json.loads(msg.data))

    async def __aexit__(self, *exc: object) -> None:
        self._reader.cancel()
        await self._ws.close()
        await self._http.close()

    async def wait_for(self, kind: str, ticket_id: str, timeout: float = 10) -> dict[str, Any]:
        async def seen() -> dict[str, Any] | None:
            for e in self.events:
                if e["type"] == kind and e.get("ticket_id") == ticket_id:
                    return e
            return None

        found: dict[str, Any] = await eventually(seen, timeout=timeout)
        return found


@pytest.fixture
async def tickets_grpc(stack: Stack) -> AsyncIterator[tickets_pb2_grpc.TicketsServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['tickets']}") as ch:
        yield tickets_pb2_grpc.TicketsServiceStub(ch)


async def check_fence(
    stub: tickets_pb2_grpc.TicketsServiceStub, op: Op, ticket_id: str, fence: int
) -> grpc.StatusCode:
    try:
        await stub.CheckFence(
            tickets_pb2.CheckFenceRequest(ticket_id=ticket_id, fence=fence),
            metadata=op.metadata(),
            timeout=10,
        )
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


# -- on the shared stack -----------------------------------------------------------------


async def test_of_200_concurrent_acquires_exactly_one_wins_and_the_rest_are_told_who(
    stack: Stack, tickets_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    tenant = await create_tenant(stack)
    agents = await add_operators(stack, tenant.tenant_id, 200, ("agent",), "Racer")
    team = Team(tenant, agents, agents[0])
    ticket = await new_ticket(stack, team)
    assert ticket["assignee"] is None
    url = f"{stack.gateway_url}{lock_path(ticket['id'])}"
    start = asyncio.Event()

    async def attempt(http: aiohttp.ClientSession, op: Op) -> tuple[Op, int, Any]:
        await start.wait()
        async with http.post(url, headers={"Authorization": f"Bearer {op.token}"}) as resp:
            return op, resp.status, await resp.json()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = [asyncio.create_task(attempt(http, op)) for op in agents]
        await asyncio.sleep(0.2)
        start.set()
        results = await asyncio.gather(*tasks)
    statuses = sorted(code for _, code, _ in results)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(409) == 199, statuses
    [(winner, _, lock)] = [(op, code, body) for op, code, body in results if code == 200]
    assert lock["holder"] == winner.ref and lock["fence"] > 0
    for op, _code, body in results:
        if op is not winner:
            assert body["error"]["code"] == "locked", body
            assert body["error"]["holder"] == winner.ref
            assert body["error"]["message"] == f"{winner.name} is replying"

    # the holder became the assignee (there was none)
    code, detail = await api_call(stack, winner.token, "GET", f"/api/v1/tickets/{ticket['id']}")
    assert code == 200 and detail["assignee"] == winner.ref
    assert await check_fence(tickets_grpc, winner, ticket["id"], lock["fence"]) == (
        grpc.StatusCode.OK
    )
    loser = next(op for op, _, _ in results if op is not winner)
    assert await check_fence(tickets_grpc, loser, ticket["id"], lock["fence"]) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    code, body = await api_call(stack, loser.token, "GET", lock_path(ticket["id"]))
    assert code == 200 and body["holder"] == winner.ref and body["fence"] == lock["fence"]

    # acquiring again is the same lock, renewed; renew extends; release frees it
    code, again = await api_call(stack, winner.token, "POST", lock_path(ticket["id"]))
    assert code == 200 and again["fence"] == lock["fence"]
    assert again["expires_at"] >= lock["expires_at"]
    code, renewed = await api_call(
        stack, winner.token, "POST", lock_path(ticket["id"], "/renew"), {"fence": lock["fence"]}
    )
    assert code == 200 and renewed["fence"] == lock["fence"]
    code, body = await api_call(
        stack, loser.token, "POST", lock_path(ticket["id"], "/renew"), {"fence": lock["fence"]}
    )
    assert code == 409 and body["error"]["code"] == "failed_precondition"
    code, body = await api_call(
        stack, loser.token, "DELETE", lock_path(ticket["id"]), {"fence": lock["fence"]}
    )
    assert (code, body) == (200, {"released": False})
    code, body = await api_call(
        stack, winner.token, "DELETE", f"{lock_path(ticket['id'])}?fence={lock['fence']}"
    )
    assert (code, body) == (200, {"released": True})
    code, body = await api_call(stack, winner.token, "GET", lock_path(ticket["id"]))
    assert code == 404 and body["error"]["code"] == "not_found"
    assert await check_fence(tickets_grpc, winner, ticket["id"], lock["fence"]) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    # the next holder gets a later fence, and the assignee stays the first holder
    code, next_lock = await api_call(stack, loser.token, "POST", lock_path(ticket["id"]))
    assert code == 200 and next_lock["fence"] > lock["fence"]
    code, detail = await api_call(stack, winner.token, "GET", f"/api/v1/tickets/{ticket['id']}")
    assert detail["assignee"] == winner.ref


async def test_a_send_s_release_keeps_the_lock_its_author_acquired_again(
    stack: Stack, tickets_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    """After a send, outbound releases its author's lock — unless they acquired it again
    after the send was queued (already writing the next reply, or the draft a failed send
    reopened): acquiring what one holds keeps its fence, so that release would take the
    new reply's lock from under them."""
    team = await make_team(stack)
    ticket = await new_ticket(stack, team)
    tid, op = ticket["id"], team.agents[0]
    code, lock = await api_call(stack, op.token, "POST", lock_path(tid))
    assert code == 200, lock
    queued = datetime.now(UTC)  # the send is queued under this lock
    await asyncio.sleep(0.05)
    code, again = await api_call(stack, op.token, "POST", lock_path(tid))  # the next reply
    assert code == 200 and again["fence"] == lock["fence"], again

    request = tickets_pb2.ReplyLockRequest(ticket_id=tid, fence=lock["fence"])
    request.unless_reacquired_after.FromDatetime(queued)
    kept = await tickets_grpc.ReleaseReplyLock(request, metadata=op.metadata(), timeout=10)
    assert not kept.released
    assert await check_fence(tickets_grpc, op, tid, lock["fence"]) == grpc.StatusCode.OK
    code, body = await api_call(stack, op.token, "GET", lock_path(tid))
    assert code == 200 and body["holder"] == op.ref, body

    # a release whose send was queued after the last acquire lets it go, as before
    request.unless_reacquired_after.FromDatetime(datetime.now(UTC))
    gone = await tickets_grpc.ReleaseReplyLock(request, metadata=op.metadata(), timeout=10)
    assert gone.released
    code, body = await api_call(stack, op.token, "GET", lock_path(tid))
    assert code == 404, body


async def test_an_operator_whose_replies_need_approval_takes_the_lock_like_anyone(
    stack: Stack, tickets_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    """Issue 17: a trainee writes replies too — they take the reply lock (and an
    unassigned ticket with it) like anyone, and their send is guarded by approval; the
    ticket's actions say so (reply, but no send without approval)."""
    team = await make_team(stack)
    [trainee] = await add_operators(stack, team.tenant.tenant_id, 1, ("trainee",), "Trainee")
    ticket = await new_ticket(stack, team)
    tid = ticket["id"]
    code, detail = await api_call(stack, trainee.token, "GET", f"/api/v1/tickets/{tid}")
    assert code == 200 and detail["actions"]["reply"] is True
    assert detail["actions"]["send_without_approval"] is False
    code, lock = await api_call(stack, trainee.token, "POST", lock_path(tid))
    assert code == 200 and lock["holder"] == trainee.ref, lock
    code, detail = await api_call(stack, trainee.token, "GET", f"/api/v1/tickets/{tid}")
    assert detail["assignee"] == trainee.ref
    agent = team.agents[0]
    taken = await tickets_grpc.AcquireReplyLock(
        tickets_pb2.ReplyLockRequest(ticket_id=tid), metadata=agent.metadata(), timeout=10
    )
    assert not taken.acquired and taken.lock.holder.id == trainee.id
    code, body = await api_call(
        stack, trainee.token, "DELETE", f"{lock_path(tid)}?fence={lock['fence']}"
    )
    assert (code, body) == (200, {"released": True})
    code, lock = await api_call(stack, agent.token, "POST", lock_path(tid))
    assert code == 200 and lock["holder"] == agent.ref


async def test_a_supervisor_takes_over_and_the_previous_holder_is_told_at_once(
    stack: Stack, tickets_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    team = await make_team(stack)
    holder, other = team.agents[0], team.agents[1]
    ticket = await new_ticket(stack, team)
    tid = ticket["id"]
    async with Live(stack, holder) as live:
        code, lock = await api_call(stack, holder.token, "POST", lock_path(tid))
        assert code == 200
        acquired = await live.wait_for("lock.acquired", tid)
        assert acquired["lock"]["fence"] == lock["fence"]
        assert acquired["lock"]["holder"] == holder.ref

        code, body = await api_call(stack, other.token, "POST", lock_path(tid, "/takeover"))
        assert code == 403 and body["error"]["code"] == "permission_denied"

        sent = time.monotonic()
        code, taken = await api_call(
            stack, team.supervisor.token, "POST", lock_path(tid, "/takeover")
        )
        assert code == 200
        assert taken["holder"] == team.supervisor.ref and taken["fence"] > lock["fence"]
        told = await live.wait_for("lock.taken_over", tid, timeout=5)
        assert time.monotonic() - sent < 2.0
        assert told["previous_holder"] == holder.ref
        assert told["previous_fence"] == lock["fence"]
        assert told["lock"]["holder"] == team.supervisor.ref
        assert told["lock"]["fence"] == taken["fence"]

    # the previous holder's lock is dead for renew, release and every reply-related write
    code, body = await api_call(
        stack, holder.token, "POST", lock_path(tid, "/renew"), {"fence": lock["fence"]}
    )
    assert code == 409 and body["error"]["code"] == "failed_precondition"
    assert await check_fence(tickets_grpc, holder, tid, lock["fence"]) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    assert await check_fence(tickets_grpc, team.supervisor, tid, taken["fence"]) == (
        grpc.StatusCode.OK
    )
    code, body = await api_call(stack, holder.token, "POST", lock_path(tid))
    assert code == 409 and body["error"]["holder"] == team.supervisor.ref


async def test_bad_lock_requests_get_clear_errors(
    stack: Stack, tickets_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    team = await make_team(stack, agents=1)
    stranger_team = await make_team(stack, agents=1)
    agent, boss = team.agents[0], team.supervisor
    theirs = await new_ticket(stack, stranger_team)
    unknown = str(uuid.uuid4())

    for tid, status, code_name in (
        ("not-a-uuid", 400, "invalid_argument"),
        (unknown, 404, "not_found"),
        (theirs["id"], 404, "not_found"),
    ):
        for who, method, suffix, body in (
            (agent, "POST", "", None),
            (agent, "GET", "", None),
            (agent, "POST", "/renew", {"fence": 1}),
            (agent, "DELETE", "", {"fence": 1}),
            (boss, "POST", "/takeover", None),
        ):
            code, answer = await api_call(stack, who.token, method, lock_path(tid, suffix), body)
            assert (code, answer["error"]["code"]) == (status, code_name), (tid, method, suffix)
    # another tenant's ticket is untouched
    code, _ = await api_call(stack, stranger_team.agents[0].token, "GET", lock_path(theirs["id"]))
    assert code == 404
    code, lock = await api_call(
        stack, stranger_team.agents[0].token, "POST", lock_path(theirs["id"])
    )
    assert code == 200
    assert await check_fence(tickets_grpc, agent, theirs["id"], lock["fence"]) == (
        grpc.StatusCode.NOT_FOUND
    )

    mine = await new_ticket(stack, team)
    for body in (
        {"fence": "abc"},
        {"fence": 0},
        {"fence": -3},
        {"fence": 1.5},
        {"fence": True},
        {},
    ):
        code, answer = await api_call(
            stack, agent.token, "POST", lock_path(mine["id"], "/renew"), body
        )
        assert code == 400 and answer["error"]["field"] == "fence", body
    code, answer = await api_call(stack, agent.token, "DELETE", f"{lock_path(mine['id'])}?fence=x")
    assert code == 400 and answer["error"]["field"] == "fence"
    code, answer = await api_call(stack, agent.token, "DELETE", lock_path(mine["id"]))
    assert code == 400 and answer["error"]["field"] == "fence"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}{lock_path(mine['id'], '/renew')}",
            data=b"{not json",
            headers={"Authorization": f"Bearer {agent.token}", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "invalid_argument"
    code, answer = await api_call(
        stack, agent.token, "POST", lock_path(mine["id"], "/renew"), {"fence": 99}
    )
    assert code == 409 and answer["error"]["code"] == "failed_precondition"
    assert await check_fence(tickets_grpc, agent, mine["id"], 0) == grpc.StatusCode.INVALID_ARGUMENT
    code, answer = await api_call(stack, "not-a-session", "POST", lock_path(mine["id"]))
    assert code == 401


# -- on a stack of its own: a short TTL, and a Redis this module may restart -------------


@pytest.fixture(scope="module")
async def short_ttl_stack(server_dir: Callable[[str], Path]) -> AsyncIterator[Stack]:
    s = Stack(
        StackConfig(
            # its own PostgreSQL runs as another user: a folder outside pytest's (conftest)
            data_dir=server_dir("locks-stack"),
            ports=Ports.free(),
            env="test",
            demo_password=DEMO_PASSWORD,
            service_logs_to_files=True,
            fast_postgres=True,
            extra_env={"tickets": {"SB_LOCK_TTL_S": str(SHORT_TTL_S)}},
        )
    )
    try:
        await s.start_infra()
        await s.seed()
        await s.start_services()
        await s.wait_healthy(timeout=120)
        yield s
    finally:
        await asyncio.to_thread(s.stop)


@pytest.fixture
async def short_grpc(short_ttl_stack: Stack) -> AsyncIterator[tickets_pb2_grpc.TicketsServiceStub]:
    port = short_ttl_stack.config.ports.grpc["tickets"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield tickets_pb2_grpc.TicketsServiceStub(ch)


async def test_a_holder_that_stops_renewing_loses_the_lock_and_its_fence_goes_stale(
    short_ttl_stack: Stack, short_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    stack = short_ttl_stack
    team = await make_team(stack, agents=2)
    holder, next_one = team.agents
    ticket = await new_ticket(stack, team)
    tid = ticket["id"]
    async with Live(stack, next_one) as live:
        code, lock = await api_call(stack, holder.token, "POST", lock_path(tid))
        assert code == 200
        # renewing keeps it past the TTL
        for _ in range(3):
            await asyncio.sleep(SHORT_TTL_S / 2)
            code, _ = await api_call(
                stack, holder.token, "POST", lock_path(tid, "/renew"), {"fence": lock["fence"]}
            )
            assert code == 200
        assert await check_fence(short_grpc, holder, tid, lock["fence"]) == grpc.StatusCode.OK
        # then the holder goes quiet
        expired = await live.wait_for("lock.expired", tid, timeout=SHORT_TTL_S + 10)
        assert expired["previous_holder"] == holder.ref
        assert expired["previous_fence"] == lock["fence"] and expired["lock"] is None
    assert len([e for e in live.events if e["type"] == "lock.expired"]) == 1
    assert await check_fence(short_grpc, holder, tid, lock["fence"]) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )
    code, body = await api_call(
        stack, holder.token, "POST", lock_path(tid, "/renew"), {"fence": lock["fence"]}
    )
    assert code == 409 and body["error"]["field"] == "fence"  # a lost lock stays lost
    code, _ = await api_call(stack, holder.token, "GET", lock_path(tid))
    assert code == 404
    code, taken = await api_call(stack, next_one.token, "POST", lock_path(tid))
    assert code == 200 and taken["fence"] > lock["fence"]


async def test_a_redis_restarted_empty_leaves_no_two_holders(
    short_ttl_stack: Stack, short_grpc: tickets_pb2_grpc.TicketsServiceStub
) -> None:
    stack = short_ttl_stack
    assert stack.redis is not None
    team = await make_team(stack, agents=6)
    old_holders, newcomers = team.agents[:3], team.agents[3:]
    tickets = [await new_ticket(stack, team) for _ in old_holders]
    held: list[tuple[Op, str, int]] = []
    for op, t in zip(old_holders, tickets, strict=True):
        code, lock = await api_call(stack, op.token, "POST", lock_path(t["id"]))
        assert code == 200
        held.append((op, t["id"], lock["fence"]))

    renewed_at: dict[str, float] = {}
    for op, tid, fence in held:
        code, _ = await api_call(
            stack, op.token, "POST", lock_path(tid, "/renew"), {"fence": fence}
        )
        assert code == 200
        renewed_at[tid] = time.monotonic()
    stack.redis.stop()  # the data is gone with it: a failover to an empty replica
    shutil.rmtree(stack.redis.data_dir)
    await stack.redis.start()

    for op, tid, fence in held:
        code, body = await api_call(
            stack, op.token, "POST", lock_path(tid, "/renew"), {"fence": fence}
        )
        # well inside the TTL: had Redis kept its data, this lock would still be alive
        assert time.monotonic() - renewed_at[tid] < SHORT_TTL_S
        assert code == 409 and body["error"]["code"] == "failed_precondition", body
        assert await check_fence(short_grpc, op, tid, fence) == grpc.StatusCode.FAILED_PRECONDITION

    # old holders and newcomers race for each ticket: one holder each, with a later fence
    for (old, tid, fence), new in zip(held, newcomers, strict=True):
        results = await asyncio.gather(
            api_call(stack, old.token, "POST", lock_path(tid)),
            api_call(stack, new.token, "POST", lock_path(tid)),
        )
        winners = [
            (op, body) for op, (code, body) in zip((old, new), results, strict=True) if code == 200
        ]
        assert len(winners) == 1, results
        winner, lock = winners[0]
        assert lock["fence"] > fence
        loser = new if winner is old else old
        code, body = await api_call(stack, loser.token, "POST", lock_path(tid))
        assert code == 409 and body["error"]["holder"] == winner.ref
        assert await check_fence(short_grpc, winner, tid, lock["fence"]) == grpc.StatusCode.OK
        assert await check_fence(short_grpc, old, tid, fence) == grpc.StatusCode.FAILED_PRECONDITION
