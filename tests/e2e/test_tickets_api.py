"""The ticket features of issue 4 through the gateway's HTTP API and live WebSocket, on
the real stack: status changes and restore, labels and the like, assignment and mentions
that notify the operator concerned, phone memos, transfer, bulk changes, merge and split,
the audit trail, elapsed-time thresholds, search and paging — and bad input refused with
nothing changed. Every test makes its own tickets by sending mail."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from services.accounts.seed import DEMO_INBOXES, DEMO_OPERATORS
from services.devstack.stack import Stack
from tests.helpers import (
    api_call,
    api_get,
    create_tenant,
    eventually,
    login,
    make_mail,
    send,
)

pytestmark = pytest.mark.e2e

OPERATOR_IDS = {login.split("@")[0]: op_id for op_id, login, *_ in DEMO_OPERATORS}
SUPPORT_ID = DEMO_INBOXES["Support"][0]
SALES_ID = DEMO_INBOXES["Sales"][0]


def _tag() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


async def _search(stack: Stack, token: str, query: str) -> list[dict[str, Any]]:
    code, body = await api_get(stack, token, f"/api/v1/tickets?limit=200&{query}")
    assert code == 200, body
    return list(body["items"])


async def _mail_ticket(
    stack: Stack,
    token: str,
    subject: str | None = None,
    *,
    to: str = "support@demo.example",
    sender: str = "Customer <customer@example.com>",
    body: str = "Hello, I have a question.\n",
) -> dict[str, Any]:
    """Send a mail with a unique word in its subject; the ticket it opened."""
    tag = _tag()
    subject = f"{subject or 'Question'} {tag}"
    await asyncio.to_thread(
        send, stack.smtp_port, make_mail(subject, to=to, sender=sender, body=body), [to]
    )

    async def found() -> list[dict[str, Any]]:
        return await _search(stack, token, f"q={tag}&status=open,pending,resolved,no_action,trash")

    [ticket] = await eventually(found)
    assert ticket["subject"] == subject
    return ticket


async def _detail(stack: Stack, token: str, ticket_id: str) -> dict[str, Any]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}")
    assert code == 200, body
    return dict(body)


async def _audit(stack: Stack, token: str, ticket_id: str) -> list[dict[str, Any]]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}/audit?limit=200")
    assert code == 200, body
    return list(body["items"])


async def _patch(stack: Stack, token: str, ticket_id: str, change: dict[str, Any]) -> Any:
    code, body = await api_call(stack, token, "PATCH", f"/api/v1/tickets/{ticket_id}", change)
    assert code == 200, body
    return body


@asynccontextmanager
async def _live(stack: Stack, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello"
            yield ws


async def _next(
    ws: aiohttp.ClientWebSocketResponse,
    match: Callable[[dict[str, Any]], bool],
    timeout: float = 10.0,
) -> dict[str, Any]:
    """The next message on the socket that `match`es (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.05))
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data = json.loads(msg.data)
        if match(data):
            return dict(data)


async def _nothing_more(
    ws: aiohttp.ClientWebSocketResponse, match: Callable[[dict[str, Any]], bool], wait: float = 1.0
) -> None:
    with pytest.raises(TimeoutError):
        await _next(ws, match, timeout=wait)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- statuses ----------------------------------------------------------------------------


async def test_status_changes_go_to_trash_and_restore_brings_the_status_back(
    stack: Stack,
) -> None:
    token = await login(stack)
    ticket = await _mail_ticket(stack, token)
    tid = ticket["id"]
    assert ticket["status"] == "open" and ticket["number"] > 0
    assert ticket["priority"] == "normal" and ticket["labels"] == [] and ticket["lock"] is None

    body = await _patch(stack, token, tid, {"status": "pending", "comment": "waiting for them"})
    assert body["ticket"]["status"] == "pending"
    assert body["changes"] == [{"field": "status", "old": "open", "new": "pending"}]
    again = await _patch(stack, token, tid, {"status": "pending"})
    assert again["changes"] == []  # nothing changed, nothing audited

    await _patch(stack, token, tid, {"status": "trash"})
    tag = ticket["subject"].split()[-1]
    assert await _search(stack, token, f"q={tag}") == []  # the default list leaves trash out
    [trashed] = await _search(stack, token, f"q={tag}&status=trash")
    assert trashed["status"] == "trash"

    code, restored = await api_call(
        stack, token, "POST", f"/api/v1/tickets/{tid}/restore", {"comment": "by mistake"}
    )
    assert code == 200, restored
    assert restored["ticket"]["status"] == "pending"  # the status it had before the trash
    assert restored["changes"] == [{"field": "status", "old": "trash", "new": "pending"}]
    code, err = await api_call(stack, token, "POST", f"/api/v1/tickets/{tid}/restore")
    assert code == 409 and err["error"]["code"] == "failed_precondition"

    for status in ("resolved", "no_action", "open"):
        assert (await _patch(stack, token, tid, {"status": status}))["ticket"]["status"] == status
    audit = await _audit(stack, token, tid)
    assert [e["changes"][0]["new"] for e in audit] == [
        "open",
        "no_action",
        "resolved",
        "pending",
        "trash",
        "pending",
        "open",  # the ticket's creation
    ]
    assert audit[-1]["action"] == "create"


async def test_labels_category_priority_and_flags_are_changed_and_listed(stack: Stack) -> None:
    token = await login(stack)
    ticket = await _mail_ticket(stack, token)
    tid = ticket["id"]
    label = f"vip-{uuid.uuid4().hex[:6]}"
    body = await _patch(
        stack,
        token,
        tid,
        {
            "add_labels": [label, "billing"],
            "category": "Invoices",
            "priority": "urgent",
            "add_flags": ["callback"],
        },
    )
    t = body["ticket"]
    assert t["labels"] == [label, "billing"] and t["flags"] == ["callback"]
    assert t["category"] == "Invoices" and t["priority"] == "urgent"
    assert {c["field"] for c in body["changes"]} == {"labels", "category", "priority", "flags"}

    [listed] = await _search(stack, token, f"label={label}")
    assert listed["id"] == tid and listed["priority"] == "urgent"
    assert [r["id"] for r in await _search(stack, token, f"label={label}&priority=urgent")] == [tid]
    assert await _search(stack, token, f"label={label}&priority=low") == []
    assert [r["id"] for r in await _search(stack, token, f"label={label}&category=Invoices")] == [
        tid
    ]

    body = await _patch(
        stack,
        token,
        tid,
        {"remove_labels": ["billing"], "remove_flags": ["callback"], "category": None},
    )
    t = body["ticket"]
    assert t["labels"] == [label] and t["flags"] == [] and t["category"] is None
    detail = await _detail(stack, token, tid)
    assert detail["labels"] == [label] and detail["priority"] == "urgent"


# -- assignment and mentions -----------------------------------------------------------


async def test_assigning_notifies_only_the_assignee_on_the_live_socket(stack: Stack) -> None:
    agent1 = await login(stack, "agent1@demo.example")
    agent2 = await login(stack, "agent2@demo.example")
    trainee = await login(stack, "trainee@demo.example")
    ticket = await _mail_ticket(stack, agent1)
    tid = ticket["id"]

    def about(kind: str) -> Callable[[dict[str, Any]], bool]:
        return lambda m: m["type"] == kind and m["ticket"]["id"] == tid

    async with _live(stack, agent2) as ws2, _live(stack, trainee) as ws_t:
        body = await _patch(stack, agent1, tid, {"assignee_id": OPERATOR_IDS["agent2"]})
        assert body["ticket"]["assignee"] == {"id": OPERATOR_IDS["agent2"], "name": "Ben Agent"}
        assert body["changes"] == [{"field": "assignee", "old": "", "new": "Ben Agent"}]

        note = await _next(ws2, about("notification"))
        assert note["kind"] == "assigned"
        assert note["by"] == {
            "kind": "operator",
            "id": OPERATOR_IDS["agent1"],
            "name": "Aiko Agent",
        }
        assert note["ticket"]["assignee"]["id"] == OPERATOR_IDS["agent2"]
        # every operator of the tenant sees the change; only the assignee is notified
        event = await _next(ws_t, about("ticket.assigned"))
        assert event["assignee"]["id"] == OPERATOR_IDS["agent2"] and event["previous"] is None
        await _nothing_more(ws_t, about("notification"))

    assert [t["id"] for t in await _search(stack, agent1, f"assignee={OPERATOR_IDS['agent2']}")]
    tag = ticket["subject"].split()[-1]
    assert await _search(stack, agent1, f"q={tag}&assignee=none") == []
    body = await _patch(stack, agent1, tid, {"assignee_id": None})
    assert body["ticket"]["assignee"] is None
    assert [t["id"] for t in await _search(stack, agent1, f"q={tag}&assignee=none")] == [tid]
    code, err = await api_call(
        stack, agent1, "PATCH", f"/api/v1/tickets/{tid}", {"assignee_id": str(uuid.uuid4())}
    )
    assert code == 400 and err["error"]["field"] == "assignee_id"


async def test_a_comment_mentioning_an_operator_notifies_that_operator(stack: Stack) -> None:
    agent1 = await login(stack, "agent1@demo.example")
    agent2 = await login(stack, "agent2@demo.example")
    trainee = await login(stack, "trainee@demo.example")
    ticket = await _mail_ticket(stack, agent1)
    tid = ticket["id"]

    def note_for(m: dict[str, Any]) -> bool:
        return m["type"] == "notification" and m["ticket"]["id"] == tid

    async with _live(stack, agent2) as ws2, _live(stack, trainee) as ws_t:
        code, comment = await api_call(
            stack,
            agent1,
            "POST",
            f"/api/v1/tickets/{tid}/comments",
            {"body": "Ben, could you call them back?", "mention_ids": [OPERATOR_IDS["agent2"]]},
        )
        assert code == 201, comment
        assert comment["mentions"] == [{"id": OPERATOR_IDS["agent2"], "name": "Ben Agent"}]
        assert comment["author"]["name"] == "Aiko Agent"
        note = await _next(ws2, note_for)
        assert note["kind"] == "mentioned"
        assert note["comment"] == {"id": comment["id"], "body": "Ben, could you call them back?"}
        assert note["by"]["id"] == OPERATOR_IDS["agent1"]
        event = await _next(
            ws_t, lambda m: m["type"] == "comment.added" and m["ticket"]["id"] == tid
        )
        assert event["comment"]["id"] == comment["id"]
        await _nothing_more(ws_t, note_for)

    detail = await _detail(stack, agent1, tid)
    assert [c["id"] for c in detail["comments"]] == [comment["id"]]
    assert [e["type"] for e in detail["timeline"]] == ["mail", "comment"]


async def test_an_at_login_in_the_comment_body_mentions_that_operator(stack: Stack) -> None:
    agent1 = await login(stack, "agent1@demo.example")
    ticket = await _mail_ticket(stack, agent1)
    code, comment = await api_call(
        stack,
        agent1,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/comments",
        {"body": "@agent2@demo.example could you look at this?"},
    )
    assert code == 201, comment
    assert comment["mentions"] == [{"id": OPERATOR_IDS["agent2"], "name": "Ben Agent"}]


# -- phone memos -------------------------------------------------------------------------


async def test_phone_memos_join_the_timeline_in_time_order_and_open_new_tickets(
    stack: Stack,
) -> None:
    token = await login(stack)
    ticket = await _mail_ticket(stack, token)
    tid = ticket["id"]
    earlier = datetime.fromisoformat(ticket["received_at"]) - timedelta(hours=1)
    code, first = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{tid}/memos",
        {
            "body": "They called before writing.",
            "caller_name": "Hanako Sato",
            "phone": "+81 3-1234-5678",
            "occurred_at": _iso(earlier),
            "duration_s": 120,
        },
    )
    assert code == 201, first
    assert first["message"]["channel"] == "phone"
    assert first["message"]["direction"] == "inbound"
    assert first["message"]["author"]["name"] == "Aiko Agent"
    code, _ = await api_call(
        stack, token, "POST", f"/api/v1/tickets/{tid}/comments", {"body": "noted"}
    )
    assert code == 201
    code, last = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{tid}/memos",
        {"body": "We called back.", "direction": "outbound"},
    )
    assert code == 201, last

    detail = await _detail(stack, token, tid)
    assert [(e["type"], e.get("message", {}).get("id")) for e in detail["timeline"]] == [
        ("phone_memo", first["message"]["id"]),
        ("mail", detail["messages"][1]["id"]),
        ("comment", None),
        ("phone_memo", last["message"]["id"]),
    ]
    assert [e["at"] for e in detail["timeline"]] == sorted(e["at"] for e in detail["timeline"])
    assert detail["message_count"] == 3
    assert detail["messages"][0]["body"] == "They called before writing."

    subject = f"Phone order {_tag()}"
    code, created = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/memos",
        {
            "inbox_id": SALES_ID,
            "subject": subject,
            "body": "Wants 30 units.",
            "phone": "0312345678",
        },
    )
    assert code == 201, created
    assert created["ticket"]["subject"] == subject
    assert created["ticket"]["inbox"] == {"id": SALES_ID, "name": "Sales"}
    assert created["ticket"]["status"] == "open"
    new = await _detail(stack, token, created["ticket"]["id"])
    assert [m["channel"] for m in new["messages"]] == ["phone"]
    assert [e["type"] for e in new["timeline"]] == ["phone_memo"]

    code, err = await api_call(stack, token, "POST", "/api/v1/memos", {"body": "no inbox"})
    assert code == 400 and err["error"]["field"] == "inbox_id"
    code, err = await api_call(
        stack, token, "POST", "/api/v1/memos", {"inbox_id": str(uuid.uuid4()), "body": "x"}
    )
    assert code == 403, err


# -- transfer ----------------------------------------------------------------------------


async def test_transfer_moves_the_ticket_and_refuses_an_inbox_of_another_tenant(
    stack: Stack,
) -> None:
    token = await login(stack)
    other = await create_tenant(stack)
    ticket = await _mail_ticket(stack, token)
    tid = ticket["id"]

    code, err = await api_call(
        stack, token, "POST", f"/api/v1/tickets/{tid}/transfer", {"inbox_id": other.inbox_id}
    )
    assert code == 403 and err["error"]["code"] == "permission_denied"
    assert err["error"]["field"] == "inbox_id"
    assert (await _detail(stack, token, tid))["inbox"]["id"] == SUPPORT_ID

    note = "Customer wants a quote; over to Sales."
    code, body = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{tid}/transfer",
        {"inbox_id": SALES_ID, "note": note},
    )
    assert code == 200, body
    assert body["ticket"]["inbox"] == {"id": SALES_ID, "name": "Sales"}
    assert body["changes"] == [{"field": "inbox", "old": "Support", "new": "Sales"}]
    detail = await _detail(stack, token, tid)
    assert [c["body"] for c in detail["comments"]] == [note]  # the handover note
    entry, created = await _audit(stack, token, tid)
    assert entry["action"] == "transfer" and entry["comment"] == note
    assert created["action"] == "create"
    tag = ticket["subject"].split()[-1]
    assert [t["id"] for t in await _search(stack, token, f"q={tag}&inbox={SALES_ID}")] == [tid]
    assert await _search(stack, token, f"q={tag}&inbox={SUPPORT_ID}") == []

    code, err = await api_call(
        stack, token, "POST", f"/api/v1/tickets/{tid}/transfer", {"inbox_id": SALES_ID}
    )
    assert code == 409, err


# -- bulk --------------------------------------------------------------------------------


async def test_bulk_change_answers_per_ticket_and_changes_only_the_callers_tickets(
    stack: Stack,
) -> None:
    token = await login(stack)
    other = await create_tenant(stack)
    other_token = await login(stack, other.login, other.password)
    mine = [await _mail_ticket(stack, token) for _ in range(2)]
    theirs = await _mail_ticket(stack, other_token, to=other.address)
    ids = [mine[0]["id"], theirs["id"], mine[1]["id"]]

    code, body = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/tickets/bulk",
        {"ticket_ids": ids, "change": {"status": "pending", "add_labels": ["bulk"]}},
    )
    assert code == 200, body
    assert [r["ticket_id"] for r in body["results"]] == ids
    assert [r["ok"] for r in body["results"]] == [True, False, True]
    assert body["results"][1]["error"]["code"] == "not_found"
    assert body["results"][0]["changed"] and body["ok"] == 2 and body["failed"] == 1
    for t in mine:
        d = await _detail(stack, token, t["id"])
        assert d["status"] == "pending" and d["labels"] == ["bulk"]
    d = await _detail(stack, other_token, theirs["id"])
    assert d["status"] == "open" and d["labels"] == []


async def test_bulk_of_1001_tickets_is_refused_and_changes_nothing(stack: Stack) -> None:
    token = await login(stack)
    ticket = await _mail_ticket(stack, token)
    ids = [ticket["id"], *(str(uuid.uuid4()) for _ in range(1000))]
    code, err = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/tickets/bulk",
        {"ticket_ids": ids, "change": {"status": "resolved"}},
    )
    assert code == 400 and err["error"]["field"] == "ticket_ids"
    for bad, field in (
        ({"ticket_ids": [ticket["id"], "nope"], "change": {"status": "resolved"}}, "ticket_ids"),
        ({"ticket_ids": [ticket["id"]] * 2, "change": {"status": "resolved"}}, "ticket_ids"),
        ({"ticket_ids": [ticket["id"]], "change": {"status": "closed"}}, "change.status"),
        ({"ticket_ids": [ticket["id"]], "change": {"reply_fence": 1}}, "change.reply_fence"),
        ({"ticket_ids": [ticket["id"]], "change": {}}, "change"),
        ({"ticket_ids": ticket["id"], "change": {"status": "resolved"}}, "ticket_ids"),
    ):
        code, err = await api_call(stack, token, "POST", "/api/v1/tickets/bulk", bad)
        assert code == 400 and err["error"]["field"] == field, (bad, err)
    d = await _detail(stack, token, ticket["id"])
    assert d["status"] == "open"
    assert [e["action"] for e in await _audit(stack, token, ticket["id"])] == ["create"]


# -- merge and split ---------------------------------------------------------------------


async def test_merge_moves_the_messages_and_split_takes_one_out_again(stack: Stack) -> None:
    token = await login(stack)
    target = await _mail_ticket(stack, token, "First question")
    source = await _mail_ticket(stack, token, "Second question")

    code, body = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{target['id']}/merge",
        {"source_id": source["id"], "comment": "same customer, same matter"},
    )
    assert code == 200, body
    assert body["ticket"]["id"] == target["id"] and body["ticket"]["message_count"] == 2
    merged = await _detail(stack, token, source["id"])
    assert merged["merged_into"] == target["id"]
    tag = source["subject"].split()[-1]
    assert [t["id"] for t in await _search(stack, token, f"q={tag}")] == [target["id"]]
    detail = await _detail(stack, token, target["id"])
    assert len(detail["messages"]) == 2
    code, err = await api_call(
        stack, token, "POST", f"/api/v1/tickets/{target['id']}/merge", {"source_id": target["id"]}
    )
    assert code == 400 and err["error"]["field"] == "source_id"

    moved = next(m for m in detail["messages"] if m["subject"] == source["subject"])
    code, split = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{target['id']}/split",
        {"message_id": moved["id"], "comment": "separate matter after all"},
    )
    assert code == 201, split
    new_id = split["ticket"]["id"]
    assert new_id not in (target["id"], source["id"])
    assert split["ticket"]["subject"] == source["subject"]
    assert [m["id"] for m in (await _detail(stack, token, new_id))["messages"]] == [moved["id"]]
    assert (await _detail(stack, token, target["id"]))["message_count"] == 1
    code, err = await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{target['id']}/split",
        {"message_id": detail["messages"][0]["id"]},
    )
    assert code == 409, err  # its only message
    audit = await _audit(stack, token, target["id"])
    assert [e["action"] for e in audit] == ["split", "merge", "create"]
    assert audit[1]["comment"] == "same customer, same matter"


# -- audit trail -------------------------------------------------------------------------


async def test_the_audit_trail_lists_each_change_with_who_and_the_comment(stack: Stack) -> None:
    agent1 = await login(stack, "agent1@demo.example")
    admin = await login(stack, "admin@demo.example")
    ticket = await _mail_ticket(stack, agent1)
    tid = ticket["id"]
    await _patch(stack, agent1, tid, {"priority": "high", "comment": "VIP customer"})
    await _patch(stack, admin, tid, {"status": "resolved", "comment": "answered by phone"})
    await _patch(stack, agent1, tid, {"add_labels": ["followup"]})

    audit = await _audit(stack, agent1, tid)
    assert [(e["actor"]["name"], e["action"], e["comment"]) for e in audit[:-1]] == [
        ("Aiko Agent", "update", None),
        ("Demo Admin", "update", "answered by phone"),
        ("Aiko Agent", "update", "VIP customer"),
    ]
    assert audit[-1]["action"] == "create"  # the mail opened it
    assert audit[2]["changes"] == [{"field": "priority", "old": "normal", "new": "high"}]
    assert audit[1]["actor"] == {
        "kind": "operator",
        "id": OPERATOR_IDS["admin"],
        "name": "Demo Admin",
    }
    assert all(e["at"].endswith("Z") for e in audit)

    seen: list[str] = []
    cursor = ""
    while True:
        code, page = await api_get(
            stack, agent1, f"/api/v1/tickets/{tid}/audit?limit=1&cursor={cursor}"
        )
        assert code == 200, page
        seen.extend(e["id"] for e in page["items"])
        if not page["next"]:
            break
        cursor = page["next"]
    assert seen == [e["id"] for e in audit]


# -- elapsed time ------------------------------------------------------------------------


async def test_inbox_thresholds_are_set_by_an_admin_and_rows_carry_the_level(
    stack: Stack,
) -> None:
    agent = await login(stack, "agent1@demo.example")
    code, err = await api_call(
        stack,
        agent,
        "PUT",
        f"/api/v1/inboxes/{SUPPORT_ID}/settings",
        {"thresholds": [{"after_minutes": 1, "color": "#ff0000"}]},
    )
    assert code == 403 and err["error"]["code"] == "permission_denied"
    code, settings = await api_get(stack, agent, f"/api/v1/inboxes/{SUPPORT_ID}/settings")
    assert code == 200 and settings["thresholds"] == []

    tenant = await create_tenant(stack)  # its own inbox, so no other test sees the levels
    admin = await login(stack, tenant.login, tenant.password)
    thresholds = [
        {"after_minutes": 30, "color": "#ffcc00"},
        {"after_minutes": 90, "color": "#ff6600"},
        {"after_minutes": 600, "color": "#cc0000"},
    ]
    url = f"/api/v1/inboxes/{tenant.inbox_id}/settings"
    code, body = await api_call(stack, admin, "PUT", url, {"thresholds": thresholds})
    assert code == 200, body
    assert body == {
        "inbox_id": tenant.inbox_id,
        "thresholds": thresholds,
        "new_ticket_after_days": 0,
    }
    code, body = await api_call(stack, admin, "PUT", url, {"new_ticket_after_days": 7})
    assert code == 200 and body["thresholds"] == thresholds and body["new_ticket_after_days"] == 7
    for bad, field in (
        ({"thresholds": [{"after_minutes": m, "color": "#000000"} for m in range(1, 7)]}, None),
        ({"thresholds": [{"after_minutes": 9, "color": "#000"}]}, "thresholds.color"),
        ({"thresholds": [thresholds[1], thresholds[0]]}, None),
        ({"thresholds": [{"after_minutes": 5, "color": "red"}]}, "thresholds.color"),
        ({"thresholds": [{"after_minutes": "5", "color": "#000000"}]}, "thresholds.after_minutes"),
        ({"thresholds": [{"after_minutes": 5}]}, "thresholds.color"),
        ({"new_ticket_after_days": 2**40}, "new_ticket_after_days"),
        ({"colour": "#000000"}, "colour"),
    ):
        code, err = await api_call(stack, admin, "PUT", url, bad)
        assert code == 400, (bad, err)
        assert err["error"]["field"] == (field or "thresholds"), (bad, err)
    code, now = await api_get(stack, admin, url)
    assert now["thresholds"] == thresholds and now["new_ticket_after_days"] == 7

    fresh = await _mail_ticket(stack, admin, to=tenant.address)
    assert (fresh["elapsed_level"], fresh["elapsed_color"]) == (0, None)
    assert 0 <= fresh["elapsed_seconds"] < 600
    code, old = await api_call(
        stack,
        admin,
        "POST",
        "/api/v1/memos",
        {
            "inbox_id": tenant.inbox_id,
            "body": "Called two hours ago.",
            "occurred_at": _iso(datetime.now(UTC) - timedelta(hours=2)),
        },
    )
    assert code == 201, old
    rows = {r["id"]: r for r in await _search(stack, admin, "")}
    row = rows[old["ticket"]["id"]]
    assert row["elapsed_seconds"] >= 7200
    assert (row["elapsed_level"], row["elapsed_color"]) == (2, "#ff6600")
    detail = await _detail(stack, admin, old["ticket"]["id"])
    assert (detail["elapsed_level"], detail["elapsed_color"]) == (2, "#ff6600")


# -- search ------------------------------------------------------------------------------


async def test_search_filters_and_subject_sort_pages_through_everything_once(
    stack: Stack,
) -> None:
    token = await login(stack)
    tag = _tag()
    words = ["delta", "Alpha", "echo", "charlie", "bravo", "foxtrot", "golf"]
    for w in words:
        await asyncio.to_thread(send, stack.smtp_port, make_mail(f"{w} {tag}"))

    async def all_there() -> list[dict[str, Any]]:
        found = await _search(stack, token, f"q={tag}")
        return found if len(found) == len(words) else []

    tickets = {t["subject"].split()[0]: t for t in await eventually(all_there)}
    label = f"l{tag}"
    await _patch(stack, token, tickets["Alpha"]["id"], {"add_labels": [label]})
    await _patch(stack, token, tickets["echo"]["id"], {"add_labels": [label], "status": "pending"})
    await _patch(stack, token, tickets["bravo"]["id"], {"assignee_id": OPERATOR_IDS["agent2"]})
    await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/tickets/{tickets['golf']['id']}/transfer",
        {"inbox_id": SALES_ID},
    )

    def names(rows: list[dict[str, Any]]) -> set[str]:
        return {r["subject"].split()[0] for r in rows}

    assert names(await _search(stack, token, f"q={tag}&label={label}")) == {"Alpha", "echo"}
    assert names(await _search(stack, token, f"q={tag}&status=pending")) == {"echo"}
    assert names(await _search(stack, token, f"q={tag}&status=open")) == set(words) - {"echo"}
    assert len(await _search(stack, token, f"q={tag}&status=open,pending")) == len(words)
    assert names(await _search(stack, token, f"q={tag}&assignee=none")) == set(words) - {"bravo"}
    assert names(await _search(stack, token, f"q={tag}&inbox={SALES_ID}")) == {"golf"}
    assert len(await _search(stack, token, f"q={tag}&inbox={SALES_ID},{SUPPORT_ID}")) == len(words)
    future = _iso(datetime.now(UTC) + timedelta(days=1)).replace("+", "%2B")
    assert await _search(stack, token, f"q={tag}&received_from={future}") == []
    assert len(await _search(stack, token, f"q={tag}&received_to={future}")) == len(words)
    assert names(await _search(stack, token, f"q=ALPHA%20{tag}")) == {"Alpha"}

    pages: list[list[str]] = []
    cursor = ""
    while True:
        code, page = await api_get(
            stack, token, f"/api/v1/tickets?q={tag}&sort=subject&order=asc&limit=2&cursor={cursor}"
        )
        assert code == 200, page
        assert len(page["items"]) <= 2
        pages.append([r["subject"].split()[0] for r in page["items"]])
        if not page["next"]:
            break
        cursor = page["next"]
    flat = [w for p in pages for w in p]
    assert flat == sorted(words, key=str.lower)  # every ticket once, in order
    assert len(pages) == 4
    code, err = await api_get(
        stack, token, f"/api/v1/tickets?q={tag}&sort=subject&order=desc&cursor={cursor or 'x'}"
    )
    assert code == 400 and err["error"]["field"] == "cursor"


async def test_search_finds_japanese_words_in_japanese_mail(stack: Stack) -> None:
    token = await login(stack)
    ticket = await _mail_ticket(
        stack,
        token,
        "お問い合わせ",
        sender="山田 太郎 <taro@example.jp>",
        body="先月分の請求書を再発行していただけますか。\n",
    )
    found = await _search(
        stack, token, "q=%E8%AB%8B%E6%B1%82%E6%9B%B8%E3%82%92%E5%86%8D"
    )  # 請求書を再
    assert ticket["id"] in {t["id"] for t in found}
    assert all(t["id"] != ticket["id"] for t in await _search(stack, token, "q=%E9%A0%98%E5%8F%8E"))


# -- bad input ---------------------------------------------------------------------------


async def test_bad_input_is_refused_with_a_clear_error_and_changes_nothing(stack: Stack) -> None:
    token = await login(stack)
    other = await create_tenant(stack)
    other_token = await login(stack, other.login, other.password)
    ticket = await _mail_ticket(stack, token)
    theirs = await _mail_ticket(stack, other_token, to=other.address)
    tid = ticket["id"]

    async def refused(
        method: str, path: str, body: Any, status: int, code: str, field: str | None
    ) -> None:
        got, err = await api_call(stack, token, method, path, body)
        assert got == status, (method, path, body, err)
        assert err["error"]["code"] == code, (path, body, err)
        assert err["error"].get("field") == field, (path, body, err)
        assert err["error"]["message"]

    for foreign in (str(uuid.uuid4()), theirs["id"]):  # unknown, and another tenant's
        await refused("GET", f"/api/v1/tickets/{foreign}", None, 404, "not_found", "ticket_id")
        await refused(
            "PATCH",
            f"/api/v1/tickets/{foreign}",
            {"status": "resolved"},
            404,
            "not_found",
            "ticket_id",
        )
        await refused(
            "POST",
            f"/api/v1/tickets/{foreign}/comments",
            {"body": "hi"},
            404,
            "not_found",
            "ticket_id",
        )
        await refused(
            "GET", f"/api/v1/tickets/{foreign}/audit", None, 404, "not_found", "ticket_id"
        )
        await refused(
            "POST",
            f"/api/v1/tickets/{tid}/merge",
            {"source_id": foreign},
            404,
            "not_found",
            "source_id",
        )
    await refused("GET", "/api/v1/tickets/not-a-uuid", None, 400, "invalid_argument", "ticket_id")
    await refused(
        "PATCH",
        "/api/v1/tickets/not-a-uuid",
        {"status": "open"},
        400,
        "invalid_argument",
        "ticket_id",
    )
    t = f"/api/v1/tickets/{tid}"
    for body, field in (
        ({"status": "closed"}, "status"),
        ({"status": 3}, "status"),
        ({"priority": "asap"}, "priority"),
        ({"add_labels": "vip"}, "add_labels"),
        ({"add_labels": [1]}, "add_labels"),
        ({"add_labels": ["x" * 51]}, "add_labels"),
        ({"category": ["a"]}, "category"),
        ({"assignee_id": 7}, "assignee_id"),
        ({"assignee_id": "nobody"}, "assignee_id"),
        ({"stauts": "open"}, "stauts"),
        ({"status": "open", "reply_fence": True}, "reply_fence"),
        ({"status": "open", "reply_fence": 0}, "reply_fence"),
        ({"comment": "only a comment"}, None),
        ({"status": "resolved", "comment": "x" * 20_001}, "comment"),
        ({"status": "resolved", "comment": "\ud800"}, "comment"),
    ):
        await refused("PATCH", t, body, 400, "invalid_argument", field)
    await refused("POST", f"{t}/comments", {"body": "x" * 20_001}, 400, "invalid_argument", "body")
    await refused("POST", f"{t}/comments", {"body": "  "}, 400, "invalid_argument", "body")
    await refused(
        "POST",
        f"{t}/comments",
        {"body": "hi", "mention_ids": ["nope"]},
        400,
        "invalid_argument",
        "mention_ids",
    )
    for body, field in (
        ({"body": "x", "duration_s": 2**40}, "duration_s"),
        ({"body": "x", "duration_s": -1}, "duration_s"),
        ({"body": "x", "direction": "sideways"}, "direction"),
        ({"body": "x", "occurred_at": "yesterday"}, "occurred_at"),
        ({"body": "x", "occurred_at": _iso(datetime.now(UTC) + timedelta(days=1))}, "occurred_at"),
        ({"body": "x", "phone": "call me"}, "phone"),
        ({"body": ""}, "body"),
    ):
        await refused("POST", f"{t}/memos", body, 400, "invalid_argument", field)
    await refused("POST", f"{t}/transfer", {}, 400, "invalid_argument", "inbox_id")
    await refused(
        "POST", f"{t}/transfer", {"inbox_id": "sales"}, 400, "invalid_argument", "inbox_id"
    )
    await refused("POST", f"{t}/split", {"message_id": 5}, 400, "invalid_argument", "message_id")
    await refused(
        "POST", f"{t}/split", {"message_id": str(uuid.uuid4())}, 404, "not_found", "message_id"
    )
    for query, field in (
        ("status=closed", "status"),
        ("status=open,closed", "status"),
        ("cursor=not-a-cursor", "cursor"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("sort=colour", "sort"),
        ("order=up", "order"),
        ("view=mine", "view"),
        ("priority=asap", "priority"),
        ("inbox=support", "inbox"),
        ("assignee=someone", "assignee"),
        ("contact=x", "contact"),
        ("received_from=last-week", "received_from"),
        ("q=" + "x" * 201, "q"),
        ("label=" + "x" * 51, "label"),
    ):
        await refused("GET", f"/api/v1/tickets?{query}", None, 400, "invalid_argument", field)
    await refused("GET", f"{t}/audit?cursor=bogus", None, 400, "invalid_argument", "cursor")
    async with aiohttp.ClientSession() as http:
        async with http.patch(
            f"{stack.gateway_url}{t}",
            data=b"{not json",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "invalid_argument"

    detail = await _detail(stack, token, tid)
    assert detail["status"] == "open" and detail["labels"] == [] and detail["priority"] == "normal"
    assert detail["assignee"] is None and detail["category"] is None
    assert detail["comments"] == [] and len(detail["messages"]) == 1
    assert [e["action"] for e in await _audit(stack, token, tid)] == ["create"]
    assert (await _detail(stack, other_token, theirs["id"]))["status"] == "open"
