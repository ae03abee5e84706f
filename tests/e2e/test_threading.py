"""Threading (TKT-1) and keyword search (TKT-10) through the real stack: customer mail over
SMTP, routing asking tickets where it belongs, the ticket list and detail over HTTP.

Every test works in a tenant of its own, so its tickets and numbers are its own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from email.utils import make_msgid
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
from switchboard.v1 import common_pb2, tickets_pb2, tickets_pb2_grpc

from services.devstack.stack import Stack
from services.runtime.db import with_database
from services.runtime.identity import Identity
from tests import shared
from tests.helpers import Tenant, api_get, create_tenant, eventually, make_mail, send
from tests.shared import CORPORA

pytestmark = pytest.mark.e2e

JAPANESE = CORPORA / "mikel-mail" / "spec" / "fixtures" / "emails" / "multi_charset"


class Desk:
    """One tenant as its operator sees it: the API, and the tickets gRPC service."""

    def __init__(self, stack: Stack, tenant: Tenant, token: str, operator: dict[str, Any]):
        self.stack, self.tenant, self.token, self.operator = stack, tenant, token, operator
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.grpc['tickets']}")
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(self._channel)
        self.md = Identity(  # as the gateway sends it for the tenant's administrator
            tenant.tenant_id,
            operator["id"],
            ("admin",),
            display_name=operator["display_name"],
            permissions=frozenset(operator["permissions"]),
        ).metadata()

    def mail(self, subject: str, *, sender: str = "Taro <taro@customer.example>", **kw: Any):
        return make_mail(subject, sender=sender, to=self.tenant.address, **kw)

    async def send(self, msg: Any, envelope_from: str = "taro@customer.example") -> None:
        await asyncio.to_thread(send, self.stack.smtp_port, msg, [self.tenant.address])

    async def tickets_list(self, query: str = "") -> list[dict[str, Any]]:
        code, body = await api_get(self.stack, self.token, f"/api/v1/tickets?limit=200&{query}")
        assert code == 200, body
        return list(body["items"])

    async def ticket_with(self, subject: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            found = [
                t
                for t in await self.tickets_list("status=open,pending,resolved,trash")
                if t["subject"] == subject
            ]
            return found[0] if found else None

        return await eventually(probe)

    async def detail(self, ticket_id: str) -> dict[str, Any]:
        code, body = await api_get(self.stack, self.token, f"/api/v1/tickets/{ticket_id}")
        assert code == 200, body
        return dict(body)

    async def message_count(self, ticket_id: str, n: int) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            d = await self.detail(ticket_id)
            return d if len(d["messages"]) >= n else None

        return await eventually(probe)

    async def set_status(self, ticket_id: str, status: int) -> None:
        await self.tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(ticket_id=ticket_id, status=status), metadata=self.md
        )

    async def close(self) -> None:
        await self._channel.close()


@pytest.fixture
async def desk(stack: Stack) -> AsyncIterator[Desk]:
    tenant = await create_tenant(stack)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": tenant.login, "password": tenant.password},
        ) as resp:
            body = await resp.json()
    d = Desk(stack, tenant, body["token"], body["operator"])
    yield d
    await d.close()


async def test_a_reply_referencing_the_customers_mail_joins_its_ticket_and_reopens_it(
    desk: Desk,
) -> None:
    first = desk.mail("Order 1001 is late")
    await desk.send(first)
    ticket = await desk.ticket_with("Order 1001 is late")
    assert ticket["number"] >= 1
    await desk.set_status(ticket["id"], common_pb2.TICKET_STATUS_RESOLVED)

    reply = desk.mail("Re: Order 1001 is late", body="Any news?\n")
    reply["In-Reply-To"] = first["Message-ID"]
    reply["References"] = first["Message-ID"]
    await desk.send(reply)
    detail = await desk.message_count(ticket["id"], 2)
    assert detail["status"] == "open"  # every customer reply lands in open
    assert [m["subject"] for m in detail["messages"]] == [
        "Order 1001 is late",
        "Re: Order 1001 is late",
    ]
    assert len([t for t in await desk.tickets_list() if "1001" in t["subject"]]) == 1


async def test_a_reply_to_our_signed_message_id_joins_and_a_forged_one_does_not(
    desk: Desk,
) -> None:
    await desk.send(desk.mail("Refund please"))
    ticket = await desk.ticket_with("Refund please")
    minted = await desk.tickets.MintMessageId(
        tickets_pb2.MintMessageIdRequest(ticket_id=ticket["id"], domain="help.example"),
        metadata=desk.md,
    )
    ours = minted.message_id
    assert ours.startswith("sb.") and ours.endswith("@help.example")

    # the customer answers our mail (sent from another client, new subject, no tag)
    reply = desk.mail("About my money", sender="Taro <taro@customer.example>")
    reply["In-Reply-To"] = f"<{ours}>"
    await desk.send(reply)
    await desk.message_count(ticket["id"], 2)

    # a stranger forges a reference to that ticket with a made-up signature
    forged_id = ours[: ours.index(".", 36)] + ".aaaaaaaa." + "b" * 16 + "@help.example"
    forged = desk.mail("I want in", sender="Mallory <mallory@evil.example>")
    forged["In-Reply-To"] = f"<{forged_id}>"
    forged["References"] = f"<{forged_id}>"
    await desk.send(forged)
    stranger = await desk.ticket_with("I want in")
    assert stranger["id"] != ticket["id"]
    assert len((await desk.detail(ticket["id"]))["messages"]) == 2


async def test_a_subject_tag_threads_only_mail_from_a_participant(desk: Desk) -> None:
    await desk.send(desk.mail("Broken lid"))
    ticket = await desk.ticket_with("Broken lid")
    tag = f"[#{ticket['number']}]"

    await desk.send(desk.mail(f"Re: {tag} Broken lid — photo attached"))
    await desk.message_count(ticket["id"], 2)

    await desk.send(desk.mail(f"{tag} let me in", sender="Mallory <mallory@evil.example>"))
    stranger = await desk.ticket_with(f"{tag} let me in")
    assert stranger["id"] != ticket["id"]
    assert len((await desk.detail(ticket["id"]))["messages"]) == 2


async def test_a_reply_to_a_ticket_closed_too_long_opens_a_new_ticket(desk: Desk) -> None:
    first = desk.mail("Warranty question")
    await desk.send(first)
    ticket = await desk.ticket_with("Warranty question")
    await desk.tickets.SetInboxSettings(
        tickets_pb2.InboxSettings(inbox_id=desk.tenant.inbox_id, new_ticket_after_days=7),
        metadata=desk.md,
    )
    await desk.set_status(ticket["id"], common_pb2.TICKET_STATUS_RESOLVED)
    # eight days pass (moved in the tickets database: the service's clock is real)
    conn = await asyncpg.connect(with_database(desk.stack.database_url, "sb_tickets"))
    try:
        await conn.execute(
            "UPDATE tickets SET closed_at = closed_at - $2::interval WHERE id = $1",
            uuid.UUID(ticket["id"]),
            timedelta(days=8),
        )
    finally:
        await conn.close()
    reply = desk.mail("Re: Warranty question")
    reply["In-Reply-To"] = first["Message-ID"]
    await desk.send(reply)
    fresh = await desk.ticket_with("Re: Warranty question")
    assert fresh["id"] != ticket["id"] and fresh["status"] == "open"
    old = await desk.detail(ticket["id"])
    assert old["status"] == "resolved" and len(old["messages"]) == 1


async def test_japanese_words_are_found_in_japanese_mail(desk: Desk) -> None:
    shared.required(JAPANESE)
    body = (
        "お世話になっております。先月注文した商品の請求書がまだ届いておりません。"
        "お手数ですが、至急ご確認のほどよろしくお願いいたします。\n"
    )
    await desk.send(desk.mail("請求書について", body=body, charset="iso-2022-jp"))
    # real Japanese mail from other parsers' test suites: ISO-2022-JP and Shift_JIS
    for name in ("japanese_iso_2022.eml", "japanese_shift_jis.eml"):
        raw = (JAPANESE / name).read_bytes()
        await asyncio.to_thread(send, desk.stack.smtp_port, raw, [desk.tenant.address])
    await eventually(lambda: _count(desk, 3))

    async def found(keyword: str) -> list[str]:
        return [t["subject"] for t in await desk.tickets_list(f"q={keyword}")]

    assert await found("請求書") == ["請求書について"]
    assert await found("確認") == ["請求書について"]  # a word in the middle of the body
    assert await found("至急 請求") == ["請求書について"]  # every term must match
    assert await found("領収書") == []
    assert await found("まみむめも") == ["まみむめも"]  # ISO-2022-JP subject (the corpus)
    corpus = await desk.detail((await desk.ticket_with("まみむめも"))["id"])
    assert "すみません" not in corpus["subject"]
    assert await found("すみません") == ["まみむめも"]  # its body


async def _count(desk: Desk, n: int) -> bool:
    return len(await desk.tickets_list()) >= n


async def test_a_message_id_is_never_threaded_across_tenants(stack: Stack, desk: Desk) -> None:
    other = await create_tenant(stack)
    shared_id = make_msgid(domain="customer.example")
    first = desk.mail("Tenant A question")
    first.replace_header("Message-ID", shared_id)
    await desk.send(first)
    await desk.ticket_with("Tenant A question")
    # the same customer writes to another company, referencing their mail to the first
    to_b = make_mail(
        "Re: Tenant A question", sender="Taro <taro@customer.example>", to=other.address
    )
    to_b["In-Reply-To"] = shared_id
    await asyncio.to_thread(send, stack.smtp_port, to_b, [other.address])
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions",
            json={"login": other.login, "password": other.password},
        ) as resp:
            token_b = (await resp.json())["token"]

    async def b_tickets() -> list[dict[str, Any]] | None:
        _, body = await api_get(stack, token_b, "/api/v1/tickets")
        return body["items"] or None

    items = await eventually(b_tickets)
    assert [t["subject"] for t in items] == ["Re: Tenant A question"]
    assert items[0]["number"] == 1
