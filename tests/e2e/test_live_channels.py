"""The channels on the operators' live socket (issue 21, gateway/live_chat.py): a channel
message, a conversation's change, a delivery and a visitor's typing reach the operators
who see the channel's inbox — masked for those who may not see customers' addresses —
and nobody else: not another inbox's operator, not another tenant, not a logged-out
session. An operator's typing on a ticket that is no chat is refused.

The events are published as ingestion and a web-chat replica publish them (the outbox's
`sb.ingest.channel.*`, the replicas' core NATS `sb.live.chat`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import nats
import pytest
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from services.runtime import events
from tests.e2e.test_access import _private_inbox_and_an_agent, operator_token, ticket_by_subject
from tests.e2e.test_accounts import call
from tests.e2e.test_ui_channels import api_channel, post_signed
from tests.helpers import eventually, make_mail, send

pytestmark = pytest.mark.e2e

QUIET_S = 1.0  # how long a socket is listened to for a push that must not come


@pytest.fixture
async def nc(stack: Stack) -> AsyncIterator[Any]:
    client = await nats.connect(stack.nats_url)
    yield client
    await client.close()


async def _socket(http: aiohttp.ClientSession, stack: Stack, token: str) -> Any:
    ws = await http.ws_connect(
        f"{stack.gateway_url}/api/v1/live", headers={"Authorization": f"Bearer {token}"}
    )
    assert (await ws.receive_json(timeout=5))["type"] == "hello"
    return ws


async def _next(ws: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next push of this type (others — ticket events — are skipped)."""
    while True:
        msg = await ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        body: dict[str, Any] = json.loads(msg.data)
        if body["type"] == kind:
            return body


async def _nothing(ws: Any, kind: str) -> None:
    try:
        body = await _next(ws, kind, timeout=QUIET_S)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected push {body}")


def _message(tenant: str, inbox: str, text: str, conversation: str) -> bytes:
    payload = events_pb2.ChannelMessage(
        channel_id=str(uuid.uuid4()),
        kind="chat",
        inbox_id=inbox,
        conversation_id=conversation,
        seq=1,
        direction="in",
        text=text,
        sender_name="Visitor",
        key="k1",
        message_id=str(uuid.uuid4()),
    )
    env = events.envelope(
        events.CHANNEL_MESSAGE,
        event_id=str(uuid.uuid4()),
        tenant_id=tenant,
        occurred_at=datetime.now(UTC),
        payload=payload,
        actor=events.system_actor("ingestion"),
    )
    return bytes(env.SerializeToString())


async def test_channel_messages_and_visitor_typing_reach_only_the_inbox_operators(
    stack: Stack, nc: Any
) -> None:
    tenant, admin, agent, private, _ = await _private_inbox_and_an_agent(stack)
    trainee = await operator_token(stack, admin, tenant, roles=["trainee"])
    _, other_admin, *_ = await _private_inbox_and_an_agent(stack)  # another tenant
    subject = events.CHANNEL_MESSAGE.subject
    async with aiohttp.ClientSession() as http:
        a, g, tr, other = [
            await _socket(http, stack, t) for t in (admin, agent, trainee, other_admin)
        ]
        # a message of the private inbox: its administrator only
        conversation = str(uuid.uuid4())
        await nc.publish(
            subject, _message(tenant.tenant_id, private["id"], "in private", conversation)
        )
        got = await _next(a, "channel.message")
        assert (got["conversation_id"], got["text"], got["direction"]) == (
            conversation,
            "in private",
            "in",
        )
        assert got["channel"] == "chat" and got["sender_name"] == "Visitor"
        await _nothing(g, "channel.message")
        await _nothing(other, "channel.message")
        # one of Help: its agent too; the trainee (no see_customer_addresses) masked
        text = "mail me at taro@customer.example"
        await nc.publish(subject, _message(tenant.tenant_id, tenant.inbox_id, text, conversation))
        assert (await _next(g, "channel.message"))["text"] == text
        assert (await _next(a, "channel.message"))["text"] == text
        masked = (await _next(tr, "channel.message"))["text"]
        assert "taro@customer.example" not in masked and "@c***.example" in masked
        await _nothing(other, "channel.message")

        # a visitor typing in the private inbox's chat, as a web-chat replica tells it
        typing = {
            "tenant_id": tenant.tenant_id,
            "inbox_id": private["id"],
            "conversation_id": conversation,
            "ticket_id": "",
            "who": "visitor",
            "name": "Visitor",
            "event": "typing",
        }
        await nc.publish("sb.live.chat", json.dumps(typing).encode())
        got = await _next(a, "chat.typing")
        assert got == {
            "type": "chat.typing",
            "ticket_id": None,
            "conversation_id": conversation,
            "who": "visitor",
            "typing": True,
        }
        await _nothing(g, "chat.typing")
        # an operator's typing relayed by another replica is not for operators
        await nc.publish("sb.live.chat", json.dumps({**typing, "who": "operator"}).encode())
        await _nothing(a, "chat.typing")
        # the visitor went away
        offline = {**typing, "inbox_id": tenant.inbox_id, "event": "offline"}
        await nc.publish("sb.live.chat", json.dumps(offline).encode())
        assert (await _next(g, "chat.visitor"))["online"] is False

        # a delivery of a channel whose inbox this replica cannot tell: administrators only
        delivery = events.envelope(
            events.CHANNEL_DELIVERY,
            event_id=str(uuid.uuid4()),
            tenant_id=tenant.tenant_id,
            occurred_at=datetime.now(UTC),
            payload=events_pb2.ChannelDeliveryChanged(
                delivery_id=str(uuid.uuid4()),
                channel_id=str(uuid.uuid4()),
                kind="api",
                state="dead",
                attempts=8,
                error="HTTP 500",
            ),
            actor=events.system_actor("ingestion"),
        )
        await nc.publish(events.CHANNEL_DELIVERY.subject, delivery.SerializeToString())
        got = await _next(a, "channel.delivery")
        assert (got["state"], got["attempts"], got["error"]) == ("dead", 8, "HTTP 500")
        await _nothing(g, "channel.delivery")

        # after the agent logs out, nothing reaches that socket (it is closed)
        assert (await call(stack, "DELETE", "/api/v1/sessions/current", token=agent))[0] == 204
        closed = await g.receive(timeout=5)
        assert closed.type == aiohttp.WSMsgType.CLOSE
        for ws in (a, tr, other):
            await ws.close()


async def test_an_operator_typing_on_a_ticket_that_is_no_chat_is_refused(stack: Stack) -> None:
    tenant, admin, agent, *_ = await _private_inbox_and_an_agent(stack)
    subject = f"mail {uuid.uuid4().hex[:6]}"
    send(stack.smtp_port, make_mail(subject, to=tenant.address), [tenant.address])
    ticket = await ticket_by_subject(stack, admin, subject)
    async with aiohttp.ClientSession() as http:
        ws = await _socket(http, stack, agent)
        await ws.send_json({"type": "chat.typing", "ticket_id": ticket["id"], "typing": True})
        error = await _next(ws, "error")
        assert error["error"]["code"] == "not_found" and error["error"]["field"] == "ticket_id"
        await ws.send_json({"type": "chat.typing", "ticket_id": "nope", "typing": True})
        error = await _next(ws, "error")
        assert (error["error"]["code"], error["error"]["field"]) == (
            "invalid_argument",
            "ticket_id",
        )
        # the socket stays open
        await ws.send_json({"type": "chat.typing", "ticket_id": ticket["id"], "typing": "yes"})
        assert (await _next(ws, "error"))["error"]["field"] == "typing"
        await ws.close()


async def test_an_operator_typing_on_a_channel_ticket_is_published_for_the_visitor(
    stack: Stack, nc: Any
) -> None:
    tenant, admin, agent, *_ = await _private_inbox_and_an_agent(stack)
    channel, secret = await api_channel(stack, admin, tenant.inbox_id, "")
    conversation = f"c-{uuid.uuid4().hex[:6]}"
    text = f"Hello {uuid.uuid4().hex[:4]}"
    got: list[dict[str, Any]] = []

    async def on_msg(msg: Any) -> None:
        got.append(json.loads(msg.data))

    await nc.subscribe("sb.live.chat", cb=on_msg)
    async with aiohttp.ClientSession() as http:
        ws = await _socket(http, stack, agent)
        await post_signed(stack, channel, secret, conversation, text)
        # the fast path: the agent of the channel's inbox sees the message at once
        pushed = await _next(ws, "channel.message", timeout=15)
        assert (pushed["text"], pushed["channel"], pushed["direction"]) == (text, "api", "in")
        ticket = await ticket_by_subject(stack, admin, f"API: {text}")
        await ws.send_json({"type": "chat.typing", "ticket_id": ticket["id"], "typing": True})
        await ws.send_json({"type": "chat.typing", "ticket_id": ticket["id"], "typing": True})
        await ws.send_json({"type": "chat.typing", "ticket_id": ticket["id"], "typing": False})

        async def both() -> bool:
            return len(got) >= 2

        await eventually(both, timeout=10)
        await _nothing(ws, "error")
        assert [g["event"] for g in got] == ["typing", "idle"]  # the repeat was dropped
        first = got[0]
        assert first["who"] == "operator" and first["ticket_id"] == ticket["id"]
        assert first["tenant_id"] == tenant.tenant_id and first["inbox_id"] == tenant.inbox_id
        assert first["conversation_id"] == pushed["conversation_id"]
        await ws.close()
