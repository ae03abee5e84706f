"""The API channel (issue 21) in and out on the real stack, through the gateway: a signed
inbound message becomes a ticket of channel "api", a second message of the same
conversation joins that ticket, the same idempotency key twice is one message, a bad
signature or a stale timestamp is 401 with nothing stored; a reply handed to Deliver
reaches a local receiver signed, a failing receiver gets retries with back-off, then the
reply is dead-lettered, listed, retried by an administrator and delivered. Another
tenant's ids are 404; bad administration input is 400 naming the field."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from switchboard.v1 import ingestion_channels_pb2 as C
from switchboard.v1 import ingestion_channels_pb2_grpc

from services.devstack.stack import Stack
from services.runtime import signing
from services.runtime.identity import Identity
from tests.e2e.test_access import operator_token
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_rule_actions import receiver
from tests.helpers import Tenant, all_tickets, eventually, published

pytestmark = pytest.mark.e2e


@pytest.fixture
async def channels_grpc(
    stack: Stack,
) -> AsyncIterator[ingestion_channels_pb2_grpc.ChannelsServiceStub]:
    port = stack.config.ports.grpc["ingestion"]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ingestion_channels_pb2_grpc.ChannelsServiceStub(ch)


async def _api_channel(
    stack: Stack, tenant: Tenant, admin: str, webhook_url: str = ""
) -> tuple[dict[str, Any], str]:
    code, made, _ = await call(
        stack,
        "POST",
        "/api/v1/channels",
        {
            "kind": "api",
            "inbox_id": tenant.inbox_id,
            "name": "Bridge",
            "api": {"webhook_url": webhook_url},
        },
        token=admin,
    )
    assert code == 201, made
    assert made["secret_hint"] is None and made["inbound_url"].endswith(
        f"/api/v1/channel-hooks/{made['public_key']}/messages"
    )
    code, rotated, _ = await call(
        stack, "POST", f"/api/v1/channels/{made['id']}/secret", token=admin
    )
    assert code == 200, rotated
    secret = rotated["secret"]
    assert rotated["channel"]["secret_hint"] == signing.hint(secret)
    return rotated["channel"], secret


async def _post_signed(
    stack: Stack,
    public_key: str,
    secret: str,
    messages: list[dict[str, Any]],
    *,
    ts: int | None = None,
    tamper: bool = False,
) -> tuple[int, Any]:
    body = json.dumps({"messages": messages}, ensure_ascii=False).encode()
    stamp = int(time.time()) if ts is None else ts
    headers = {
        "Content-Type": "application/json",
        signing.TIMESTAMP_HEADER: str(stamp),
        signing.SIGNATURE_HEADER: signing.signature(secret, stamp, body),
    }
    if tamper:
        body = body.replace(b"}", b" }", 1)
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/channel-hooks/{public_key}/messages",
            data=body,
            headers=headers,
        ) as resp:
            return resp.status, await resp.json()


def _msg(conversation: str, key: str, text: str, name: str = "山田 花子") -> dict[str, Any]:
    return {
        "id": key,
        "conversation": conversation,
        "sender": {"id": "u-1", "name": name},
        "text": text,
    }


async def _api_tickets(stack: Stack, admin: str) -> list[dict[str, Any]]:
    found = []
    for t in await all_tickets(stack, admin):
        code, full, _ = await call(stack, "GET", f"/api/v1/tickets/{t['id']}", token=admin)
        assert code == 200, full
        if any(m["channel"] == "api" for m in full["messages"]):
            found.append(full)
    return found


async def test_signed_messages_become_one_ticket_per_conversation(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    channel, secret = await _api_channel(stack, tenant, admin)
    key = channel["public_key"]
    conv = f"c-{uuid.uuid4().hex[:6]}"

    async with published(stack, "sb.ingest.channel.>") as seen:
        code, body = await _post_signed(
            stack, key, secret, [_msg(conv, "m1", "注文した商品が届きません\r\nBcc: x@evil")]
        )
        assert code == 202, body
        [first] = body["accepted"]
        assert first["seq"] == 1 and not first["duplicate"]

        [ticket] = await eventually(lambda: _api_tickets(stack, admin), timeout=30)
        [mail] = ticket["messages"]
        assert mail["channel"] == "api"
        assert ticket["subject"] == "API: 注文した商品が届きません Bcc: x@evil"

        # the same key again: one message; a second message joins the same ticket
        code, again = await _post_signed(
            stack,
            key,
            secret,
            [_msg(conv, "m1", "注文した商品が届きません"), _msg(conv, "m2", "追跡番号は 123 です")],
        )
        assert code == 202, again
        assert [(a["seq"], a["duplicate"]) for a in again["accepted"]] == [(1, True), (2, False)]
        assert {a["conversation_id"] for a in again["accepted"]} == {first["conversation_id"]}

        async def joined() -> Any:
            [t] = await _api_tickets(stack, admin)
            return t if len(t["messages"]) == 2 else None

        ticket = await eventually(joined, timeout=30)
        assert [t["id"] for t in await _api_tickets(stack, admin)] == [ticket["id"]]

        async def linked() -> Any:
            code, c, _ = await call(
                stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=admin
            )
            return c if code == 200 else None

        conversation = await linked() or await eventually(linked, timeout=15)
        assert conversation["id"] == first["conversation_id"]
        assert conversation["kind"] == "api" and conversation["last_seq"] == 2
        assert conversation["address"] == f"{first['conversation_id']}@api.channels.invalid"

        def kinds() -> list[tuple[str, str]]:
            return [(e.type, e.tenant_id) for e in seen]

        await eventually(
            lambda: _async(("channel.conversation", tenant.tenant_id) in kinds()), timeout=15
        )
        mine = [e for e in seen if e.tenant_id == tenant.tenant_id]  # not an earlier test's
        messages = [e.channel_message for e in mine if e.type == "channel.message"]
        assert [(m.seq, m.direction) for m in messages] == [(1, "in"), (2, "in")]
        assert all(m.message_id for m in messages)

    # a bad signature, a stale timestamp: 401, nothing stored
    for kwargs in ({"tamper": True}, {"ts": int(time.time()) - 301}):
        code, refused = await _post_signed(
            stack, key, secret, [_msg(conv, f"bad-{uuid.uuid4().hex[:4]}", "x")], **kwargs
        )
        assert code == 401, refused
    code, wrong = await _post_signed(stack, key, "whsec_wrong", [_msg("other", "z", "x")])
    assert code == 401, wrong
    code, none = await _post_signed(stack, "no-such-key", secret, [_msg("other", "z", "x")])
    assert code == 404, none
    # bad body (signed properly): 400 naming the field
    code, bad = await _post_signed(stack, key, secret, [{"conversation": conv, "text": "x"}])
    assert code == 400 and bad["error"]["field"] == "messages[0].id", bad
    code, bad = await _post_signed(
        stack, key, secret, [_msg(conv, "m3", "ok"), _msg(conv, "m4", "x" * 20_001)]
    )
    assert code == 400 and bad["error"]["field"] == "messages[1].text", bad
    code, c, _ = await call(
        stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=admin
    )
    assert code == 200 and c["last_seq"] == 2, c

    # an operator who does not see the inbox, another tenant: 404; an agent of it: 200
    # (without the administration: 403)
    outsider = await operator_token(stack, admin, tenant, inbox_ids=[])
    agent = await operator_token(stack, admin, tenant)
    _, stranger = await admin_of(stack)
    for token in (outsider, stranger):
        code, nothing, _ = await call(
            stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=token
        )
        assert code == 404, nothing
    code, seen, _ = await call(
        stack, "GET", f"/api/v1/tickets/{ticket['id']}/conversation", token=agent
    )
    assert code == 200 and seen["id"] == first["conversation_id"], seen
    code, refused, _ = await call(stack, "GET", "/api/v1/channels", token=agent)
    assert code == 403, refused


async def test_a_message_with_a_large_attachment_becomes_a_mail_with_it(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    channel, secret = await _api_channel(stack, tenant, admin)
    photo = bytes(range(256)) * (6 * 1024 * 4)  # 6 MiB: more than gRPC's default message
    message = _msg(f"c-{uuid.uuid4().hex[:6]}", "p1", "写真を送ります")
    message["attachments"] = [
        {
            "name": "破損.jpg",
            "content_type": "image/jpeg",
            "content_base64": base64.b64encode(photo).decode(),
        }
    ]
    code, body = await _post_signed(stack, channel["public_key"], secret, [message])
    assert code == 202, body
    [ticket] = await eventually(lambda: _api_tickets(stack, admin), timeout=30)
    [mail] = ticket["messages"]
    assert mail["has_attachments"], mail
    code, full, _ = await call(stack, "GET", f"/api/v1/messages/{mail['id']}", token=admin)
    assert code == 200, full
    assert full["channel"] == "api"
    [att] = full["parsed"]["attachments"]
    assert att["filename"] == "破損.jpg" and att["size"] == len(photo), att


async def _async(value: Any) -> Any:
    return value


async def test_a_reply_is_delivered_signed_retried_dead_lettered_and_retried(
    stack: Stack, channels_grpc: ingestion_channels_pb2_grpc.ChannelsServiceStub
) -> None:
    tenant, admin = await admin_of(stack)
    async with receiver(500, 500, 500, 200) as hook:
        channel, secret = await _api_channel(stack, tenant, admin, hook.url)
        conv = f"c-{uuid.uuid4().hex[:6]}"
        code, body = await _post_signed(
            stack, channel["public_key"], secret, [_msg(conv, "k1", "返品したい")]
        )
        assert code == 202, body
        conversation_id = body["accepted"][0]["conversation_id"]
        md = Identity(tenant_id=tenant.tenant_id).metadata()
        allowed = await channels_grpc.CheckReply(
            C.CheckReplyRequest(address=f"{conversation_id}@api.channels.invalid"), metadata=md
        )
        assert allowed.allowed, allowed
        send_id = str(uuid.uuid4())
        req = C.DeliverRequest(
            send_id=send_id,
            address=f"{conversation_id}@api.channels.invalid",
            text="ご連絡ありがとうございます。",
            author_name="佐藤",
        )
        async with published(stack, "sb.ingest.channel.delivery") as changes:
            receipt = await channels_grpc.Deliver(req, metadata=md)
            assert receipt.state == "pending" and receipt.seq == 2, receipt
            again = await channels_grpc.Deliver(req, metadata=md)
            assert again.duplicate and again.delivery_id == receipt.delivery_id

            async def dead() -> Any:
                code, b, _ = await call(
                    stack, "GET", "/api/v1/channel-deliveries?state=dead", token=admin
                )
                assert code == 200, b
                return b["deliveries"]

            [letter] = await eventually(dead, timeout=30)

            def unique() -> list[Any]:  # a relay may publish an event again: once each
                # only this delivery's: an earlier test's webhook may still be retried
                once = {
                    e.event_id: e
                    for e in changes
                    if e.channel_delivery.delivery_id == receipt.delivery_id
                }
                return sorted(once.values(), key=lambda e: e.channel_delivery.attempts)

            await eventually(lambda: _async(len(unique()) >= 4), timeout=15)
        # queued, failed twice (due again after 0.3 s, then 0.6 s: SB_CHANNEL_RETRY_BASE_S
        # doubling), dead after the third attempt
        changes = unique()
        steps = [(e.channel_delivery.state, e.channel_delivery.attempts) for e in changes]
        assert steps == [("pending", 0), ("pending", 1), ("pending", 2), ("dead", 3)], steps
        at = [e.occurred_at.ToDatetime().timestamp() for e in changes]
        assert at[2] - at[1] >= 0.3 and at[3] - at[2] >= 0.6, at
        assert letter["id"] == receipt.delivery_id and letter["attempts"] == 3
        assert letter["last_error"] == "HTTP 500" and letter["kind"] == "api"
        assert len(hook.got) == 3
        headers, raw = hook.got[0]
        assert signing.verify(
            secret,
            headers[signing.TIMESTAMP_HEADER],
            raw,
            headers[signing.SIGNATURE_HEADER],
        )
        assert headers[signing.DELIVERY_HEADER] == receipt.delivery_id
        sent = json.loads(raw)
        assert sent["type"] == "message" and sent["conversation"] == conv
        assert sent["text"] == "ご連絡ありがとうございます。" and sent["author"] == {"name": "佐藤"}

        # another tenant cannot see or retry it
        _, other = await admin_of(stack)
        code, nothing, _ = await call(
            stack, "POST", f"/api/v1/channel-deliveries/{letter['id']}/retry", token=other
        )
        assert code == 404, nothing
        code, nothing, _ = await call(
            stack, "GET", f"/api/v1/channels/{channel['id']}", token=other
        )
        assert code == 404, nothing
        code, listed, _ = await call(stack, "GET", "/api/v1/channel-deliveries", token=other)
        assert code == 200 and listed["deliveries"] == [], listed
        for method, path, body in (
            ("PATCH", f"/api/v1/channels/{channel['id']}", {"name": "mine"}),
            ("DELETE", f"/api/v1/channels/{channel['id']}", None),
            ("POST", f"/api/v1/channels/{channel['id']}/secret", None),
        ):
            code, nothing, _ = await call(stack, method, path, body, token=other)
            assert code == 404, (method, path, nothing)
        code, mine, _ = await call(stack, "GET", f"/api/v1/channels/{channel['id']}", token=admin)
        assert code == 200 and mine["name"] == "Bridge" and mine["secret_hint"], mine

        code, retried, _ = await call(
            stack, "POST", f"/api/v1/channel-deliveries/{letter['id']}/retry", token=admin
        )
        assert code == 200 and retried["state"] in ("pending", "delivered"), retried

        async def delivered() -> Any:
            _code, b, _ = await call(
                stack, "GET", "/api/v1/channel-deliveries?state=delivered", token=admin
            )
            return b["deliveries"]

        [done] = await eventually(delivered, timeout=15)
        assert done["id"] == letter["id"] and len(hook.got) == 4
        code, again_retry, _ = await call(
            stack, "POST", f"/api/v1/channel-deliveries/{letter['id']}/retry", token=admin
        )
        assert code == 409, again_retry

        # a channel turned off: no reply may go (CheckReply says why, Deliver refuses)
        code, off, _ = await call(
            stack, "PATCH", f"/api/v1/channels/{channel['id']}", {"enabled": False}, token=admin
        )
        assert code == 200 and not off["enabled"], off
        verdict = await channels_grpc.CheckReply(
            C.CheckReplyRequest(conversation_id=conversation_id), metadata=md
        )
        assert not verdict.allowed and verdict.reason == "channel_disabled", verdict
        refused = await channels_grpc.Deliver(
            C.DeliverRequest(send_id=str(uuid.uuid4()), conversation_id=conversation_id, text="x"),
            metadata=md,
        )
        assert refused.state == "refused" and "turned off" in refused.error, refused
        unknown = await channels_grpc.CheckReply(
            C.CheckReplyRequest(address=f"{uuid.uuid4()}@api.channels.invalid"), metadata=md
        )
        assert not unknown.allowed and unknown.reason == "no_conversation", unknown
        code, inbound = await _post_signed(
            stack, channel["public_key"], secret, [_msg(conv, "k2", "まだですか")]
        )
        assert code == 404, inbound


async def test_channel_administration_checks_its_input(stack: Stack) -> None:
    tenant, admin = await admin_of(stack)
    cases = [
        ({"kind": "fax", "inbox_id": tenant.inbox_id, "name": "x"}, "kind"),
        ({"kind": "api", "inbox_id": tenant.inbox_id, "name": ""}, "name"),
        ({"kind": "api", "inbox_id": str(uuid.uuid4()), "name": "x"}, "inbox_id"),
        (
            {
                "kind": "api",
                "inbox_id": tenant.inbox_id,
                "name": "x",
                "api": {"webhook_url": "ftp://a"},
            },
            "api.webhook_url",
        ),
        (
            {
                "kind": "chat",
                "inbox_id": tenant.inbox_id,
                "name": "x",
                "chat": {"allowed_origins": ["https://shop.example/path"]},
            },
            "chat.allowed_origins",
        ),
        (
            {"kind": "chat", "inbox_id": tenant.inbox_id, "name": "x", "chat": {"colour": "red"}},
            "chat.colour",
        ),
    ]
    for body, field in cases:
        code, refused, _ = await call(stack, "POST", "/api/v1/channels", body, token=admin)
        assert code in (400, 404) and refused["error"]["field"] == field, (body, refused)
    code, listed, _ = await call(stack, "GET", "/api/v1/channels", token=admin)
    assert code == 200 and listed["channels"] == [], listed

    code, chat, _ = await call(
        stack,
        "POST",
        "/api/v1/channels",
        {
            "kind": "chat",
            "inbox_id": tenant.inbox_id,
            "name": "Shop chat",
            "chat": {"allowed_origins": ["https://shop.example"], "colour": "#0b57d0"},
        },
        token=admin,
    )
    assert code == 201, chat
    assert chat["snippet"].endswith(f'/widget/{chat["public_key"]}.js" async></script>')
    assert chat["chat"]["allowed_origins"] == ["https://shop.example"]
    code, changed, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/channels/{chat['id']}",
        {"name": "Shop", "enabled": False},
        token=admin,
    )
    assert code == 200 and changed["name"] == "Shop" and not changed["enabled"], changed
    assert changed["chat"]["colour"] == "#0b57d0"
    code, replaced, _ = await call(
        stack,
        "PATCH",
        f"/api/v1/channels/{chat['id']}",
        {"chat": {"allowed_origins": ["http://localhost:3000"], "offline_form_id": None,
                  "greeting_ja": "こんにちは"}},
        token=admin,
    )  # fmt: skip
    assert code == 200, replaced
    assert replaced["chat"]["allowed_origins"] == ["http://localhost:3000"]
    assert replaced["chat"]["greeting_ja"] == "こんにちは" and replaced["chat"]["colour"] == ""
    code, refused, _ = await call(
        stack, "POST", f"/api/v1/channels/{chat['id']}/secret", token=admin
    )
    assert code == 400 and refused["error"]["field"] == "channel_id", refused
    code, only, _ = await call(stack, "GET", "/api/v1/channels?kind=chat", token=admin)
    assert [c["id"] for c in only["channels"]] == [chat["id"]]
    code, _, _ = await call(stack, "DELETE", f"/api/v1/channels/{chat['id']}", token=admin)
    assert code == 204
    code, gone, _ = await call(stack, "GET", f"/api/v1/channels/{chat['id']}", token=admin)
    assert code == 404, gone
