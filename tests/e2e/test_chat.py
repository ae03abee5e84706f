"""The web chat, visitor side (issue 21, ING-6), through the running system: a visitor's
socket from an allowed origin becomes a ticket of channel "chat"; any other origin is
refused; a resent message (same key) is one; a reconnect with `after_seq` gets exactly
what it missed; the per-visitor size and rate limits; operator typing reaches the
visitor; the transcript reaches the visitor's address at the aiosmtpd peer when the chat
ends, once."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import grpc
import nats
import pytest
from switchboard.v1 import ingestion_channels_pb2 as pb
from switchboard.v1 import ingestion_channels_pb2_grpc

from services.devstack.stack import Stack
from services.runtime.db import with_database
from services.runtime.identity import Identity
from tests.chat_visitor import Visitor
from tests.e2e.test_accounts import admin_of, call, client_ip
from tests.helpers import Tenant, eventually
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e
SITE = "https://shop.example"


async def chat_widget(
    stack: Stack, admin: str, tenant: Tenant, origins: list[str], **chat: Any
) -> dict[str, Any]:
    """A chat widget of the tenant's inbox, made by its administrator."""
    body = {
        "kind": "chat",
        "inbox_id": tenant.inbox_id,
        "name": "Shop chat",
        "chat": {"allowed_origins": origins, "colour": "#0b57d0", **chat},
    }
    code, made, _ = await call(stack, "POST", "/api/v1/channels", body, token=admin)
    assert code == 201, made
    return dict(made)


async def shop(stack: Stack) -> tuple[Tenant, str, dict[str, Any]]:
    tenant, admin = await admin_of(stack)
    return tenant, admin, await chat_widget(stack, admin, tenant, [SITE])


async def deliver(
    stack: Stack, tenant: Tenant, conversation_id: str, text: str
) -> pb.DeliveryReceipt:
    """An operator's reply as outbound hands it over (ChannelsService.Deliver)."""
    port = stack.config.ports.grpc["ingestion"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = ingestion_channels_pb2_grpc.ChannelsServiceStub(ch)  # type: ignore[no-untyped-call]
        receipt: pb.DeliveryReceipt = await stub.Deliver(
            pb.DeliverRequest(
                send_id=f"send-{uuid.uuid4().hex}",
                conversation_id=conversation_id,
                text=text,
                author_name="佐藤",
            ),
            metadata=Identity(tenant_id=tenant.tenant_id).metadata(),
            timeout=10,
        )
    return receipt


async def chat_ticket(stack: Stack, admin: str, words: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        code, body, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=admin)
        assert code == 200, body
        return next((t for t in body["items"] if words in t["subject"]), None)

    ticket: dict[str, Any] = await eventually(found, timeout=30)
    return ticket


async def test_a_visitor_from_an_allowed_site_chats_into_a_chat_ticket(stack: Stack) -> None:
    _, admin, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        ready = await visitor.connect(name="Hanako")
        assert ready["last_seq"] == 0 and ready["online"] is False
        words = f"配送について {uuid.uuid4().hex[:6]}"
        key = await visitor.say(words)
        ack = await visitor.wait("ack", key=key)
        assert ack["seq"] == 1 and ack["duplicate"] is False
        ticket = await chat_ticket(stack, admin, words)
        assert ticket["subject"].startswith("Chat: ")
        code, detail, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin)
        assert code == 200, detail
        assert [m["channel"] for m in detail["messages"]] == ["chat"]
        # the same message from the visitor's other tab: pushed once there
        other = Visitor(stack.gateway_url, widget["public_key"], SITE)
        other.token = visitor.token
        await other.connect(after_seq=1)
        second = await visitor.say("二つ目")
        line = await other.wait("message", seq=2)
        assert line["text"] == "二つ目" and line["key"] == second and line["direction"] == "in"
        await other.close()
    finally:
        await visitor.close()


async def test_a_site_not_allowed_and_an_unknown_key_are_refused(stack: Stack) -> None:
    _, _, widget = await shop(stack)
    url = stack.gateway_url.replace("http", "ws", 1)
    async with aiohttp.ClientSession() as http:
        for origin in ("https://evil.example", "https://shop.example.evil.example", ""):
            headers = {"Origin": origin} if origin else {}
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{url}/chat/{widget['public_key']}/ws", headers=headers)
            assert err.value.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(
                f"{url}/chat/nope-{uuid.uuid4().hex}/ws", headers={"Origin": SITE}
            )
        assert err.value.status == 404
        async with http.get(f"{stack.gateway_url}/widget/{widget['public_key']}.js") as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/javascript")
            assert "public" in r.headers["Cache-Control"]
            assert widget["public_key"] in await r.text()
        async with http.get(f"{stack.gateway_url}/widget/nope.js") as r:
            assert r.status == 404


async def test_a_resent_message_is_one_and_a_reconnect_gets_exactly_what_it_missed(
    stack: Stack,
) -> None:
    tenant, _, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect()
        key = await visitor.say("hello")
        first = await visitor.wait("ack", key=key)
        await visitor.say("hello", key=key)  # the answer was lost: sent again
        acks = await eventually(
            lambda: asyncio.sleep(
                0, [f for f in visitor.frames if f.get("key") == key and f["type"] == "ack"][1:]
            )
        )
        assert acks[0]["duplicate"] is True and acks[0]["seq"] == first["seq"]
        await visitor.drop()  # the network goes away …
        for n in (1, 2):  # … while an operator answers twice
            receipt = await deliver(stack, tenant, visitor.conversation_id, f"reply {n}")
            assert receipt.state == "delivered" and receipt.seq == first["seq"] + n
        await visitor.connect(after_seq=first["seq"])  # the widget resumes after what it has
        await visitor.wait("message", seq=first["seq"] + 2)
        await deliver(stack, tenant, visitor.conversation_id, "reply 3")  # live again
        await visitor.wait("message", seq=first["seq"] + 3)
        await asyncio.sleep(0.5)  # nothing else comes
        got = [(m["seq"], m["direction"], m["text"]) for m in visitor.messages()]
        assert got == [(2, "out", "reply 1"), (3, "out", "reply 2"), (4, "out", "reply 3")]
        assert visitor.messages()[0]["author_name"] == "佐藤"
    finally:
        await visitor.close()


async def test_size_and_rate_are_limited_per_visitor_with_clear_errors(stack: Stack) -> None:
    _, _, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect(client=client_ip())
        long = await visitor.say("あ" * 2001)
        err = await visitor.wait("error", key=long)
        assert err["code"] == "invalid_argument" and err["field"] == "text"
        assert "2000" in err["message"]
        keys = [await visitor.say(f"m{i}") for i in range(21)]
        for key in keys[:20]:
            await visitor.wait("ack", key=key)
        over = await visitor.wait("error", key=keys[20])
        assert over["code"] == "resource_exhausted" and over["retry_after"] > 0
        # another visitor of the same site is not held back
        other = Visitor(stack.gateway_url, widget["public_key"], SITE)
        await other.connect()
        await other.wait("ack", key=await other.say("hi"))
        await other.close()
    finally:
        await visitor.close()


async def test_operator_typing_reaches_the_visitor_and_the_visitors_goes_to_operators(
    stack: Stack,
) -> None:
    tenant, _, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    nc = await nats.connect(stack.nats_url)
    notes: list[dict[str, Any]] = []

    async def on_note(msg: Any) -> None:
        notes.append(json.loads(msg.data))

    await nc.subscribe("sb.live.chat", cb=on_note)
    try:
        await visitor.connect(name="Hanako")
        await visitor.send({"type": "typing", "typing": True})
        note = await eventually(
            lambda: asyncio.sleep(
                0,
                next((n for n in notes if n["event"] == "typing" and n["who"] == "visitor"), None),
            )
        )
        assert note["conversation_id"] == visitor.conversation_id
        assert note["tenant_id"] == tenant.tenant_id and note["inbox_id"] == tenant.inbox_id
        # an operator's replica announces its operator typing (gateway/live.py)
        typing = {
            "tenant_id": tenant.tenant_id,
            "inbox_id": tenant.inbox_id,
            "conversation_id": visitor.conversation_id,
            "ticket_id": "",
            "who": "operator",
            "name": "佐藤",
            "event": "typing",
        }
        await nc.publish("sb.live.chat", json.dumps(typing).encode())
        got = await visitor.wait("typing")
        assert got == {"type": "typing", "who": "operator", "name": "佐藤", "typing": True}
        # another tenant's note about the same id reaches nobody
        await nc.publish(
            "sb.live.chat",
            json.dumps({**typing, "tenant_id": str(uuid.uuid4()), "event": "idle"}).encode(),
        )
        await asyncio.sleep(0.3)
        assert [f for f in visitor.frames if f["type"] == "typing"] == [got]
    finally:
        await visitor.close()
        await nc.close()


async def test_the_transcript_reaches_the_visitors_address_once_when_the_chat_ends(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _, widget = await shop(stack)
    address = f"hanako-{uuid.uuid4().hex[:8]}@customer.example"
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect(language="ja")
        await visitor.send({"type": "contact", "name": "山田 花子", "email": address})
        assert (await visitor.wait("contact"))["email"] is True
        await visitor.wait("ack", key=await visitor.say("返品したいです {{var.x}}"))
        await deliver(stack, tenant, visitor.conversation_id, "承知しました。")
        ended = visitor.conversation_id
        await visitor.send({"type": "end"})
        await visitor.wait("ended")
        await visitor.send({"type": "end"})  # again: still one transcript

        def mails() -> list[Any]:
            return [r for r in smtp_peer.received if address in r.rcpt_tos]

        got = await eventually(lambda: asyncio.sleep(0, mails()), timeout=30)
        message = got[0].message
        assert message["Subject"] == "チャットの記録"
        body = message.get_body(("plain",)).get_content()
        assert "返品したいです" in body and "承知しました。" in body and "佐藤" in body
        await asyncio.sleep(2)
        assert len(mails()) == 1
        # the visitor comes back: a new conversation
        again = await visitor.connect(after_seq=0)
        assert again["conversation_id"] != ended and again["last_seq"] == 0
    finally:
        await visitor.close()


async def test_a_quiet_chat_is_ended_by_the_idle_sweep_and_an_active_one_is_not(
    stack: Stack,
) -> None:
    """The sweep's query on the real database (in a transaction rolled back: the stack's
    own sweep waits 30 minutes)."""
    from datetime import UTC, datetime, timedelta

    import asyncpg

    from services.ingestion.chat_repo import ChatRepo
    from services.runtime.db import with_database

    _, _, widget = await shop(stack)
    quiet, chatty = (Visitor(stack.gateway_url, widget["public_key"], SITE) for _ in range(2))
    try:
        for v in (quiet, chatty):
            await v.connect()
            await v.wait("ack", key=await v.say("hello"))
        conn = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
        try:
            await conn.execute(
                "UPDATE channel_messages SET created_at = created_at - interval '1 hour' "
                "WHERE conversation_id = $1",
                uuid.UUID(quiet.conversation_id),
            )
            await conn.execute(
                "UPDATE channel_conversations SET last_inbound_at = last_inbound_at - "
                "interval '1 hour' WHERE id = ANY($1::uuid[])",
                [uuid.UUID(quiet.conversation_id), uuid.UUID(chatty.conversation_id)],
            )
            tx = conn.transaction()
            await tx.start()
            now = datetime.now(UTC)
            ended = await ChatRepo(conn).end_idle(conn, now - timedelta(minutes=30), now, 1000)  # type: ignore[arg-type]
            await tx.rollback()
        finally:
            await conn.close()
        ids = {str(e.conversation.id) for e in ended}
        assert quiet.conversation_id in ids  # nothing said for an hour
        assert chatty.conversation_id not in ids  # its message is a minute old
    finally:
        await quiet.close()
        await chatty.close()


async def test_a_long_conversation_comes_back_whole_after_a_reload(stack: Stack) -> None:
    """More lines than a socket's queue holds (256) and than one history page (500)."""
    tenant, _, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect()
        await visitor.wait("ack", key=await visitor.say("start"))
        await visitor.drop()
        port = stack.config.ports.grpc["ingestion"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = ingestion_channels_pb2_grpc.ChannelsServiceStub(ch)  # type: ignore[no-untyped-call]
            md = Identity(tenant_id=tenant.tenant_id).metadata()
            for n in range(600):
                await stub.Deliver(
                    pb.DeliverRequest(
                        send_id=f"long-{n}", conversation_id=visitor.conversation_id, text=f"r{n}"
                    ),
                    metadata=md,
                    timeout=10,
                )
        await visitor.connect(after_seq=0)  # a fresh page
        await visitor.wait("message", seq=601, timeout=30)
        assert [m["seq"] for m in visitor.messages()] == list(range(1, 602))
    finally:
        await visitor.close()


async def test_the_demo_seed_makes_a_widget_its_demo_page_can_chat_with(
    stack: Stack, tmp_path: Any
) -> None:
    from services.devstack.demo_chat import seed_demo_chat
    from tests.conftest import DEMO_PASSWORD

    marker = tmp_path / "demo-chat-widget"
    key = await asyncio.to_thread(seed_demo_chat, stack.gateway_url, DEMO_PASSWORD, marker)
    assert await asyncio.to_thread(seed_demo_chat, stack.gateway_url, "wrong", marker) == key
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.gateway_url}/widget-demo/{key}") as r:
            assert r.status == 200
            assert f'src="{stack.gateway_url}/widget/{key}.js"' in await r.text()
    visitor = Visitor(stack.gateway_url, key, stack.gateway_url)  # the page's own origin
    try:
        await visitor.connect()
        await visitor.wait("ack", key=await visitor.say("demo"))
    finally:
        await visitor.close()


async def test_sockets_are_limited_per_client_address(stack: Stack) -> None:
    _, _, widget = await shop(stack)
    url = stack.gateway_url.replace("http", "ws", 1) + f"/chat/{widget['public_key']}/ws"
    busy, other = client_ip(), client_ip()
    async with aiohttp.ClientSession() as http:
        for _ in range(60):  # SB_CHAT_SOCKET_RATE_PER_MINUTE's default
            ws = await http.ws_connect(url, headers={"Origin": SITE, "X-Forwarded-For": busy})
            await ws.close()
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await http.ws_connect(url, headers={"Origin": SITE, "X-Forwarded-For": busy})
        assert err.value.status == 429
        ws = await http.ws_connect(url, headers={"Origin": SITE, "X-Forwarded-For": other})
        await ws.close()


async def test_the_visitor_is_told_when_an_operator_of_the_inbox_comes_and_goes(
    stack: Stack,
) -> None:
    _, admin, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        assert (await visitor.connect())["online"] is False
        for status, online in (("online", True), ("offline", False)):
            code, _, _ = await call(
                stack, "PUT", "/api/v1/me/presence", {"status": status}, token=admin
            )
            assert code == 200
            await visitor.wait("presence", online=online)
    finally:
        await visitor.close()


async def test_a_rule_on_channel_chat_routes_a_chat_ticket_and_reports_count_it(
    stack: Stack,
) -> None:
    """Routing and reports treat a chat like mail: a rule with the condition channel =
    chat acts on the new chat ticket (and a mail's rule does not), the volume report counts
    the visitor's messages as received."""
    _, admin, widget = await shop(stack)
    rule = {
        "name": "チャット窓口",
        "triggers": ["new_ticket"],
        "conditions": {
            "match": "all",
            "conditions": [{"field": "channel", "operator": "equals", "value": "chat"}],
        },
        "actions": [
            {"type": "add_label", "value": "チャット"},
            {"type": "set_priority", "value": "high"},
        ],
    }
    code, made, _ = await call(stack, "POST", "/api/v1/rules", rule, token=admin)
    assert code == 201, made
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect(name="Taro")
        words = f"返品したい {uuid.uuid4().hex[:6]}"
        await visitor.wait("ack", key=await visitor.say(words))
        ticket = await chat_ticket(stack, admin, words)
        await visitor.wait("ack", key=await visitor.say("届いた箱が潰れていました"))

        async def routed() -> dict[str, Any] | None:
            code, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin)
            assert code == 200, t
            done = "チャット" in t["labels"] and t["priority"] == "high"
            return t if done and len(t["messages"]) == 2 else None

        detail = await eventually(routed, timeout=30)
        assert [m["channel"] for m in detail["messages"]] == ["chat", "chat"]
    finally:
        await visitor.close()
    today = datetime.now(UTC).date().isoformat()

    async def counted() -> Any:
        code, body, _ = await call(
            stack, "GET", f"/api/v1/reports/volume?from={today}&to={today}&tz=UTC", token=admin
        )
        assert code == 200, body
        return body if body["totals"].get("received") == 2 else None

    await eventually(counted, timeout=40, every=0.5)


async def test_a_new_chat_tickets_conversation_is_found_before_it_is_linked(
    stack: Stack,
) -> None:
    """The link of a conversation to its ticket comes a moment after tickets filed it (a
    consumer of ticket.created); meanwhile the operator who opens the ticket still gets
    its conversation, found by the ticket's customer (the pseudo-address). Another
    tenant's operator does not."""
    _, admin, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect(name="Jiro")
        words = f"未リンク {uuid.uuid4().hex[:6]}"
        await visitor.wait("ack", key=await visitor.say(words))
        ticket = await chat_ticket(stack, admin, words)
        path = f"/api/v1/tickets/{ticket['id']}/conversation"

        async def linked() -> dict[str, Any] | None:
            code, conv, _ = await call(stack, "GET", path, token=admin)
            return conv if code == 200 and conv["ticket_id"] == ticket["id"] else None

        conv = await eventually(linked, timeout=20)
        # as if the link had not come yet
        db = await asyncpg.connect(with_database(stack.database_url, "sb_ingestion"))
        try:
            await db.execute(
                "UPDATE channel_conversations SET ticket_id = NULL WHERE id = $1",
                uuid.UUID(conv["id"]),
            )
        finally:
            await db.close()
        code, again, _ = await call(stack, "GET", path, token=admin)
        assert code == 200, again
        assert again["id"] == conv["id"] and again["ticket_id"] == ticket["id"]
        _, other_admin = await admin_of(stack)
        code, hidden, _ = await call(stack, "GET", path, token=other_admin)
        assert code == 404, hidden
    finally:
        await visitor.close()


async def test_a_new_visitors_quick_first_lines_are_one_ticket(stack: Stack) -> None:
    """Three lines sent at once by a new visitor (nothing waited for) are one chat ticket:
    the later ones wait for the first's ticket before they are routed."""
    _, admin, widget = await shop(stack)
    visitor = Visitor(stack.gateway_url, widget["public_key"], SITE)
    try:
        await visitor.connect(name="Saburo")
        tag = uuid.uuid4().hex[:6]
        keys = [
            await visitor.say(f"{line} {tag}") for line in ("こんにちは", "注文の件で", "至急です")
        ]
        for key in keys:
            await visitor.wait("ack", key=key)
        ticket = await chat_ticket(stack, admin, tag)

        async def all_three() -> dict[str, Any] | None:
            code, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=admin)
            assert code == 200, t
            return t if len(t["messages"]) == 3 else None

        await eventually(all_three, timeout=30)
        code, body, _ = await call(stack, "GET", f"/api/v1/tickets?q={tag}", token=admin)
        assert code == 200 and [t["id"] for t in body["items"]] == [ticket["id"]], body
    finally:
        await visitor.close()
