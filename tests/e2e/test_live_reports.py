"""The live figures (issue 19, RPT-5 and RPT-7) through the real processes: a supervisor's
live socket subscribed to the live queue is pushed one more waiting ticket when a mail
arrives by SMTP; an operator who may not see that inbox is pushed nothing of it; the
assignment figures move when a ticket is assigned; without `see_reports` the REST answers
403 and the socket gets an error instead of pushes; after logout the socket is closed.

Late tickets are made by backdating reporting's own live rows (its table, never another
service's): the test does not wait minutes."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.e2e.test_access import operator_token, own_operator, ticket_by_subject
from tests.e2e.test_accounts import admin_of, call
from tests.helpers import eventually, make_mail, send

pytestmark = pytest.mark.e2e

QUEUE = "report.live_queue"
ASSIGNMENT = "report.live_assignment"


class Socket:
    """A live socket and every message it was pushed, read in the background."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.got: list[dict[str, Any]] = []
        self.closed: int | None = None
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.got.append(json.loads(msg.data))
        self.closed = self.ws.close_code

    async def say(self, **message: Any) -> None:
        await self.ws.send_str(json.dumps(message))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.got if m.get("type") == kind]

    async def next_of(
        self, kind: str, test: Any = lambda m: True, since: int = 0
    ) -> dict[str, Any]:
        """The first message of `kind` that passes `test`, from the `since`th message."""

        async def probe() -> dict[str, Any] | None:
            return next((m for m in self.got[since:] if m.get("type") == kind and test(m)), None)

        found: dict[str, Any] = await eventually(probe, timeout=30)
        return found


def _inbox(push: dict[str, Any], inbox_id: str) -> dict[str, Any] | None:
    return next((i for i in push["inboxes"] if i["inbox_id"] == inbox_id), None)


async def test_live_queue_and_assignment_pushed_to_those_who_may_see_them(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    private = f"private@{uuid.uuid4().hex[:8]}.example"
    code, inbox, _ = await call(
        stack, "POST", "/api/v1/inboxes", {"name": "Private", "addresses": [private]}, token=admin
    )
    assert code == 201, inbox
    sup_id, _, supervisor = await own_operator(
        stack, admin, tenant, roles=["supervisor"], display_name="Sato Hanako"
    )
    agent = await operator_token(stack, admin, tenant, roles=["agent"])

    async with aiohttp.ClientSession() as http:

        async def socket(token: str) -> Socket:
            ws = await http.ws_connect(
                f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
            )
            s = Socket(ws)
            await s.next_of("hello")
            return s

        boss, sup, ag = await socket(admin), await socket(supervisor), await socket(agent)
        await boss.say(type="subscribe", topic=QUEUE)
        await sup.say(type="subscribe", topic=QUEUE)
        await ag.say(type="subscribe", topic=QUEUE)
        first = await boss.next_of(QUEUE)
        assert {i["name"] for i in first["inboxes"]} == {"Help", "Private"}
        assert _inbox(first, inbox["id"])["waiting"] == 0  # type: ignore[index]
        seen_by_sup = await sup.next_of(QUEUE)
        assert [i["inbox_id"] for i in seen_by_sup["inboxes"]] == [tenant.inbox_id]
        refused = await ag.next_of("error")
        assert refused["topic"] == QUEUE and refused["error"]["code"] == "permission_denied"

        # a mail to the private inbox: the administrator's socket shows one more waiting
        subject = f"Where is my order {uuid.uuid4().hex[:6]}"
        await asyncio.to_thread(send, stack.smtp_port, make_mail(subject, to=private), [private])
        pushed = await boss.next_of(
            QUEUE, lambda m: (_inbox(m, inbox["id"]) or {}).get("waiting") == 1
        )
        row = _inbox(pushed, inbox["id"])
        assert row is not None and row["oldest_waiting_since"] is not None
        assert pushed["totals"]["waiting"] == 1
        await sup.next_of(QUEUE, since=len(sup.got))  # a push after the mail's
        assert len(sup.of(QUEUE)) > 1
        assert all(_inbox(m, inbox["id"]) is None for m in sup.of(QUEUE))
        assert all(m["totals"]["waiting"] == 0 for m in sup.of(QUEUE))
        assert ag.of(QUEUE) == []

        # REST: the same figures, scoped; 403 without see_reports; 404 for a hidden inbox
        code, body, _ = await call(stack, "GET", "/api/v1/reports/live-queue", token=admin)
        assert code == 200 and _inbox(body, inbox["id"])["waiting"] == 1, body  # type: ignore[index]
        code, body, _ = await call(stack, "GET", "/api/v1/reports/live-queue", token=supervisor)
        assert code == 200 and [i["name"] for i in body["inboxes"]] == ["Help"], body
        path = f"/api/v1/reports/live-queue?inbox_id={inbox['id']}"
        code, body, _ = await call(stack, "GET", path, token=supervisor)
        assert code == 404 and body["error"]["field"] == "inbox_id", body
        code, body, _ = await call(
            stack, "GET", "/api/v1/reports/live-queue?inbox_id=x", token=admin
        )
        assert code == 400 and body["error"]["field"] == "inbox_id", body
        path = f"/api/v1/reports/live-queue?inbox_id={inbox['id'].upper()}"
        code, body, _ = await call(stack, "GET", path, token=admin)
        assert code == 200 and [i["inbox_id"] for i in body["inboxes"]] == [inbox["id"]], body
        for report in ("live-queue", "live-assignment"):
            code, body, _ = await call(stack, "GET", f"/api/v1/reports/{report}", token=agent)
            assert code == 403, body

        # late: the inbox's thresholds, and the wait backdated in reporting's own table
        code, body, _ = await call(
            stack,
            "PUT",
            f"/api/v1/inboxes/{inbox['id']}/settings",
            {
                "thresholds": [
                    {"after_minutes": 5, "color": "#f5c400"},
                    {"after_minutes": 60, "color": "#e53935"},
                ]
            },
            token=admin,
        )
        assert code == 200, body
        ticket = await ticket_by_subject(stack, admin, subject)
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_reporting"))
        try:
            await conn.execute(
                "UPDATE live_tickets SET waiting_since = waiting_since - interval '10 minutes' "
                "WHERE ticket_id = $1",
                uuid.UUID(ticket["id"]),
            )
        finally:
            await conn.close()
        late = await boss.next_of(
            QUEUE, lambda m: (_inbox(m, inbox["id"]) or {}).get("late_total") == 1
        )
        levels = _inbox(late, inbox["id"])["late"]  # type: ignore[index]
        assert [(x["level"], x["after_minutes"], x["count"]) for x in levels] == [
            (1, 5, 1),
            (2, 60, 0),
        ]

        # assignment: the ticket assigned to the supervisor moves the figures
        await boss.say(type="subscribe", topic=ASSIGNMENT, inbox_id=inbox["id"])
        before = await boss.next_of(ASSIGNMENT)
        assert before["unassigned"] == {"open": 1, "pending": 0}, before
        assert before["assignees"] == []
        code, me, _ = await call(stack, "GET", "/api/v1/me", token=supervisor)
        code, body, _ = await call(
            stack,
            "PATCH",
            f"/api/v1/tickets/{ticket['id']}",
            {"assignee_id": me["id"]},
            token=admin,
        )
        assert code == 200, body
        after = await boss.next_of(ASSIGNMENT, lambda m: m["assignees"] != [])
        assert after["assignees"] == [
            {"operator_id": me["id"], "display_name": "Sato Hanako", "open": 1, "pending": 0}
        ]
        assert after["unassigned"] == {"open": 0, "pending": 0}
        code, body, _ = await call(stack, "GET", "/api/v1/reports/live-assignment", token=admin)
        assert code == 200 and body["totals"] == {"open": 1, "pending": 0}, body

        # the supervisor's role no longer has see_reports: re-authorised, the subscription
        # ends with an error and no live queue reaches that socket any more
        code, body, _ = await call(
            stack, "PATCH", f"/api/v1/operators/{sup_id}", {"roles": ["agent"]}, token=admin
        )
        assert code == 200, body
        await sup.next_of("access.changed")
        ended = await sup.next_of("error", lambda m: m["error"]["code"] == "permission_denied")
        assert ended["topic"] == QUEUE
        after_end = len(sup.of(QUEUE))
        mark = len(boss.got)
        for _ in range(2):  # two more pushes to the administrator: at least 2 s go by
            mark = boss.got.index(await boss.next_of(QUEUE, since=mark)) + 1
        assert len(sup.of(QUEUE)) == after_end

        # the supervisor logs out: the socket is closed
        code, _, _ = await call(stack, "DELETE", "/api/v1/sessions/current", token=supervisor)
        assert code == 204
        await eventually(lambda: _closed(sup))
        assert sup.closed == 4401
        for s in (boss, sup, ag):
            await s.ws.close()


async def _closed(s: Socket) -> bool:
    return s.closed is not None


async def test_near_an_sla_breach_then_breached_from_routing_s_clocks(stack: Stack) -> None:
    """A one-minute first response warned at 1 % (0.6 s): the mailed ticket is near a
    breach within moments of its warning, and breached once the minute is over."""
    tenant, admin = await admin_of(stack)
    code, body, _ = await call(
        stack,
        "POST",
        "/api/v1/sla-policies",
        {
            "name": "One minute",
            "inbox_ids": [tenant.inbox_id],
            "first_response_minutes": 1,
            "warning": {"at_percent": 1},
        },
        token=admin,
    )
    assert code == 201, body
    subject = f"Urgent {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, to=tenant.address), [tenant.address]
    )

    def figures(near: int, breached: int) -> Any:
        async def probe() -> dict[str, Any] | None:
            code, body, _ = await call(stack, "GET", "/api/v1/reports/live-queue", token=admin)
            assert code == 200, body
            t = body["totals"]
            return body if (t["near_breach"], t["breached"]) == (near, breached) else None

        return probe

    near = await eventually(figures(1, 0), timeout=30)
    assert near["totals"]["waiting"] == 1
    await eventually(figures(0, 1), timeout=90)
