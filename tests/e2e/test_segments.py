"""Segments (issue 20, OUT-6) through the gateway: each field and op against a small known
set of contacts, the live count equal to the audience ResolveAudience answers, last contact
kept from mail filed to a contact's ticket, and a bad condition refused naming it with
nothing stored."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from switchboard.v1 import tickets_pb2, tickets_pb2_grpc

from services.devstack.stack import Stack
from services.runtime.identity import Identity
from tests.helpers import api_call, api_get, create_tenant, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e


async def _audience(stack: Stack, tenant_id: str, segment_id: str) -> set[str]:
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.config.ports.grpc['tickets']}"
    ) as channel:
        stub = tickets_pb2_grpc.TicketsServiceStub(channel)
        out: set[str] = set()
        async for batch in stub.ResolveAudience(
            tickets_pb2.ResolveAudienceRequest(segment_id=segment_id),
            metadata=Identity(tenant_id).metadata(),
            timeout=30,
        ):
            out |= {m.address for m in batch.members}
        return out


async def test_each_op_counts_what_the_audience_holds(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    tag = uuid.uuid4().hex[:6]
    code, _ = await api_call(
        stack,
        token,
        "PUT",
        "/api/v1/contact-fields",
        {"fields": [{"key": "plan", "label": "プラン", "type": "text"},
                    {"key": "spend", "label": "購入額", "type": "number"},
                    {"key": "renewal", "label": "更新日", "type": "date"}]},
    )  # fmt: skip
    assert code == 200
    code, fair = await api_call(stack, token, "POST", "/api/v1/contact-lists", {"name": "fair"})
    code, other = await api_call(stack, token, "POST", "/api/v1/contact-lists", {"name": "o"})
    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    a, b, c, d = (f"{n}.{tag}@{dom}" for n, dom in
                  (("ann", "acme.co.jp"), ("bob", "acme.co.jp"), ("cho", "example.com"),
                   ("dan", "example.org")))  # fmt: skip
    people = [
        {"address": a, "name": "Ann Sato", "time_zone": "Asia/Tokyo", "language": "ja",
         "labels": ["vip", "fair"], "custom": {"plan": "pro", "spend": "1200", "renewal": soon}},
        {"address": b, "name": "Bob", "language": "en", "labels": ["fair"],
         "custom": {"plan": "free", "spend": "80"}},
        {"address": c, "name": "Cho Sato", "time_zone": "Europe/Paris",
         "custom": {"plan": "pro-trial", "renewal": "2020-01-31"}},
    ]  # fmt: skip
    code, added = await api_call(
        stack, token, "POST", f"/api/v1/contact-lists/{fair['id']}/members", {"contacts": people}
    )
    assert added["added"] == 3, added
    await api_call(
        stack,
        token,
        "POST",
        f"/api/v1/contact-lists/{other['id']}/members",
        {"contacts": [{"address": c}]},
    )
    # dan writes in: a contact with a ticket, its last contact now
    msg = make_mail("質問", sender=f"Dan <{d}>", to=tenant.address)
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])

    async def dan_contacted() -> dict[str, Any] | None:
        _, page = await api_get(stack, token, f"/api/v1/contacts?q={d}")
        found = [x for x in page.get("items", []) if d in x["addresses"]]
        return found[0] if found and found[0]["last_contact_at"] else None

    dan = await eventually(dan_contacted, timeout=30, every=0.25)
    assert datetime.fromisoformat(dan["last_contact_at"]) > datetime.now(UTC) - timedelta(hours=1)

    everyone = {a, b, c, d}
    cases: list[tuple[str, list[tuple[str, str, Any]], set[str]]] = [
        ("all", [], everyone),
        ("all", [("address", "eq", a.upper())], {a}),
        ("all", [("domain", "eq", "ACME.co.jp")], {a, b}),
        ("all", [("domain", "ne", "acme.co.jp")], {c, d}),
        ("all", [("name", "contains", "sato")], {a, c}),
        ("all", [("name", "starts_with", "Bo")], {b}),
        ("all", [("time_zone", "eq", "Asia/Tokyo")], {a}),
        ("all", [("time_zone", "not_exists", None)], {b, d}),
        ("all", [("language", "eq", "en")], {b}),
        ("all", [("label", "has", "fair")], {a, b}),
        ("all", [("label", "not_has", "vip")], {b, c, d}),
        ("all", [("list", "has", fair["id"])], {a, b, c}),
        ("all", [("list", "not_has", fair["id"])], {d}),
        ("all", [("custom.plan", "eq", "pro")], {a}),
        ("all", [("custom.plan", "ne", "pro")], {b, c, d}),
        ("all", [("custom.plan", "starts_with", "pro")], {a, c}),
        ("all", [("custom.plan", "exists", None)], {a, b, c}),
        ("all", [("custom.spend", "gt", 100)], {a}),
        ("all", [("custom.spend", "lte", "1200")], {a, b}),
        ("all", [("custom.renewal", "lt", "2021-01-01")], {c}),
        ("all", [("custom.renewal", "within_days", 30)], {a}),
        ("all", [("last_contact_at", "within_days", 7)], {d}),
        ("all", [("last_contact_at", "not_within_days", 7)], {a, b, c}),
        ("all", [("created_at", "within_days", 1)], everyone),
        ("all", [("created_at", "lt", "2000-01-01")], set()),
        ("all", [("label", "has", "fair"), ("custom.spend", "gte", 80),
                 ("language", "ne", "ja")], {b}),
        ("any", [("address", "eq", a), ("list", "has", other["id"]),
                 ("last_contact_at", "exists", None)], {a, c, d}),
    ]  # fmt: skip
    for match, conditions, expected in cases:
        body = {
            "match": match,
            "conditions": [{"field": f, "op": o, "value": v} for f, o, v in conditions],
        }
        code, live = await api_call(stack, token, "POST", "/api/v1/segments/count", body)
        assert code == 200, (conditions, live)
        assert live["count"] == len(expected), (conditions, live)
        code, seg = await api_call(stack, token, "POST", "/api/v1/segments", {"name": "s", **body})
        assert code == 201, seg
        assert await _audience(stack, tenant.tenant_id, seg["id"]) == expected, conditions
        code, saved = await api_get(stack, token, f"/api/v1/segments/{seg['id']}/count")
        assert saved["count"] == len(expected) and saved["counted_at"]


async def test_a_bad_condition_is_refused_naming_it_and_nothing_is_stored(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    good = {"field": "name", "op": "eq", "value": "x"}
    bad = [
        ({"field": "shoe_size", "op": "eq", "value": "x"}, "conditions[1].field"),
        ({"field": "name", "op": "gt", "value": "x"}, "conditions[1].op"),
        ({"field": "created_at", "op": "gt", "value": "yesterday"}, "conditions[1].value"),
        ({"field": "last_contact_at", "op": "within_days", "value": -3}, "conditions[1].value"),
        ({"field": "list", "op": "has", "value": "not-an-id"}, "conditions[1].value"),
        ({"field": "custom.Bad-Key", "op": "eq", "value": "x"}, "conditions[1].field"),
    ]
    for condition, field in bad:
        body = {"name": "s", "match": "all", "conditions": [good, condition]}
        code, answer = await api_call(stack, token, "POST", "/api/v1/segments", body)
        assert code == 400 and answer["error"]["field"] == field, (condition, answer)
        code, answer = await api_call(stack, token, "POST", "/api/v1/segments/count", body)
        assert code == 400 and answer["error"]["field"] == field, (condition, answer)
    code, listed = await api_get(stack, token, "/api/v1/segments")
    assert listed == {"segments": []}
    code, seg = await api_call(
        stack, token, "POST", "/api/v1/segments", {"name": "s", "conditions": [good]}
    )
    assert code == 201 and seg["match"] == "all"
    code, answer = await api_call(
        stack,
        token,
        "PATCH",
        f"/api/v1/segments/{seg['id']}",
        {"name": "renamed", "conditions": [good, bad[0][0]]},
    )
    assert code == 400 and answer["error"]["field"] == "conditions[1].field"
    code, kept = await api_get(stack, token, f"/api/v1/segments/{seg['id']}")
    assert kept["name"] == "s" and kept["conditions"] == [good]
    code, changed = await api_call(
        stack, token, "PATCH", f"/api/v1/segments/{seg['id']}", {"match": "any"}
    )
    assert code == 200 and changed["match"] == "any" and changed["conditions"] == [good]
    other = await login(stack, (t := await create_tenant(stack)).login, t.password)
    code, _ = await api_get(stack, other, f"/api/v1/segments/{seg['id']}")
    assert code == 404
    code, _ = await api_get(stack, other, f"/api/v1/segments/{seg['id']}/count")
    assert code == 404
    code, _ = await api_call(stack, token, "DELETE", f"/api/v1/segments/{seg['id']}")
    assert code == 204
    code, _ = await api_get(stack, token, f"/api/v1/segments/{seg['id']}")
    assert code == 404
