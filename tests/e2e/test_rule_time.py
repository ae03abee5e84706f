"""Rule time triggers and the SLA at intake through the real processes (issue 18): a rule
on `no_first_reply` acts once on a real ticket nobody answered in time (saving it arms
the tickets already waiting); a rule on
`pending_until` reopens a pending ticket when its date comes, also after routing
restarted; a new ticket has its SLA due time from the start (routing computes it inside
message.routed, with no second sla.changed), and an SLA change reaches the live socket
as ticket.updated; a rule naming a calendar the tenant does not have is refused.

"Wait N minutes" is done by back-dating what routing stored in its own database (the
ticket's waiting-since, a timer's due time), never by sleeping minutes."""

from __future__ import annotations

import json
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.e2e.test_sla import _admin, _async, _mailed_ticket, _ok
from tests.helpers import api_call, api_get, eventually, published

pytestmark = pytest.mark.e2e


async def _routing(stack: Stack) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        with_database(stack.database_url, "sb_routing")
    )
    return conn


async def _timers(stack: Stack, ticket_id: str, target: str) -> list[asyncpg.Record]:
    conn = await _routing(stack)
    try:
        return list(
            await conn.fetch(
                "SELECT which, started_at, fire_at FROM sla_timers "
                "WHERE ticket_id = $1 AND target = $2",
                uuid.UUID(ticket_id),
                target,
            )
        )
    finally:
        await conn.close()


async def _routing_exec(stack: Stack, sql: str, *args: Any) -> str:
    conn = await _routing(stack)
    try:
        done: str = await conn.execute(sql, *args)
        return done
    finally:
        await conn.close()


async def _ticket(stack: Stack, token: str, ticket_id: str) -> dict[str, Any]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}")
    assert code == 200, body
    return dict(body.get("ticket", body))


async def _audit(stack: Stack, token: str, ticket_id: str) -> list[str]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}/audit?limit=200")
    assert code == 200, body
    return [e["comment"] for e in body["items"] if e["comment"]]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_no_first_reply_rule_acts_once_on_a_ticket_nobody_answered(
    stack: Stack,
) -> None:
    """The ticket is there before the rule: saving the rule arms the tickets already
    waiting."""
    tenant, token = await _admin(stack)
    ticket = await _mailed_ticket(stack, token, tenant.address)
    received = _at(ticket["received_at"])

    async def followed() -> bool:  # routing has followed the ticket's creation
        conn = await _routing(stack)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM sla_history WHERE ticket_id = $1", uuid.UUID(ticket["id"])
            )
        finally:
            await conn.close()
        return bool(n)

    await eventually(followed, timeout=30)
    assert await _timers(stack, ticket["id"], "no_first_reply") == []
    code, body = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/rules",
        {"name": "x", "triggers": ["no_first_reply"], "actions": [{"type": "stop"}]},
    )
    assert code == 400 and body["error"]["field"] == "no_first_reply_minutes", body
    rule = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/rules",
        {
            "name": "未返信30分",
            "triggers": ["no_first_reply"],
            "no_first_reply_minutes": 30,
            "actions": [
                {"type": "set_priority", "value": "high"},
                {"type": "add_label", "value": "未返信"},
            ],
        },
    )
    assert rule["no_first_reply_minutes"] == 30 and rule["triggers"] == ["no_first_reply"]

    [timer] = await eventually(lambda: _timers(stack, ticket["id"], "no_first_reply"), timeout=30)
    assert timer["which"] == "30" and timer["fire_at"] == received + timedelta(minutes=30)
    assert (await _ticket(stack, token, ticket["id"]))["priority"] == "normal"

    # 31 minutes later: routing's waiting-since of the ticket is moved back 31 minutes;
    # the next event of the ticket (an operator's label, no reply) recomputes its timers
    done = await _routing_exec(
        stack,
        "UPDATE sla_tickets SET created_at = created_at - interval '31 minutes' "
        "WHERE ticket_id = $1",
        uuid.UUID(ticket["id"]),
    )
    assert done == "UPDATE 1"
    await _ok(stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"add_labels": ["見た"]})

    async def acted() -> dict[str, Any] | None:
        t = await _ticket(stack, token, ticket["id"])
        return t if t["priority"] == "high" and "未返信" in t["labels"] else None

    await eventually(acted, timeout=30)
    # once: it is remembered as fired, and later changes of the ticket arm it no more
    await _ok(stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"add_labels": ["再確認"]})
    conn = await _routing(stack)
    try:
        fired = await conn.fetch(
            "SELECT which FROM sla_fired WHERE ticket_id = $1 AND target = 'no_first_reply'",
            uuid.UUID(ticket["id"]),
        )
    finally:
        await conn.close()
    assert [r["which"] for r in fired] == ["30"]
    assert await _timers(stack, ticket["id"], "no_first_reply") == []
    audit = await _audit(stack, token, ticket["id"])
    assert audit.count("rule 未返信30分: add label 未返信") == 1, audit
    assert audit.count("rule 未返信30分: set priority high") == 1, audit


async def test_a_pending_until_rule_reopens_the_ticket_when_its_date_comes(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    await _ok(
        stack,
        token,
        "POST",
        "/api/v1/rules",
        {
            "name": "保留期限",
            "triggers": ["pending_until"],
            "actions": [
                {"type": "set_status", "value": "open"},
                {"type": "add_label", "value": "再開"},
            ],
        },
    )
    ticket = await _mailed_ticket(stack, token, tenant.address)
    path = f"/api/v1/tickets/{ticket['id']}"
    tomorrow = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    # only a pending ticket has a date; a bad date is refused naming the field
    for body in (
        {"pending_until": tomorrow.isoformat()},
        {"status": "pending", "pending_until": "next week"},
    ):
        code, answer = await api_call(stack, token, "PATCH", path, body)
        assert code == 400 and answer["error"]["field"] == "pending_until", answer
    assert (await _ticket(stack, token, ticket["id"]))["status"] == "open"
    local = tomorrow.astimezone(datetime.now().astimezone().tzinfo).isoformat()
    changed = await _ok(stack, token, "PATCH", path, {"status": "pending", "pending_until": local})
    assert changed["ticket"]["pending_until"] == tomorrow.isoformat().replace("+00:00", "Z")

    [timer] = await eventually(lambda: _timers(stack, ticket["id"], "pending_until"), timeout=30)
    assert timer["started_at"] == tomorrow and timer["fire_at"] == tomorrow

    # the date comes: the stored due time is moved to a second ago, and routing restarts
    # (its claim loop starts from the index in its database)
    done = await _routing_exec(
        stack,
        "UPDATE sla_timers SET fire_at = now() - interval '1 second' "
        "WHERE ticket_id = $1 AND target = 'pending_until'",
        uuid.UUID(ticket["id"]),
    )
    assert done == "UPDATE 1"
    stack.kill("routing", signal.SIGKILL)
    stack.start_process("routing")
    await stack.wait_healthy(timeout=60)

    async def reopened() -> dict[str, Any] | None:
        t = await _ticket(stack, token, ticket["id"])
        return t if t["status"] == "open" and "再開" in t["labels"] else None

    after = await eventually(reopened, timeout=60)
    assert after["pending_until"] is None  # it left pending
    audit = await _audit(stack, token, ticket["id"])
    assert audit.count("rule 保留期限: set status open") == 1, audit
    assert await _timers(stack, ticket["id"], "pending_until") == []


async def test_a_new_ticket_has_its_sla_from_routing_and_a_change_is_pushed_live(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    await _ok(
        stack,
        token,
        "POST",
        "/api/v1/sla-policies",
        {"name": "Hour", "inbox_ids": [tenant.inbox_id], "first_response_minutes": 60},
    )
    async with (
        published(stack, "sb.routing.>") as routing_events,
        published(stack, "sb.tickets.ticket.created") as created_events,
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws,
    ):
        assert json.loads((await ws.receive(timeout=5)).data)["type"] == "hello"
        ticket = await _mailed_ticket(stack, token, tenant.address)
        due = _at(ticket["received_at"]) + timedelta(hours=1)
        # the ticket had it from its first moment: message.routed and ticket.created
        [routed] = [
            e
            for e in routing_events
            if e.type == "message.routed" and e.message_routed.new_ticket_id == ticket["id"]
        ]
        assert routed.message_routed.sla_due_at.ToDatetime(tzinfo=UTC) == due
        assert routed.message_routed.sla_state == "ok"
        [created] = [e for e in created_events if e.ticket_created.ticket.id == ticket["id"]]
        assert created.ticket_created.ticket.sla_due_at.ToDatetime(tzinfo=UTC) == due
        assert _at(ticket["sla_due_at"]) == due
        # routing has followed ticket.created (its timers are set) before the next change
        await eventually(lambda: _timers(stack, ticket["id"], "first_response"), timeout=30)

        await _ok(stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"status": "pending"})
        pushed = await _next_sla_push(ws, ticket["id"])
        assert pushed["ticket"]["sla_due_at"] is None
        assert pushed["changes"] == [
            {"field": "sla_due_at", "old": ticket["sla_due_at"], "new": ""}
        ], pushed

        def sla_changed() -> list[events_pb2.EventEnvelope]:
            return [
                e
                for e in routing_events
                if e.type == "sla.changed" and e.sla_changed.ticket_id == ticket["id"]
            ]

        # one sla.changed for the ticket: the pause; its creation announced none again
        [paused] = await eventually(lambda: _async(sla_changed()), timeout=30)
        assert paused.sla_changed.state == "paused"
    assert (await _ticket(stack, token, ticket["id"]))["sla_due_at"] is None


async def _next_sla_push(ws: aiohttp.ClientWebSocketResponse, ticket_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.05))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if (
            data.get("type") == "ticket.updated"
            and data.get("action") == "sla"
            and data["ticket"]["id"] == ticket_id
        ):
            return dict(data)


async def test_a_rule_naming_a_calendar_the_tenant_does_not_have_is_refused(
    stack: Stack,
) -> None:
    _tenant, token = await _admin(stack)
    _other, other_token = await _admin(stack)
    theirs = await _ok(
        stack,
        other_token,
        "POST",
        "/api/v1/calendars",
        {
            "name": "Theirs",
            "time_zone": "Asia/Tokyo",
            "slots": [{"weekday": "mon", "start": "09:00", "end": "18:00"}],
        },
    )
    base = {"name": "営業時間外", "triggers": ["new_ticket"], "actions": [{"type": "stop"}]}
    for missing in (str(uuid.uuid4()), theirs["id"]):
        code, body = await api_call(
            stack,
            token,
            "POST",
            "/api/v1/rules",
            {**base, "business_hours": {"calendar_id": missing, "when": "outside"}},
        )
        assert code == 400, body
        assert body["error"]["field"] == "business_hours.calendar_id", body
        condition = {"field": "business_hours", "operator": "outside", "value": missing}
        code, body = await api_call(
            stack,
            token,
            "POST",
            "/api/v1/rules",
            {**base, "conditions": {"match": "all", "conditions": [condition]}},
        )
        assert code == 400, body
        assert body["error"]["field"] == "conditions.conditions[0].value", body
    code, body = await api_get(stack, token, "/api/v1/rules")
    assert code == 200 and body["rules"] == [], body
    mine = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/calendars",
        {
            "name": "Mine",
            "time_zone": "Asia/Tokyo",
            "slots": [{"weekday": "mon", "start": "09:00", "end": "18:00"}],
        },
    )
    saved = await _ok(
        stack,
        token,
        "POST",
        "/api/v1/rules",
        {**base, "business_hours": {"calendar_id": mine["id"], "when": "outside"}},
    )
    assert saved["business_hours"]["calendar_id"] == mine["id"]
