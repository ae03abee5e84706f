"""Blocked senders and spam (ING-5): their mail is kept and becomes a ticket, but in the
trash — never in the operators' open queue — with the reason on the message."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.helpers import (
    Tenant,
    all_tickets,
    api_call,
    api_get,
    create_tenant,
    eventually,
    login,
    make_mail,
    send,
)

pytestmark = pytest.mark.e2e


async def _trashed(stack: Stack, token: str, subject: str) -> dict[str, Any]:
    async def found() -> list[dict[str, Any]]:
        return [t for t in await all_tickets(stack, token, "trash") if t["subject"] == subject]

    [ticket] = await eventually(found)
    return ticket


async def test_blocked_senders_and_spam_go_to_the_trash(stack: Stack) -> None:
    tenant: Tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    for kind, value in (("domain", "Spammy.Example"), ("pattern", "noreply-*@shop.example")):
        code, block = await api_call(
            stack, token, "POST", "/api/v1/blocklist", {"kind": kind, "value": value}
        )
        assert code == 201, block
    code, _ = await api_call(
        stack, token, "POST", "/api/v1/blocklist", {"kind": "domain", "value": "spammy.example"}
    )
    assert code == 409
    tag = uuid.uuid4().hex[:6]
    mails = {
        f"Blocked domain {tag}": make_mail(
            f"Blocked domain {tag}", sender="x@mail.spammy.example", to=tenant.address
        ),
        f"Blocked pattern {tag}": make_mail(
            f"Blocked pattern {tag}", sender="noreply-42@shop.example", to=tenant.address
        ),
        f"Fine {tag}": make_mail(f"Fine {tag}", sender="customer@shop.example", to=tenant.address),
    }
    spam = make_mail(f"Spam {tag}", sender="someone@else.example", to=tenant.address)
    spam["X-Spam-Flag"] = "YES"
    mails[f"Spam {tag}"] = spam
    for msg in mails.values():
        await asyncio.to_thread(send, stack.smtp_port, msg, [tenant.address])
    for subject, reason in (
        (f"Blocked domain {tag}", "domain:spammy.example"),
        (f"Blocked pattern {tag}", "pattern:noreply-*@shop.example"),
    ):
        ticket = await _trashed(stack, token, subject)
        code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
        assert detail["messages"][0]["blocked_by"] == reason
    ticket = await _trashed(stack, token, f"Spam {tag}")
    code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    assert detail["messages"][0]["spam"] is True
    open_subjects = [t["subject"] for t in await all_tickets(stack, token, "open")]
    assert f"Fine {tag}" in open_subjects or await eventually(
        lambda: _is_open(stack, token, f"Fine {tag}")
    )
    assert not [s for s in open_subjects if s.startswith(("Blocked", "Spam"))]
    code, listing = await api_call(stack, token, "GET", "/api/v1/blocklist")
    assert len(listing["items"]) == 2
    code, _ = await api_call(
        stack, token, "DELETE", f"/api/v1/blocklist/{listing['items'][0]['id']}"
    )
    assert code == 204


async def _is_open(stack: Stack, token: str, subject: str) -> bool:
    return subject in [t["subject"] for t in await all_tickets(stack, token, "open")]


async def test_bad_block_rules_are_refused(stack: Stack) -> None:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    for body, field in [
        ({"kind": "regex", "value": ".*"}, "kind"),
        ({"kind": "address", "value": "not an address"}, "value"),
        ({"kind": "domain", "value": "no_tld"}, "value"),
        ({"kind": "pattern", "value": "plain@x.com"}, "value"),
        ({"kind": "address", "value": "a@b.com", "inbox_id": str(uuid.uuid4())}, "inbox_id"),
    ]:
        code, resp = await api_call(stack, token, "POST", "/api/v1/blocklist", body)
        assert code in (400, 404) and resp["error"]["field"] == field, (body, resp)
    agent = await login(stack)
    code, _ = await api_call(stack, agent, "GET", "/api/v1/blocklist")
    assert code == 403
