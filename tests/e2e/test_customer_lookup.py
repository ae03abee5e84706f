"""Customer data from the tenant's own system (issue 21, DAT-3, RTE-3), through the
gateway against a real HTTP server (tests/lookup_peer.py): the mapped fields beside a
ticket and a contact, cached (the system asked once within the TTL), the customer value
becoming the contact's and moving the ticket in the priority order; a slow, failing or
oversized answer is "unavailable" with its reason and the ticket still opens; loopback
and other private addresses are refused unless allow-listed, as is a redirect to another
host; the secret is never answered; another tenant sees nothing of it."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.e2e.test_metrics import scrape, value
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
from tests.lookup_peer import LookupPeer

pytestmark = pytest.mark.e2e

SECRET = "lookup-secret-7f3a9c"
FIELDS = [
    {"pointer": "/customer/rank", "label_ja": "ランク", "label_en": "Rank"},
    {
        "pointer": "/customer/ltv",
        "label_ja": "累計購入額",
        "label_en": "Lifetime value",
        "type": "number",
    },
    {"pointer": "/customer/missing", "label_ja": "未設定", "label_en": "Unset"},
]


@pytest.fixture
async def peer() -> AsyncIterator[LookupPeer]:
    p = await LookupPeer().start()
    yield p
    await p.stop()


def config(peer: LookupPeer, path: str = "/customers?email={email}", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url_template": peer.url(path),
        "header_name": "X-Api-Key",
        "secret": SECRET,
        "timeout_ms": 1500,
        "cache_ttl_s": 300,
        "fields": FIELDS,
        "value_pointer": "/customer/ltv",
        "allow_hosts": ["127.0.0.1"],
    }
    body.update(over)
    return body


async def admin(stack: Stack) -> tuple[Tenant, str]:
    tenant = await create_tenant(stack)
    return tenant, await login(stack, tenant.login, tenant.password)


async def ticket_from(stack: Stack, token: str, tenant: Tenant, sender: str) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    msg = make_mail(
        f"注文について {tag}", sender=sender, to=tenant.address, body="お願いします。\n"
    )
    await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])

    async def filed() -> dict[str, Any] | None:
        code, page = await api_get(stack, token, f"/api/v1/tickets?q={tag}")
        assert code == 200, page
        return page["items"][0] if page["items"] else None

    return dict(await eventually(filed, timeout=30, every=0.2))


async def data(stack: Stack, token: str, ticket: dict[str, Any]) -> dict[str, Any]:
    code, body = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}/customer-data")
    assert code == 200, body
    return dict(body)


async def test_the_data_is_shown_cached_and_its_customer_value_moves_the_ticket(
    stack: Stack, peer: LookupPeer
) -> None:
    tenant, token = await admin(stack)
    tag = uuid.uuid4().hex[:6]
    small, big = f"small.{tag}@example.jp", f"big.{tag}@example.jp"
    peer.customers[small] = {"customer": {"rank": "Bronze", "ltv": 10}}
    peer.customers[big] = {"customer": {"rank": "ゴールド", "ltv": 50000.4}}
    first = await ticket_from(stack, token, tenant, small)
    second = await ticket_from(stack, token, tenant, big)
    # without a lookup there is nothing to show
    assert (await data(stack, token, second))["configured"] is False

    code, saved = await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer))
    assert code == 200, saved
    assert saved["configured"] and saved["secret_hint"] == "…" + SECRET[-4:]
    code, got = await api_get(stack, token, "/api/v1/customer-lookup")
    assert code == 200 and got == saved
    assert SECRET not in str(got) and "secret" not in got

    shown = await data(stack, token, second)
    assert shown["ok"] and not shown["cached"] and shown["http_status"] == 200, shown
    assert [(f["label_en"], f["value"]) for f in shown["fields"]] == [
        ("Rank", "ゴールド"),
        ("Lifetime value", "50000.4"),
        ("Unset", None),
    ]
    assert shown["customer_value"] == 50000
    assert peer.headers[-1]["X-Api-Key"] == SECRET  # the secret went to the system only
    again = await data(stack, token, second)
    assert again["cached"] and again["fields"] == shown["fields"]
    assert peer.hits[f"/customers?{big}"] == 1  # asked once within the TTL

    # the contact holds the value now, and the contact card reads the same cached data
    code, contact = await api_get(stack, token, f"/api/v1/contacts/{again['contact_id']}")
    assert code == 200 and contact["customer_value"] == 50000, contact
    code, card = await api_get(stack, token, f"/api/v1/contacts/{contact['id']}/customer-data")
    assert code == 200 and card["cached"] and card["fields"] == shown["fields"], card
    assert peer.hits[f"/customers?{big}"] == 1

    # "try it" by the contact: asked again, nothing kept or changed
    peer.customers[big] = {"customer": {"rank": "ゴールド", "ltv": 7}}
    code, tried = await api_call(
        stack, token, "POST", "/api/v1/customer-lookup/try", {"contact_id": contact["id"]}
    )
    assert code == 200 and tried["ok"] and tried["customer_value"] == 7, tried
    assert peer.hits[f"/customers?{big}"] == 2
    assert (await data(stack, token, second))["customer_value"] == 50000  # the kept answer
    code, contact = await api_get(stack, token, f"/api/v1/contacts/{contact['id']}")
    assert contact["customer_value"] == 50000

    # the newer ticket of the valuable customer comes first in the priority order
    await data(stack, token, first)

    async def ordered() -> list[str] | None:
        code, page = await api_get(stack, token, "/api/v1/tickets?sort=priority_score&limit=10")
        assert code == 200, page
        ids = [t["id"] for t in page["items"]]
        return ids if ids[:2] == [second["id"], first["id"]] else None

    await eventually(ordered, timeout=15, every=0.3)
    code, t = await api_get(stack, token, f"/api/v1/tickets/{second['id']}")
    assert code == 200 and t["customer_value"] == 50000

    # a new configuration drops the cache: the system is asked again
    await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer, secret=None))
    assert (await data(stack, token, second))["cached"] is False
    assert peer.hits[f"/customers?{big}"] == 3
    assert peer.headers[-1]["X-Api-Key"] == SECRET  # the stored secret was kept


async def test_failures_are_unavailable_with_the_reason_and_the_ticket_still_opens(
    stack: Stack, peer: LookupPeer
) -> None:
    tenant, token = await admin(stack)
    ticket = await ticket_from(stack, token, tenant, f"slow.{uuid.uuid4().hex[:6]}@example.jp")
    before = await scrape(stack, "tickets")
    code, _ = await api_call(
        stack, token, "PUT", "/api/v1/customer-lookup", config(peer, "/slow?e={email}")
    )
    assert code == 200
    started = time.monotonic()
    slow = await data(stack, token, ticket)
    took = time.monotonic() - started
    assert (slow["ok"], slow["error"]) == (False, "timeout"), slow
    assert took < 6, took  # the lookup's 1.5 s timeout, never the system's 8 s
    code, opened = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 200 and opened["id"] == ticket["id"]

    for path, error, status in (
        ("/fail?e={email}", "http_status", 500),
        ("/badjson?e={email}", "invalid_json", 200),
        ("/html?e={email}", "invalid_json", 200),
        ("/huge?e={email}", "too_large", 200),
        ("/customers?email={email}", "http_status", 404),
    ):
        code, got = await api_call(
            stack,
            token,
            "POST",
            "/api/v1/customer-lookup/try",
            {"email": "a@example.jp", "config": config(peer, path)},
        )
        assert code == 200, got
        assert (got["ok"], got["error"], got["http_status"]) == (False, error, status), (path, got)
        assert got["error_detail"]
    # on-call sees why lookups fail (other tests' lookups may add)
    after = await scrape(stack, "tickets")
    for outcome, n in (("timeout", 1), ("http_status", 2), ("invalid_json", 2), ("too_large", 1)):
        name = "switchboard_customer_lookups_total"
        grew = value(after, name, outcome=outcome) - value(before, name, outcome=outcome)
        assert grew >= n, (outcome, grew)

    # a failure is not cached: the next look asks again
    await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer, "/fail?e={email}"))
    for _ in range(2):
        failed = await data(stack, token, ticket)
        assert (failed["ok"], failed["error"], failed["cached"]) == (False, "http_status", False)
    assert peer.hits["/fail"] == 3

    # a template the contact has no value for
    await api_call(
        stack, token, "PUT", "/api/v1/customer-lookup", config(peer, "/customers?tel={phone}")
    )
    missing = await data(stack, token, ticket)
    assert (missing["ok"], missing["error"]) == (False, "missing"), missing

    # switched off: nothing is asked
    await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer, enabled=False))
    asked = sum(peer.hits.values())
    off = await data(stack, token, ticket)
    assert (off["configured"], off["ok"], off["error"]) == (True, False, "disabled"), off
    assert sum(peer.hits.values()) == asked


async def test_private_addresses_and_other_hosts_are_refused_unless_allowed(
    stack: Stack, peer: LookupPeer
) -> None:
    tenant, token = await admin(stack)
    address = f"private.{uuid.uuid4().hex[:6]}@example.jp"
    peer.customers[address] = {"customer": {"rank": "Silver", "ltv": 5}}
    ticket = await ticket_from(stack, token, tenant, address)

    async def tried(**over: Any) -> dict[str, Any]:
        path = over.pop("path", "/customers?email={email}")
        code, got = await api_call(
            stack,
            token,
            "POST",
            "/api/v1/customer-lookup/try",
            {"email": address, "config": config(peer, path, **over)},
        )
        assert code == 200, got
        return dict(got)

    # 127.0.0.1 without the allow-list: refused before anything is sent
    refused = await tried(allow_hosts=[])
    assert (refused["ok"], refused["error"]) == (False, "refused"), refused
    assert "loopback" in refused["error_detail"]
    # a name that leads to loopback, checked where it resolves
    by_name = await tried(
        allow_hosts=[], url_template=f"http://localhost:{peer.port}/customers?email={{email}}"
    )
    assert by_name["error"] == "refused", by_name
    # the cloud's metadata address
    meta = await tried(url_template="http://169.254.169.254/latest/meta-data?e={email}")
    assert (meta["error"], "link-local" in meta["error_detail"]) == ("refused", True), meta
    assert peer.hits["/customers"] == 0

    # allowed: the answer, with the mapped fields and the raw answer for the administrator
    ok = await tried()
    assert ok["ok"] and ok["customer_value"] == 5 and '"Silver"' in ok["body"], ok
    # a redirect on the same host is followed; to another host it is not
    hop = await tried(path="/hop?email={email}")
    assert hop["ok"] and hop["fields"][0]["value"] == "Silver", hop
    away = await tried(path="/away?email={email}", allow_hosts=["127.0.0.1", "localhost"])
    assert (away["ok"], away["error"]) == (False, "redirect"), away
    assert peer.hits["/customers"] == 2  # the allowed one and the same-host hop only

    # the saved configuration refused the same way for the ticket's panel
    await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer, allow_hosts=[]))
    assert (await data(stack, token, ticket))["error"] == "refused"

    # a placeholder may not choose the host; nonsense is refused naming the field
    for bad, field in (
        ({"url_template": "http://{email}/x"}, "url_template"),
        ({"url_template": "ftp://127.0.0.1/{email}"}, "url_template"),
        ({"url_template": peer.url("/c?x={unknown}")}, "url_template"),
        ({"value_pointer": "/not/mapped"}, "value_pointer"),
        ({"allow_hosts": ["not a host!"]}, "allow_hosts"),
        ({"allow_hosts": ["169.254.169.254"]}, "allow_hosts"),  # the metadata service
        ({"header_name": "Bad Header"}, "header_name"),
        ({"timeout_ms": 20000}, "timeout_ms"),
    ):
        code, err = await api_call(
            stack, token, "PUT", "/api/v1/customer-lookup", config(peer, **bad)
        )
        assert code == 400 and err["error"]["field"] == field, (bad, err)


async def test_only_administrators_configure_and_other_tenants_see_nothing(
    stack: Stack, peer: LookupPeer
) -> None:
    tenant, token = await admin(stack)
    address = f"mine.{uuid.uuid4().hex[:6]}@example.jp"
    peer.customers[address] = {"customer": {"rank": "Gold", "ltv": 1}}
    ticket = await ticket_from(stack, token, tenant, address)
    code, _ = await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer))
    assert code == 200
    assert (await data(stack, token, ticket))["ok"]

    other = await create_tenant(stack, roles=("agent",))
    agent = await login(stack, other.login, other.password)
    code, body = await api_get(stack, agent, "/api/v1/customer-lookup")
    assert code == 403, body
    code, body = await api_call(
        stack, agent, "POST", "/api/v1/customer-lookup/try", {"email": address}
    )
    assert code == 403, body
    for path in (
        f"/api/v1/tickets/{ticket['id']}/customer-data",
        f"/api/v1/contacts/{(await data(stack, token, ticket))['contact_id']}/customer-data",
    ):
        code, body = await api_get(stack, agent, path)
        assert code == 404, (path, body)
    assert peer.hits[f"/customers?{address}"] == 1


async def test_operators_opening_the_same_ticket_at_once_ask_the_system_once(
    stack: Stack, peer: LookupPeer
) -> None:
    tenant, token = await admin(stack)
    address = f"busy.{uuid.uuid4().hex[:6]}@example.jp"
    peer.customers[address] = {"customer": {"rank": "Gold", "ltv": 3}}
    ticket = await ticket_from(stack, token, tenant, address)
    code, _ = await api_call(
        stack, token, "PUT", "/api/v1/customer-lookup", config(peer, "/late?email={email}")
    )
    assert code == 200
    answers = await asyncio.gather(*(data(stack, token, ticket) for _ in range(4)))
    assert all(a["ok"] and a["fields"][0]["value"] == "Gold" for a in answers), answers
    assert peer.hits[f"/late?{address}"] == 1


async def test_a_new_tickets_customer_value_is_looked_up_on_arrival(
    stack: Stack, peer: LookupPeer
) -> None:
    """RTE-3: with a customer value mapped, a new ticket's contact is looked up when the
    ticket is created, so the priority has it while nobody has opened the ticket; without
    a mapped value nothing is asked until the panel is opened."""
    tenant, token = await admin(stack)
    tag = uuid.uuid4().hex[:6]
    vip, plain = f"vip.{tag}@example.jp", f"plain.{tag}@example.jp"
    peer.customers[vip] = {"customer": {"rank": "Platinum", "ltv": 900000}}
    peer.customers[plain] = {"customer": {"rank": "Bronze", "ltv": 3}}
    code, saved = await api_call(stack, token, "PUT", "/api/v1/customer-lookup", config(peer))
    assert code == 200, saved

    ticket = await ticket_from(stack, token, tenant, vip)

    async def valued() -> dict[str, Any] | None:
        code, t = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, t
        return t if t.get("customer_value") == 900000 else None

    await eventually(valued, timeout=20, every=0.3)
    assert peer.hits[f"/customers?{vip}"] == 1
    # the panel then reads the kept answer: the system is not asked again
    shown = await data(stack, token, ticket)
    assert shown["ok"] and shown["cached"] and shown["customer_value"] == 900000, shown
    assert peer.hits[f"/customers?{vip}"] == 1

    # no customer value mapped: a new ticket asks nothing of the system by itself
    code, saved = await api_call(
        stack, token, "PUT", "/api/v1/customer-lookup", config(peer, value_pointer="")
    )
    assert code == 200, saved
    other = await ticket_from(stack, token, tenant, plain)
    await asyncio.sleep(2)
    assert peer.hits[f"/customers?{plain}"] == 0
    assert (await data(stack, token, other))["ok"]
    assert peer.hits[f"/customers?{plain}"] == 1
