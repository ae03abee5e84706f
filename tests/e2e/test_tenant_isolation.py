"""Every query is scoped by tenant: another tenant's tickets are neither listed, nor
readable by id, nor pushed to this tenant's operators."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import asyncpg
import pytest

from services.accounts.domain import hash_password
from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.helpers import all_tickets, api_get, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e


async def _other_tenant(stack: Stack) -> tuple[str, str]:
    """A second tenant with one inbox and one operator (set up as an administrator would)."""
    tag = uuid.uuid4().hex[:8]
    tenant, inbox, op = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    address, login_name = f"help@{tag}.example", f"boss@{tag}.example"
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_accounts"))
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES ($1,$2,$3)", tenant, tag, tag
            )
            await conn.execute(
                "INSERT INTO inboxes (id, tenant_id, name) VALUES ($1,$2,'Help')", inbox, tenant
            )
            await conn.execute(
                "INSERT INTO inbox_addresses VALUES ($1,$2,$3)", address, tenant, inbox
            )
            await conn.execute(
                "INSERT INTO operators (id, tenant_id, login, display_name, password_hash, roles) "
                "VALUES ($1,$2,$3,'Boss',$4,'{admin}')",
                op,
                tenant,
                login_name,
                hash_password("other-secret"),
            )
    finally:
        await conn.close()
    return address, login_name


async def test_another_tenants_ticket_is_invisible(stack: Stack) -> None:
    address, other_login = await _other_tenant(stack)
    demo_token = await login(stack)
    other_token = await login(stack, other_login, "other-secret")
    subject = f"Secret of the other tenant {uuid.uuid4().hex[:6]}"
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(
            f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {demo_token}"}
        ) as demo_ws:
            await demo_ws.receive(timeout=5)  # hello
            await asyncio.to_thread(
                send, stack.smtp_port, make_mail(subject, to=address), [address]
            )

            async def theirs() -> list[dict]:  # type: ignore[type-arg]
                return [t for t in await all_tickets(stack, other_token) if t["subject"] == subject]

            [ticket] = await eventually(theirs)
            with pytest.raises(TimeoutError):
                while True:  # nothing about it may reach the demo tenant's operator
                    msg = await demo_ws.receive(timeout=1.5)
                    assert subject not in msg.data, json.loads(msg.data)
    assert ticket["inbox"]["name"] == "Help"
    assert all(t["subject"] != subject for t in await all_tickets(stack, demo_token))
    code, body = await api_get(stack, demo_token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 404 and body["error"]["code"] == "not_found"
    code, _ = await api_get(stack, other_token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 200
