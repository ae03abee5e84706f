"""Routing rules (issue 18, RTE-1) on the real stack: a rule made through the API applies
to a mail sent by SMTP — its labels and priority on the ticket and each action in the
ticket's audit trail as "rule <name>: …" — once-per-ticket rules on a customer's reply,
rules answering an operator's change (ticket_changed) up to the depth limit,
the dry run answering which conditions held and changing nothing, versions and order,
and bad input refused with a 400 naming the field and nothing saved. Each test works in
a tenant of its own, so no other test's rules apply to its mail."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.helpers import (
    Tenant,
    api_call,
    api_get,
    create_tenant,
    eventually,
    login,
    make_mail,
    send,
)

pytestmark = pytest.mark.e2e

RETURNS = {
    "name": "返品は優先",
    "triggers": ["new_ticket", "customer_reply"],
    "conditions": {
        "match": "all",
        "conditions": [{"field": "subject", "operator": "contains", "value": "返品"}],
    },
    "actions": [{"type": "add_label", "value": "返品"}, {"type": "set_priority", "value": "high"}],
}


async def _admin(stack: Stack) -> tuple[Tenant, str]:
    tenant = await create_tenant(stack)
    return tenant, await login(stack, tenant.login, tenant.password)


async def _mail(
    stack: Stack, token: str, tenant: Tenant, subject: str, **kw: Any
) -> dict[str, Any]:
    """Send a mail to the tenant's inbox; its ticket once filed."""
    tag = uuid.uuid4().hex[:10]
    msg = make_mail(f"{subject} {tag}", to=tenant.address, **kw)
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])

    async def found() -> list[dict[str, Any]]:
        code, body = await api_get(
            stack, token, f"/api/v1/tickets?q={tag}&status=open,pending,resolved,no_action,trash"
        )
        assert code == 200, body
        return list(body["items"])

    [ticket] = await eventually(found)
    ticket["_message_id"] = msg["Message-ID"]
    return ticket


async def _audit(stack: Stack, token: str, ticket_id: str) -> list[str]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket_id}/audit?limit=200")
    assert code == 200, body
    return [e["comment"] for e in body["items"] if e["comment"]]


async def test_a_rule_labels_and_prioritises_mail_sent_by_smtp_and_says_so_on_the_ticket(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    code, rule = await api_call(stack, token, "POST", "/api/v1/rules", RETURNS)
    assert code == 201, rule
    assert (rule["version"], rule["position"], rule["enabled"]) == (1, 0, True)

    ticket = await _mail(stack, token, tenant, "商品の返品について")
    assert ticket["labels"] == ["返品"]
    assert ticket["priority"] == "high"
    audit = await _audit(stack, token, ticket["id"])
    assert "rule 返品は優先: add label 返品" in audit
    assert "rule 返品は優先: set priority high" in audit

    other = await _mail(stack, token, tenant, "Question about my order")
    assert other["labels"] == []
    assert other["priority"] == "normal"
    assert not [c for c in await _audit(stack, token, other["id"]) if c.startswith("rule ")]


async def test_rules_reading_headers_and_attachments_fetch_them_from_the_stored_mail(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    rule = {
        "name": "請求書",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [
                {"field": "attachment_type", "operator": "equals", "value": "application/pdf"},
                {"field": "attachment_name", "operator": "contains", "value": "請求書"},
                {"field": "header", "name": "X-Mailer", "operator": "starts_with", "value": "acme"},
            ],
        },
        "actions": [{"type": "set_category", "value": "請求"}, {"type": "require_approval"}],
    }
    code, body = await api_call(stack, token, "POST", "/api/v1/rules", rule)
    assert code == 201, body

    async def mail(mailer: str) -> dict[str, Any]:
        tag = uuid.uuid4().hex[:10]
        msg = make_mail(f"Invoice {tag}", to=tenant.address)
        msg["X-Mailer"] = mailer
        msg.add_attachment(
            b"%PDF-1.4\n", maintype="application", subtype="pdf", filename="請求書.pdf"
        )
        await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])

        async def found() -> list[dict[str, Any]]:
            code, body = await api_get(stack, token, f"/api/v1/tickets?q={tag}")
            assert code == 200, body
            return list(body["items"])

        [ticket] = await eventually(found)
        return ticket

    matched = await mail("ACME Mailer 2.0")
    assert matched["category"] == "請求"
    assert matched["labels"] == ["approval-required"]
    assert "rule 請求書: require approval (label approval-required)" in await _audit(
        stack, token, matched["id"]
    )
    other = await mail("Thunderbird")
    assert other["category"] in ("", None) and other["labels"] == []


async def test_once_per_ticket_rules_run_once_and_others_on_every_customer_reply(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    once = {
        "name": "first contact",
        "triggers": ["new_ticket", "customer_reply"],
        "once_per_ticket": True,
        "actions": [{"type": "add_label", "value": "greeted"}],
    }
    replies = {
        "name": "replies urgent",
        "triggers": ["customer_reply"],
        "actions": [{"type": "set_priority", "value": "urgent"}, {"type": "stop"}],
    }
    never = {
        "name": "never",
        "triggers": ["customer_reply"],
        "actions": [{"type": "add_label", "value": "late"}],
    }
    for r in (once, replies, never):
        code, body = await api_call(stack, token, "POST", "/api/v1/rules", r)
        assert code == 201, body
    ticket = await _mail(stack, token, tenant, "Hello")
    assert ticket["labels"] == ["greeted"] and ticket["priority"] == "normal"

    reply = make_mail(f"Re: {ticket['subject']}", to=tenant.address)
    reply["In-Reply-To"] = ticket["_message_id"]
    reply["References"] = ticket["_message_id"]
    await asyncio.to_thread(send, stack.smtp_port, reply, [tenant.address])

    async def urgent() -> dict[str, Any] | None:
        code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, body
        t = body.get("ticket", body)
        return t if t["priority"] == "urgent" else None

    after = await eventually(urgent)
    assert after["labels"] == ["greeted"]  # "late" never: the rule before it stopped
    audit = await _audit(stack, token, ticket["id"])
    assert audit.count("rule first contact: add label greeted") == 1
    assert "rule replies urgent: set priority urgent" in audit
    assert "rule replies urgent: stop further rules" in audit


async def test_dry_run_answers_which_conditions_held_and_changes_nothing(stack: Stack) -> None:
    tenant, token = await _admin(stack)
    ticket = await _mail(
        stack, token, tenant, "返品の相談", body="注文番号: 12345 の商品を返品したいです。\n"
    )
    unsaved = {
        "name": "try",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [
                {"field": "subject", "operator": "contains", "value": "返品"},
                {
                    "match": "any",
                    "conditions": [
                        {
                            "field": "sender_domain",
                            "operator": "equals",
                            "value": "nowhere.example",
                        },
                        {"field": "body", "operator": "regex", "value": "注文番号[:：]?\\s*\\d+"},
                    ],
                },
                {
                    "field": "header",
                    "name": "Message-ID",
                    "operator": "contains",
                    "value": "@example.com",
                },
            ],
        },
        "actions": [
            {"type": "add_label", "value": "返品"},
            {"type": "set_priority", "value": "urgent"},
        ],
    }
    code, run = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/rules/dry-run",
        {"ticket_number": ticket["number"], "rule": unsaved},
    )
    assert code == 200, run
    assert run["ticket"]["number"] == ticket["number"]
    [result] = run["results"]
    assert result["matched"] is True
    held = {c["path"]: (c["description"], c["held"]) for c in result["conditions"]}
    assert held["conditions.conditions[0]"] == ('subject contains "返品"', True)
    assert held["conditions.conditions[1].conditions[0]"][1] is False
    assert held["conditions.conditions[1].conditions[1]"][1] is True
    assert held["conditions.conditions[2]"][1] is True
    assert result["actions"] == ["add label 返品", "set priority urgent"]

    # a saved rule that does not match: which condition failed
    code, saved = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/rules",
        {
            **RETURNS,
            "name": "pdf",
            "conditions": {
                "match": "all",
                "conditions": [{"field": "has_attachments", "operator": "equals", "value": True}],
            },
        },
    )
    assert code == 201, saved
    code, run2 = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/rules/dry-run",
        {"ticket_number": ticket["number"], "rule_id": saved["id"]},
    )
    assert code == 200, run2
    assert run2["results"][0]["matched"] is False
    assert run2["results"][0]["conditions"][1] == {
        "path": "conditions.conditions[0]",
        "description": "has attachments equals true",
        "held": False,
    }
    code, now = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    t = now.get("ticket", now)
    assert (t["labels"], t["priority"]) == ([], "normal")  # the dry runs changed nothing

    code, missing = await api_call(
        stack, token, "POST", "/api/v1/rules/dry-run", {"ticket_number": 999999, "rule": unsaved}
    )
    assert code == 404 and missing["error"]["field"] == "ticket_number", missing
    broken = {
        **unsaved,
        "conditions": {
            "match": "all",
            "conditions": [{"field": "body", "operator": "regex", "value": "(?=x)"}],
        },
    }
    code, refused = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/rules/dry-run",
        {"ticket_number": ticket["number"], "rule": broken},
    )
    assert code == 400 and refused["error"]["field"] == "rule.conditions.conditions[0].value", (
        refused
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "conditions": {
                    "match": "all",
                    "conditions": [{"field": "shoe_size", "operator": "equals", "value": "x"}],
                }
            },
            "conditions.conditions[0].field",
        ),
        (
            {
                "conditions": {
                    "match": "all",
                    "conditions": [{"field": "subject", "operator": "gt", "value": "x"}],
                }
            },
            "conditions.conditions[0].operator",
        ),
        (
            {
                "conditions": {
                    "match": "any",
                    "conditions": [{"field": "body", "operator": "regex", "value": "(a)\\1"}],
                }
            },
            "conditions.conditions[0].value",
        ),
        (
            {
                "conditions": {
                    "match": "any",
                    "conditions": [{"field": "body", "operator": "regex", "value": "(?<=x)y"}],
                }
            },
            "conditions.conditions[0].value",
        ),
        ({"actions": [{"type": "set_status", "value": "closed"}]}, "actions[0].value"),
        ({"actions": [{"type": "assign", "value": str(uuid.uuid4())}]}, "actions[0].value"),
        ({"inbox_id": str(uuid.uuid4())}, "inbox_id"),
        ({"triggers": ["whenever"]}, "triggers[0]"),
        ({"colour": "red"}, "colour"),
    ],
)
async def test_bad_rules_are_refused_naming_the_field_and_nothing_is_saved(
    stack: Stack, change: dict[str, Any], field: str
) -> None:
    _tenant, token = await _admin(stack)
    code, body = await api_call(stack, token, "POST", "/api/v1/rules", {**RETURNS, **change})
    assert code == 400, body
    assert body["error"]["field"] == field, body
    code, listed = await api_get(stack, token, "/api/v1/rules")
    assert code == 200 and listed["rules"] == []


async def test_versions_order_and_conflicts(stack: Stack) -> None:
    _tenant, token = await _admin(stack)
    made = []
    for name in ("a", "b", "c"):
        code, body = await api_call(
            stack, token, "POST", "/api/v1/rules", {**RETURNS, "name": name}
        )
        assert code == 201, body
        made.append(body)
    a, b, c = made
    code, edited = await api_call(
        stack,
        token,
        "PUT",
        f"/api/v1/rules/{a['id']}",
        {**RETURNS, "name": "a2", "enabled": False, "version": 1},
    )
    assert code == 200 and edited["version"] == 2 and edited["enabled"] is False, edited
    code, stale = await api_call(
        stack, token, "PUT", f"/api/v1/rules/{a['id']}", {**RETURNS, "name": "a3", "version": 1}
    )
    assert code == 409 and stale["error"]["field"] == "version", stale
    code, versions = await api_get(stack, token, f"/api/v1/rules/{a['id']}/versions")
    assert [v["name"] for v in versions["versions"]] == ["a2", "a"]

    code, ordered = await api_call(
        stack, token, "PUT", "/api/v1/rules/order", {"rule_ids": [c["id"], a["id"], b["id"]]}
    )
    assert code == 200, ordered
    assert [(r["name"], r["position"]) for r in ordered["rules"]] == [("c", 0), ("a2", 1), ("b", 2)]
    code, bad = await api_call(
        stack, token, "PUT", "/api/v1/rules/order", {"rule_ids": [c["id"], a["id"]]}
    )
    assert code == 400 and bad["error"]["field"] == "rule_ids", bad

    code, _ = await api_call(stack, token, "DELETE", f"/api/v1/rules/{c['id']}")
    assert code == 204
    code, listed = await api_get(stack, token, "/api/v1/rules")
    assert [(r["name"], r["position"]) for r in listed["rules"]] == [("a2", 0), ("b", 1)]
    code, _gone = await api_get(stack, token, f"/api/v1/rules/{c['id']}")
    assert code == 404

    # every edit is in the operation log, naming the rule
    async def logged() -> list[str] | None:
        code, body = await api_get(stack, token, f"/api/v1/operations?target={a['id']}")
        assert code == 200, body
        actions = sorted(e["action"] for e in body["items"])
        return actions if len(actions) >= 2 else None

    assert await eventually(logged) == ["updateRule", "updateRule"]  # the 200 and the 409

    async def deleted() -> list[str] | None:
        code, body = await api_get(stack, token, "/api/v1/operations?action=deleteRule")
        assert code == 200, body
        return [e["target"] for e in body["items"]] or None

    assert await eventually(deleted) == [c["id"]]

    # another tenant sees none of them
    _, other = await _admin(stack)
    code, _theirs = await api_get(stack, other, f"/api/v1/rules/{a['id']}")
    assert code == 404
    code, _agent_view = await api_get(stack, await login(stack), "/api/v1/rules")
    assert code == 403  # the demo agent has no manage_rules


async def test_ticket_changed_rules_answer_an_operators_change_and_stop_at_the_depth_limit(
    stack: Stack,
) -> None:
    """A label an operator adds makes a rule raise the priority; two rules that undo each
    other's change (ping → pong → ping …) stop after MAX_DEPTH rounds."""
    tenant, token = await _admin(stack)
    rules = [
        {
            "name": "vip urgent",
            "triggers": ["ticket_changed"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "labels", "operator": "equals", "value": "VIP"}],
            },
            "actions": [{"type": "set_priority", "value": "urgent"}],
        },
        {
            "name": "ping",
            "triggers": ["ticket_changed"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "labels", "operator": "equals", "value": "ping"}],
            },
            "actions": [
                {"type": "remove_label", "value": "ping"},
                {"type": "add_label", "value": "pong"},
                {"type": "stop"},
            ],
        },
        {
            "name": "pong",
            "triggers": ["ticket_changed"],
            "conditions": {
                "match": "all",
                "conditions": [{"field": "labels", "operator": "equals", "value": "pong"}],
            },
            "actions": [
                {"type": "remove_label", "value": "pong"},
                {"type": "add_label", "value": "ping"},
                {"type": "stop"},
            ],
        },
    ]
    for r in rules:
        code, body = await api_call(stack, token, "POST", "/api/v1/rules", r)
        assert code == 201, body
    ticket = await _mail(stack, token, tenant, "会員です")
    assert ticket["priority"] == "normal"  # ticket_changed rules do not run on a new mail

    async def state() -> dict[str, Any]:
        code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, body
        return dict(body.get("ticket", body))

    code, body = await api_call(
        stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"add_labels": ["vip"]}
    )
    assert code == 200, body

    async def urgent() -> dict[str, Any] | None:
        t = await state()
        return t if t["priority"] == "urgent" else None

    await eventually(urgent)
    assert "rule vip urgent: set priority urgent" in await _audit(stack, token, ticket["id"])

    code, body = await api_call(
        stack, token, "PATCH", f"/api/v1/tickets/{ticket['id']}", {"add_labels": ["ping"]}
    )
    assert code == 200, body

    def rounds(audit: list[str]) -> int:
        return sum(
            1 for c in audit if c.startswith(("rule ping: add label", "rule pong: add label"))
        )

    async def three() -> bool:
        return rounds(await _audit(stack, token, ticket["id"])) >= 3

    await eventually(three)
    await asyncio.sleep(2)  # a fourth round, were there one, would have come by now
    audit = await _audit(stack, token, ticket["id"])
    assert rounds(audit) == 3, audit
    t = await state()
    assert "pong" in t["labels"] and "ping" not in t["labels"]  # ping → pong → ping → pong


async def test_business_hours_conditions_read_the_tenants_own_calendars(stack: Stack) -> None:
    """A condition on arrival inside/outside business hours is answered by the tenant's
    SLA calendar (issue 18: the rules' in_hours wired to the calendars); another tenant's
    calendar is unknown to it, so a rule naming it is refused when saved."""
    from datetime import UTC, datetime

    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    today = datetime.now(UTC).weekday()
    elsewhere = days[(today + 3) % 7]  # a whole day, far from now in every zone

    async def calendar(token: str, name: str, slot_days: list[str]) -> str:
        body = {
            "name": name,
            "time_zone": "UTC",
            "public_holidays": "",
            "slots": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in slot_days],
        }
        code, made = await api_call(stack, token, "POST", "/api/v1/calendars", body)
        assert code == 201, made
        return str(made["id"])

    tenant, token = await _admin(stack)
    always = await calendar(token, "いつでも", days)
    closed_now = await calendar(token, "別の日", [elsewhere])
    _, stranger_token = await _admin(stack)
    strangers = await calendar(stranger_token, "他社", days)

    def rule(name: str, operator: str, calendar_id: str, label: str) -> dict[str, Any]:
        return {
            "name": name,
            "triggers": ["new_ticket"],
            "conditions": {
                "match": "all",
                "conditions": [
                    {"field": "business_hours", "operator": operator, "value": calendar_id}
                ],
            },
            "actions": [{"type": "add_label", "value": label}],
        }

    for r in (
        rule("営業時間内", "inside", always, "営業時間内"),
        rule("closed", "inside", closed_now, "inside-closed"),
        rule("after hours", "outside", closed_now, "outside-closed"),
    ):
        code, made = await api_call(stack, token, "POST", "/api/v1/rules", r)
        assert code == 201, made
    code, refused = await api_call(
        stack, token, "POST", "/api/v1/rules", rule("other tenant", "inside", strangers, "x")
    )
    assert code == 400, refused
    assert refused["error"]["field"] == "conditions.conditions[0].value", refused

    ticket = await _mail(stack, token, tenant, "営業時間の確認")
    assert sorted(ticket["labels"]) == sorted(["営業時間内", "outside-closed"])
