"""Every query is scoped by tenant: another tenant's tickets are neither listed, nor
readable by id, nor pushed to this tenant's operators."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.helpers import all_tickets, api_get, create_tenant, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e


async def test_another_tenants_ticket_is_invisible(stack: Stack) -> None:
    other = await create_tenant(stack)
    address = other.address
    demo_token = await login(stack)
    other_token = await login(stack, other.login, other.password)
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
