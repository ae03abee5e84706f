"""Issue 18 (facts) through the real processes: rules on the sender's contact fields
(custom field, customer value, VIP) and on the detected language; the language and the
required skills on the ticket matched by the assigner (a Japanese mail to the operator who
speaks Japanese, an English one to the one who speaks English, a billing mail to the one
with the skill); the contact's customer value in the priority score and lists sorted by it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.e2e.test_assignment import Team, _presence, _strategy, _team
from tests.e2e.test_routing_rules import _admin, _audit, _mail
from tests.helpers import api_call, api_get, eventually, make_mail, send

pytestmark = pytest.mark.e2e

JAPANESE = "先週注文した商品について、お伺いしたいことがございます。よろしくお願いいたします。\n"
ENGLISH = "Hello, I ordered a jacket last week and I have a question about the delivery.\n"
BILLING = "先月の請求書の金額が注文と違っているようです。ご確認をお願いいたします。\n"


async def _profile(stack: Stack, team: Team, name: str, **fields: Any) -> None:
    code, saved = await api_call(
        stack, team.admin, "PUT", f"/api/v1/operators/{team.ops[name][0]}/routing", fields
    )
    assert code == 200, saved


async def _assigned(stack: Stack, team: Team, subject: str, body: str) -> dict[str, Any]:
    """Send a mail; its ticket once the assigner gave it to someone."""
    tag = uuid.uuid4().hex[:8]
    to = team.tenant.address
    msg = make_mail(f"{subject} {tag}", to=to, body=body)
    await asyncio.to_thread(send, stack.smtp_port, msg, [to])

    async def given() -> dict[str, Any] | None:
        code, page = await api_get(stack, team.admin, f"/api/v1/tickets?q={tag}")
        assert code == 200, page
        items = [t for t in page["items"] if t["assignee"]]
        return items[0] if items else None

    return dict(await eventually(given, timeout=60, every=0.3))


async def test_language_and_skills_choose_the_operator(stack: Stack) -> None:
    team = await _team(stack, ("ann", "bob", "cat"))
    await _profile(stack, team, "ann", languages=["en"])
    await _profile(stack, team, "bob", languages=["ja"])
    await _profile(
        stack, team, "cat", languages=["ja", "en"], skills=[{"name": "billing", "level": 4}]
    )
    rule = {
        "name": "請求は請求担当へ",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "body", "operator": "contains", "value": "請求"}],
        },
        "actions": [{"type": "require_skill", "value": "Billing", "level": 3}],
    }
    code, saved = await api_call(stack, team.admin, "POST", "/api/v1/rules", rule)
    assert code == 201, saved
    assert saved["actions"] == [{"type": "require_skill", "value": "Billing", "level": 3}]
    await _strategy(stack, team, strategy="least_loaded")
    for name in ("ann", "bob", "cat"):
        await _presence(stack, team, name, "online")
    names = {op_id: name for name, (op_id, _) in team.ops.items()}

    billing = await _assigned(stack, team, "請求書について", BILLING)
    assert billing["language"] == "ja"
    assert billing["required_skills"] == [{"name": "Billing", "min_level": 3}]
    assert names[billing["assignee"]["id"]] == "cat"  # the only one with billing 3+

    japanese = await _assigned(stack, team, "商品について", JAPANESE)
    assert japanese["language"] == "ja" and japanese["required_skills"] == []
    assert names[japanese["assignee"]["id"]] == "bob"  # speaks Japanese; cat has one already

    english = await _assigned(stack, team, "About my order", ENGLISH)
    assert english["language"] == "en"
    assert names[english["assignee"]["id"]] == "ann"  # least loaded of those speaking English


async def test_nobody_present_matching_leaves_the_ticket_waiting(stack: Stack) -> None:
    team = await _team(stack, ("ann", "bob"))
    await _profile(stack, team, "ann", languages=["en"])
    await _profile(stack, team, "bob", languages=["ja"])
    await _strategy(stack, team, strategy="least_loaded")
    await _presence(stack, team, "ann", "online")  # bob, who speaks Japanese, is offline
    english = await _assigned(stack, team, "Delivery", ENGLISH)  # sent after: one pass later
    tag = uuid.uuid4().hex[:8]
    msg = make_mail(f"商品 {tag}", to=team.tenant.address, body=JAPANESE)
    await asyncio.to_thread(send, stack.smtp_port, msg, [team.tenant.address])
    await _assigned(stack, team, "Another question", ENGLISH)  # a pass after the Japanese mail

    code, page = await api_get(stack, team.admin, f"/api/v1/tickets?q={tag}")
    assert code == 200, page
    [waiting] = page["items"]
    assert waiting["language"] == "ja" and waiting["assignee"] is None
    assert english["assignee"]["id"] == team.ops["ann"][0]

    await _presence(stack, team, "bob", "online")  # he pulls it

    async def taken() -> Any:
        code, page = await api_get(stack, team.admin, f"/api/v1/tickets?q={tag}")
        return page["items"][0]["assignee"] if code == 200 else None

    assert (await eventually(taken, timeout=60, every=0.3))["id"] == team.ops["bob"][0]


VIP_RULES = [
    {
        "name": "VIP",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "vip", "operator": "equals", "value": True}],
        },
        "actions": [{"type": "add_label", "value": "VIP"}],
    },
    {
        "name": "大口",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [
                {"field": "customer_value", "operator": "gte", "value": 1000},
                {
                    "field": "contact_field",
                    "name": "プラン",
                    "operator": "equals",
                    "value": "ゴールド",
                },
            ],
        },
        "actions": [{"type": "set_priority", "value": "high"}],
    },
    {
        "name": "日本語",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "language", "operator": "in", "value": ["ja"]}],
        },
        "actions": [{"type": "add_label", "value": "日本語"}],
    },
]


async def test_contact_fields_rules_and_the_priority_score(stack: Stack) -> None:
    tenant, token = await _admin(stack)
    for r in VIP_RULES:
        code, body = await api_call(stack, token, "POST", "/api/v1/rules", r)
        assert code == 201, body
    sender = f"Hanako <hanako-{uuid.uuid4().hex[:6]}@customer.example>"

    # the first mail: no contact yet, so no condition on its fields holds
    first = await _mail(stack, token, tenant, "お問い合わせ", sender=sender, body=JAPANESE)
    assert first["labels"] == ["日本語"] and first["priority"] == "normal"
    assert first["customer_value"] is None and first["language"] == "ja"
    assert first["priority_score"] in (60, 61)  # normal: 60 points, and a minute at most
    contact_id = first["contact_id"]

    path = f"/api/v1/contacts/{contact_id}"
    code, err = await api_call(stack, token, "PATCH", path, {"customer_value": -1})
    assert code == 400 and err["error"]["field"] == "customer_value", err
    change = {"customer_value": 1500, "vip": True, "custom": {"プラン": "ゴールド"}}
    code, contact = await api_call(stack, token, "PATCH", path, change)
    assert code == 200, contact
    assert (contact["customer_value"], contact["vip"]) == (1500, True)

    async def first_follows() -> Any:
        code, t = await api_get(stack, token, f"/api/v1/tickets/{first['id']}")
        return t if code == 200 and t["customer_value"] == 1500 else None

    followed = await eventually(first_follows)
    assert followed["priority_score"] >= 1560  # the contact's value counts at once

    second = await _mail(stack, token, tenant, "追加の質問", sender=sender, body=JAPANESE)
    assert sorted(second["labels"]) == ["VIP", "日本語"]
    assert second["priority"] == "high"
    assert second["customer_value"] == 1500
    assert second["priority_score"] in (1740, 1741)  # high 240 + 1500
    audit = await _audit(stack, token, second["id"])
    assert "rule VIP: add label VIP" in audit and "rule 大口: set priority high" in audit

    # an English mail from someone else: a normal ticket without a customer value
    other = await _mail(stack, token, tenant, "Question", body=ENGLISH)
    assert other["language"] == "en" and other["labels"] == []

    # the list by score, highest first, one per page: the cursor keeps the order
    order: list[str] = []
    cursor = ""
    while True:
        code, page = await api_get(
            stack, token, f"/api/v1/tickets?sort=priority_score&limit=1{cursor}"
        )
        assert code == 200, page
        order += [t["id"] for t in page["items"]]
        if not page["next"]:
            break
        cursor = f"&cursor={page['next']}"
    assert order == [second["id"], first["id"], other["id"]]
    code, page = await api_get(stack, token, "/api/v1/tickets?sort=priority_score&order=asc")
    assert [t["id"] for t in page["items"]] == [other["id"], first["id"], second["id"]]


async def test_bad_contact_conditions_are_refused_naming_the_field(stack: Stack) -> None:
    _, token = await _admin(stack)
    rule = {
        "name": "no key",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "contact_field", "operator": "equals", "value": "x"}],
        },
        "actions": [{"type": "require_skill", "value": "billing", "level": 9}],
    }
    code, body = await api_call(stack, token, "POST", "/api/v1/rules", rule)
    assert code == 400 and body["error"]["field"] == "conditions.conditions[0].name", body
    rule["conditions"]["conditions"][0]["name"] = "plan"  # type: ignore[index]
    code, body = await api_call(stack, token, "POST", "/api/v1/rules", rule)
    assert code == 400 and body["error"]["field"] == "actions[0].level", body
    code, rules = await api_get(stack, token, "/api/v1/rules")
    assert code == 200 and rules["rules"] == []


async def test_a_merge_brings_the_customer_value_to_the_sources_tickets(stack: Stack) -> None:
    tenant, token = await _admin(stack)
    valued = await _mail(stack, token, tenant, "Order", sender="a@valued.example", body=ENGLISH)
    plain = await _mail(stack, token, tenant, "Order", sender="b@plain.example", body=ENGLISH)
    target = f"/api/v1/contacts/{valued['contact_id']}"
    code, body = await api_call(stack, token, "PATCH", target, {"customer_value": 300})
    assert code == 200, body
    code, body = await api_call(
        stack, token, "POST", f"{target}/merge", {"source_id": plain["contact_id"]}
    )
    assert code == 200 and body["customer_value"] == 300, body

    async def moved() -> Any:
        code, t = await api_get(stack, token, f"/api/v1/tickets/{plain['id']}")
        return t if code == 200 and t["customer_value"] == 300 else None

    ticket = await eventually(moved)
    assert ticket["contact_id"] == valued["contact_id"]
    assert ticket["priority_score"] >= 360  # normal 60 + 300
