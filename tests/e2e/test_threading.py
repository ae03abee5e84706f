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
from tests.e2e.test_outbound_settings import _auto_reply, _sends, _template
from tests.helpers import (
    Tenant,
    api_call,
    api_get,
    create_tenant,
    eventually,
    make_mail,
    send,
)
from tests.shared import CORPORA
from tests.smtp_peer import SmtpPeer

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

    async def send(self, msg: Any, to: str = "") -> None:
        await asyncio.to_thread(send, self.stack.smtp_port, msg, [to or self.tenant.address])

    async def second_inbox(self, name: str = "Sales") -> str:
        """Another inbox of the tenant; its address."""
        address = f"{name.lower()}@{uuid.uuid4().hex[:8]}.example"
        code, body = await api_call(
            self.stack,
            self.token,
            "POST",
            "/api/v1/inboxes",
            {"name": name, "addresses": [address]},
        )
        assert code == 201, body
        return address

    async def signed_id(self, ticket_id: str) -> str:
        """One of our signed Message-IDs of the ticket, as a mail we sent would carry it."""
        minted = await self.tickets.MintMessageId(
            tickets_pb2.MintMessageIdRequest(ticket_id=ticket_id, domain="help.example"),
            metadata=self.md,
        )
        return f"<{minted.message_id}>"

    async def reply_draft(self, ticket_id: str, kind: str = "reply") -> dict[str, Any]:
        """A reply draft as the Reply button makes one (the last mail answered)."""
        code, held = await api_call(
            self.stack, self.token, "POST", f"/api/v1/tickets/{ticket_id}/lock"
        )
        assert code in (200, 201), held
        code, draft = await api_call(
            self.stack,
            self.token,
            "POST",
            f"/api/v1/tickets/{ticket_id}/drafts",
            {"kind": kind, "fence": held["fence"]},
        )
        assert code == 201, draft
        await api_call(
            self.stack, self.token, "DELETE", f"/api/v1/drafts/{draft['id']}?fence={held['fence']}"
        )
        await api_call(
            self.stack,
            self.token,
            "DELETE",
            f"/api/v1/tickets/{ticket_id}/lock?fence={held['fence']}",
        )
        return dict(draft["current"])

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


# --- ADR 0009: thread hijack ----------------------------------------------------------------

TRUSTED = "mx.switchboard.test"  # services.devstack.stack.TRUSTED_AUTHSERV_ID
MALLORY = "Mallory <mallory@evil.example>"


async def test_a_strangers_reference_to_a_customers_mail_starts_a_new_ticket_in_any_inbox(
    desk: Desk,
) -> None:
    sales = await desk.second_inbox()
    first = desk.mail("Order 77 is late")
    first["Cc"] = "Hana <hana@customer.example>"
    await desk.send(first)
    ticket = await desk.ticket_with("Order 77 is late")

    # someone who saw the Message-ID (a forward, a Cc) writes "in reply" to it
    for subject, inbox in (("Re: Order 77 — send it to me", ""), ("Re: Order 77 (sales)", sales)):
        hijack = desk.mail(subject, sender=MALLORY)
        hijack["In-Reply-To"] = first["Message-ID"]
        hijack["References"] = first["Message-ID"]
        await desk.send(hijack, to=inbox)
        stranger = await desk.ticket_with(subject)
        assert stranger["id"] != ticket["id"]
    # the customer's own reference sent to another inbox does not cross inboxes either
    elsewhere = desk.mail("Re: Order 77 to sales")
    elsewhere["In-Reply-To"] = first["Message-ID"]
    await desk.send(elsewhere, to=sales)
    assert (await desk.ticket_with("Re: Order 77 to sales"))["id"] != ticket["id"]

    # participants still thread: the customer, and the colleague they put in Cc
    for subject, sender in (
        ("Re: Order 77 is late", "Taro <taro@customer.example>"),
        ("Re: Order 77 — me too", "Hana <hana@customer.example>"),
    ):
        reply = desk.mail(subject, sender=sender)
        reply["In-Reply-To"] = first["Message-ID"]
        await desk.send(reply)
    detail = await desk.message_count(ticket["id"], 3)
    assert [m["subject"] for m in detail["messages"]] == [
        "Order 77 is late",
        "Re: Order 77 is late",
        "Re: Order 77 — me too",
    ]
    assert not any(m["stranger"] for m in detail["messages"])
    # and the reply goes to the customer
    assert (await desk.reply_draft(ticket["id"]))["to"] == ["Taro <taro@customer.example>"]


async def test_our_signed_id_from_a_stranger_joins_marked_and_the_reply_goes_to_the_customer(
    desk: Desk,
) -> None:
    sales = await desk.second_inbox()
    await desk.send(desk.mail("Invoice 12 is wrong"))
    ticket = await desk.ticket_with("Invoice 12 is wrong")
    ours = await desk.signed_id(ticket["id"])

    # the customer forwarded our answer to a colleague, who writes to another inbox
    forwarded = desk.mail("Fwd: Re: Invoice 12 is wrong", sender=MALLORY)
    forwarded["In-Reply-To"] = ours
    forwarded["Cc"] = "Eve <eve@evil.example>"
    await desk.send(forwarded, to=sales)
    detail = await desk.message_count(ticket["id"], 2)
    assert [(m["from"]["address"], m["stranger"]) for m in detail["messages"]] == [
        ("taro@customer.example", False),
        ("mallory@evil.example", True),
    ]
    assert [m["stranger"] for m in (e["message"] for e in detail["timeline"])] == [False, True]

    # Reply answers the last mail, the stranger's: it goes to the customer all the same
    draft = await desk.reply_draft(ticket["id"])
    assert draft["to"] == ["Taro <taro@customer.example>"] and draft["cc"] == []
    everyone = await desk.reply_draft(ticket["id"], "reply_all")
    assert everyone["to"] == ["Taro <taro@customer.example>"] and everyone["cc"] == []

    # a stranger's mail makes nobody a participant: their tag and reference stay out
    tagged = desk.mail(f"[#{ticket['number']}] still me", sender=MALLORY)
    tagged["References"] = forwarded["Message-ID"]
    await desk.send(tagged)
    assert (await desk.ticket_with(f"[#{ticket['number']}] still me"))["id"] != ticket["id"]
    cc = desk.mail(f"[#{ticket['number']}] Eve here", sender="Eve <eve@evil.example>")
    await desk.send(cc)
    assert (await desk.ticket_with(f"[#{ticket['number']}] Eve here"))["id"] != ticket["id"]
    assert len((await desk.detail(ticket["id"]))["messages"]) == 2


async def test_a_subject_tag_does_not_cross_inboxes_even_from_the_customer(desk: Desk) -> None:
    sales = await desk.second_inbox()
    await desk.send(desk.mail("Cracked screen"))
    ticket = await desk.ticket_with("Cracked screen")
    tag = f"[#{ticket['number']}]"
    await desk.send(desk.mail(f"{tag} Cracked screen, to sales"), to=sales)
    assert (await desk.ticket_with(f"{tag} Cracked screen, to sales"))["id"] != ticket["id"]
    await desk.send(desk.mail(f"Re: {tag} Cracked screen"))
    await desk.message_count(ticket["id"], 2)


async def test_the_sender_is_verified_only_by_a_trusted_hosts_authentication_results(
    desk: Desk,
) -> None:
    cases = {
        "Signed by the customer's domain": f"{TRUSTED}; dkim=pass header.d=customer.example",
        "Signed by another domain": f"{TRUSTED}; dkim=pass header.d=evil.example",
        "Vouched for by a host we do not trust": "mx.evil.example; dmarc=pass",
        "Nobody vouches": None,
    }
    for subject, header in cases.items():
        msg = desk.mail(subject)
        if header is not None:
            msg["Authentication-Results"] = header
        await desk.send(msg)
    got = {}
    for subject in cases:
        detail = await desk.detail((await desk.ticket_with(subject))["id"])
        [mail] = detail["messages"]
        got[subject] = (mail["sender_verified"], mail["sender_auth"])
    assert got == {
        "Signed by the customer's domain": (True, {"method": "dkim", "authserv_id": TRUSTED}),
        "Signed by another domain": (False, None),
        "Vouched for by a host we do not trust": (False, None),
        "Nobody vouches": (False, None),
    }


async def test_no_automatic_reply_goes_to_a_stranger_on_someone_elses_ticket(
    desk: Desk, smtp_peer: SmtpPeer
) -> None:
    tpl = await _template(desk.stack, desk.token, "Received: {{original.subject}}", "Thanks.")
    await _auto_reply(desk.stack, desk.token, desk.tenant.inbox_id, tpl)
    await desk.send(desk.mail("Lamp 5 broke"))
    ticket = await desk.ticket_with("Lamp 5 broke")

    async def ack_to(address: str, subject: str) -> Any:
        return [r for r in smtp_peer.to(address) if subject in str(r.message["Subject"])]

    [ack] = await eventually(lambda: ack_to("taro@customer.example", "Lamp 5 broke"), timeout=20)
    # Taro forwards our acknowledgement; the one who got it answers it
    stranger = desk.mail("Re: Received: Lamp 5 broke", sender=MALLORY)
    stranger["In-Reply-To"] = ack.message["Message-ID"]
    await desk.send(stranger)

    async def joined() -> bool:
        detail = await desk.detail(ticket["id"])
        return any(m["stranger"] for m in detail["messages"])

    await eventually(joined)
    # a newcomer with a ticket of their own is acknowledged; the stranger is not
    await desk.send(desk.mail("Kettle 9 leaks", sender="Ken <ken@customer.example>"))
    await eventually(lambda: ack_to("ken@customer.example", "Kettle 9 leaks"), timeout=20)
    # outbound__replies takes the tickets stream's events one at a time, in order: Ken's
    # acknowledgement means the stranger's event, published before it, was decided too
    assert not smtp_peer.to("mallory@evil.example")
    assert len(await _sends(desk.stack, desk.token, "auto_reply")) == 2
