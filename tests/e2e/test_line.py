"""LINE channels end to end (issue 21; docs/channels.md "LINE"), against the local LINE
peer (services/devstack/line_peer.py) that the test stack's ingestion talks to: LINE's
signed webhook through the gateway becomes a ticket of channel "line" named after the
sender's LINE display name, with images attached; a bad signature stores nothing; an
operator's reply goes through the reply API while the reply token is good and through the
push API (once, by its retry key) after; LINE failing is retried, then dead-lettered for
an administrator to retry."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import grpc
import pytest
from switchboard.v1 import ingestion_channels_pb2 as pb
from switchboard.v1 import ingestion_channels_pb2_grpc as pb_grpc

from services.devstack import line_peer as peer_mod
from services.devstack.line_peer import LinePeer, post_webhook
from services.devstack.stack import Stack
from services.runtime.identity import Identity
from tests.helpers import Tenant, all_tickets, api_call, api_get, create_tenant, eventually, login

pytestmark = pytest.mark.e2e

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"


class Line:
    """A tenant with a LINE channel whose access token the peer accepts."""

    def __init__(self, stack: Stack, tenant: Tenant, token: str, channel: dict[str, Any]) -> None:
        self.stack, self.tenant, self.token, self.channel = stack, tenant, token, channel
        self.secret = ""

    @property
    def hook(self) -> str:
        return f"{self.stack.gateway_url}/hooks/line/{self.channel['public_key']}"

    async def post(self, events: list[dict[str, Any]], **kw: Any) -> tuple[int, str]:
        return await post_webhook(self.hook, self.secret, events, **kw)

    async def ticket_of(self, words: str) -> dict[str, Any]:
        async def found() -> list[dict[str, Any]]:
            return [t for t in await all_tickets(self.stack, self.token) if words in t["subject"]]

        [ticket] = await eventually(found, timeout=30, every=0.2)
        code, detail = await api_get(self.stack, self.token, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, detail
        return dict(detail)


@pytest.fixture
async def line(stack: Stack, line_peer: LinePeer) -> Line:
    tenant = await create_tenant(stack)
    token = await login(stack, tenant.login, tenant.password)
    secret = uuid.uuid4().hex
    code, channel = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/channels",
        {
            "kind": "line",
            "inbox_id": tenant.inbox_id,
            "name": "LINE公式アカウント",
            "secret": secret,
            "access_token": line_peer.token,
        },
    )
    assert code == 201, channel
    assert channel["webhook_url"].endswith(f"/hooks/line/{channel['public_key']}")
    made = Line(stack, tenant, token, channel)
    made.secret = secret
    return made


def _stub(stack: Stack, ch: grpc.aio.Channel) -> pb_grpc.ChannelsServiceStub:
    return pb_grpc.ChannelsServiceStub(ch)


async def _deliver(line: Line, conversation_id: str, text: str) -> pb.DeliveryReceipt:
    """What outbound does when an operator's reply to a LINE ticket is sent."""
    md = Identity(tenant_id=line.tenant.tenant_id, display_name="outbound").metadata()
    target = f"127.0.0.1:{line.stack.config.ports.grpc['ingestion']}"
    async with grpc.aio.insecure_channel(target) as ch:
        receipt: pb.DeliveryReceipt = await _stub(line.stack, ch).Deliver(
            pb.DeliverRequest(
                send_id=f"send-{uuid.uuid4().hex}",
                conversation_id=conversation_id,
                text=text,
                author_name="佐藤",
            ),
            metadata=md,
            timeout=10,
        )
        return receipt


async def _conversation(line: Line, ticket_id: str) -> dict[str, Any]:
    async def linked() -> dict[str, Any] | None:
        code, body = await api_get(
            line.stack, line.token, f"/api/v1/tickets/{ticket_id}/conversation"
        )
        return body if code == 200 else None

    return dict(await eventually(linked, timeout=20, every=0.2))


async def test_a_signed_text_message_becomes_a_line_ticket_named_after_the_sender(
    line: Line, line_peer: LinePeer
) -> None:
    user = peer_mod.user_id()
    line_peer.add_profile(user, "山田 花子")
    tag = uuid.uuid4().hex[:8]
    event = peer_mod.text_event(user, f"注文 {tag} が届きません", line_peer.reply_token())
    status, answer = await line.post([event])
    assert status == 200, answer
    ticket = await line.ticket_of(tag)
    assert ticket["from"]["name"] == "山田 花子"
    assert [m["channel"] for m in ticket["messages"]] == ["line"]
    # LINE redelivers the same event: answered 200, stored once
    again = {**event, "deliveryContext": {"isRedelivery": True}}
    status, answer = await line.post([again])
    got = json.loads(answer)
    assert status == 200 and (got["pending"] or (got["received"], got["duplicates"]) == (0, 1))
    # the console's "Verify": a signed, empty list
    assert (await line.post([]))[0] == 200
    await asyncio.sleep(1)
    ticket = await line.ticket_of(tag)
    assert len(ticket["messages"]) == 1


async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    line: Line, line_peer: LinePeer
) -> None:
    user = peer_mod.user_id()
    tag = uuid.uuid4().hex[:8]
    forged = [peer_mod.text_event(user, f"forged {tag}")]
    assert (await line.post(forged, signature=peer_mod.sign("not-the-secret", b"x")))[0] == 401
    assert (await line.post(forged, signature=""))[0] == 401
    body = peer_mod.webhook_body(forged)
    tampered = body.replace(tag.encode(), b"tampered")
    status, _ = await post_webhook(
        line.hook, line.secret, [], body=tampered, signature=peer_mod.sign(line.secret, body)
    )
    assert status == 401
    unknown = f"{line.stack.gateway_url}/hooks/line/{uuid.uuid4().hex}"
    assert (await post_webhook(unknown, line.secret, forged))[0] == 404
    # a genuine message after them: its ticket is the only one
    genuine = f"genuine {uuid.uuid4().hex[:8]}"
    assert (await line.post([peer_mod.text_event(user, genuine)]))[0] == 200
    ticket = await line.ticket_of(genuine)
    assert len(ticket["messages"]) == 1
    assert not [t for t in await all_tickets(line.stack, line.token) if tag in t["subject"]]


async def test_an_image_message_is_attached_to_the_tickets_message(
    line: Line, line_peer: LinePeer
) -> None:
    user = peer_mod.user_id()
    line_peer.add_profile(user, "Photo Sender")
    tag = uuid.uuid4().hex[:8]
    image = peer_mod.message_id()
    line_peer.add_content(image, JPEG, "image/jpeg")
    # one webhook with both events of a new conversation: one ticket
    events = [peer_mod.text_event(user, f"写真 {tag}"), peer_mod.image_event(user, image)]
    assert (await line.post(events))[0] == 200

    async def both() -> dict[str, Any] | None:
        t = await line.ticket_of(tag)
        return t if len(t["messages"]) == 2 else None

    ticket = await eventually(both, timeout=30, every=0.3)
    found: list[bytes] = []
    for m in ticket["messages"]:
        code, message = await api_get(line.stack, line.token, f"/api/v1/messages/{m['id']}")
        assert code == 200, message
        for att in message["parsed"]["attachments"]:
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{line.stack.gateway_url}{att['download_url']}",
                    headers={"Authorization": f"Bearer {line.token}"},
                ) as resp:
                    assert resp.status == 200
                    found.append(await resp.read())
    assert found == [JPEG]

    # content LINE no longer has: the message is kept, saying so, without an attachment
    gone = f"消えた {uuid.uuid4().hex[:8]}"
    lost = peer_mod.message_id()
    events = [peer_mod.text_event(user, gone), peer_mod.image_event(user, lost)]
    assert (await line.post(events))[0] == 200
    await eventually(lambda: _count(line, tag, 4), timeout=30, every=0.3)
    last = (await line.ticket_of(tag))["messages"][-1]
    code, message = await api_get(line.stack, line.token, f"/api/v1/messages/{last['id']}")
    assert code == 200 and message["parsed"]["attachments"] == []
    assert (
        f"image-{lost}" in message["parsed"]["text"]
        and "could not be fetched" in message["parsed"]["text"]
    )

    # LINE's content API does not answer: LINE is answered at once (its webhook fails
    # after 2 s), the message is stored after the answer, saying what is missing
    slow = f"遅い {uuid.uuid4().hex[:8]}"
    stuck = peer_mod.message_id()
    line_peer.add_content(stuck, JPEG, "image/jpeg")
    line_peer.fail("content", 0, times=1)
    events = [peer_mod.text_event(user, slow), peer_mod.image_event(user, stuck)]
    status, answer = await line.post(events)
    assert status == 200 and json.loads(answer)["pending"] is True, answer
    await eventually(lambda: _count(line, tag, 6), timeout=30, every=0.3)
    last = (await line.ticket_of(tag))["messages"][-1]
    code, message = await api_get(line.stack, line.token, f"/api/v1/messages/{last['id']}")
    assert code == 200 and message["parsed"]["attachments"] == []
    assert f"image-{stuck}" in message["parsed"]["text"]


async def test_a_reply_uses_the_reply_token_and_push_once_it_is_spent_or_expired(
    line: Line, line_peer: LinePeer
) -> None:
    user = peer_mod.user_id()
    tag = uuid.uuid4().hex[:8]
    token = line_peer.reply_token()
    assert (await line.post([peer_mod.text_event(user, f"質問 {tag}", token)]))[0] == 200
    ticket = await line.ticket_of(tag)
    conversation = await _conversation(line, ticket["id"])

    first = await _deliver(line, conversation["id"], f"回答1 {tag}")
    assert first.state in ("pending", "delivered"), first

    def sent(text: str) -> list[dict[str, Any]]:
        return [
            c
            for c in [*line_peer.replies, *line_peer.pushes]
            if any(text in m["text"] for m in c["messages"])
        ]

    [reply] = await eventually(lambda: _ready(sent(f"回答1 {tag}")), timeout=20)
    assert reply.get("replyToken") == token

    # the token is spent: the next reply is pushed, with the delivery id as retry key
    second = await _deliver(line, conversation["id"], f"回答2 {tag}")
    [push] = await eventually(lambda: _ready(sent(f"回答2 {tag}")), timeout=20)
    assert push["to"] == user and push["retry_key"] == second.delivery_id

    # a new message with a token LINE no longer takes (expired on its clock): pushed
    late = line_peer.reply_token()
    line_peer.expire(late)
    assert (await line.post([peer_mod.text_event(user, f"追加 {tag}", late)]))[0] == 200
    await eventually(lambda: _count(line, tag, 2), timeout=20)
    await _deliver(line, conversation["id"], f"回答3 {tag}")
    [third] = await eventually(lambda: _ready(sent(f"回答3 {tag}")), timeout=20)
    assert third["to"] == user and "replyToken" not in third


async def _dead(line: Line, delivery_id: str) -> list[dict[str, Any]]:
    """The delivery among the channel's dead letters (an administrator's list)."""
    path = f"/api/v1/channel-deliveries?state=dead&channel_id={line.channel['id']}"
    code, body = await api_get(line.stack, line.token, path)
    assert code == 200, body
    return [d for d in body["deliveries"] if d["id"] == delivery_id]


async def _ready(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return found


async def _count(line: Line, tag: str, n: int) -> bool:
    return len((await line.ticket_of(tag))["messages"]) == n


async def test_line_failing_is_retried_then_dead_lettered_and_retried_by_an_administrator(
    line: Line, line_peer: LinePeer
) -> None:
    user = peer_mod.user_id()
    tag = uuid.uuid4().hex[:8]
    assert (await line.post([peer_mod.text_event(user, f"故障 {tag}")]))[0] == 200
    ticket = await line.ticket_of(tag)
    conversation = await _conversation(line, ticket["id"])
    line_peer.fail("push", 500)
    try:
        receipt = await _deliver(line, conversation["id"], f"届かない {tag}")
        [gone] = await eventually(lambda: _dead(line, receipt.delivery_id), timeout=60, every=0.3)
        # the test stack's SB_CHANNEL_MAX_ATTEMPTS: 3 (tests/conftest.py)
        assert gone["attempts"] == 3 and "HTTP 500" in gone["last_error"]
    finally:
        line_peer.heal()
    assert not [p for p in line_peer.pushes if p["retry_key"] == receipt.delivery_id]
    code, retried = await api_call(
        line.stack, line.token, "POST", f"/api/v1/channel-deliveries/{receipt.delivery_id}/retry"
    )
    assert code == 200, retried

    async def pushed() -> list[dict[str, Any]]:
        return [p for p in line_peer.pushes if p["retry_key"] == receipt.delivery_id]

    [push] = await eventually(pushed, timeout=20, every=0.2)
    assert push["messages"][0]["text"].startswith("届かない")

    # a revoked access token: LINE's 401 is final, dead at the first attempt
    code, body = await api_call(
        line.stack,
        line.token,
        "PATCH",
        f"/api/v1/channels/{line.channel['id']}",
        {"access_token": "revoked-token"},
    )
    assert code == 200, body
    refused = await _deliver(line, conversation["id"], f"無効 {tag}")

    [dead] = await eventually(lambda: _dead(line, refused.delivery_id), timeout=20, every=0.2)
    assert dead["attempts"] == 1 and "HTTP 401" in dead["last_error"]
