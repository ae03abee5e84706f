"""Channels routes (issue 21, ING-6; docs/channels.md): the administration of a tenant's
chat widgets, API channels and LINE channels (manage_inboxes; secrets go in, only a hint
comes out, an API channel's new secret once), the API channel's signed inbound endpoint
(public: the body goes to ingestion untouched, which checks the signature), the replies'
deliveries with their dead letters, and a ticket's conversation. Ingestion decides
everything (ChannelsService)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import ingestion_channels_pb2 as C
from switchboard.v1 import ingestion_channels_pb2_grpc

from services.runtime.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER

from .access import CLIENT
from .errors import ApiError
from .request import bad, deps, json_body, metadata
from .responses import json_response, no_content
from .views import iso

HOOK_MAX_BYTES = 10 * 1024 * 1024
SETTINGS = ("chat", "api", "line")


def _stub(request: web.Request) -> ingestion_channels_pb2_grpc.ChannelsServiceStub:
    return ingestion_channels_pb2_grpc.ChannelsServiceStub(deps(request).channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]


def _base(request: web.Request) -> str:
    configured = deps(request).settings.public_url.rstrip("/")
    return configured or str(request.url.origin())


def _ts(pb: Any, name: str) -> str | None:
    return iso(getattr(pb, name)) if pb.HasField(name) else None


def capabilities_view(c: C.ChannelCapabilities) -> dict[str, Any]:
    return {
        "threading": c.threading,
        "attachments_in": c.attachments_in,
        "attachments_out": c.attachments_out,
        "typing": c.typing,
        "reply_window_s": c.reply_window_s,
        "delivery_receipts": c.delivery_receipts,
    }


def channel_view(request: web.Request, ch: C.Channel) -> dict[str, Any]:
    base = _base(request)
    out: dict[str, Any] = {
        "id": ch.id,
        "kind": ch.kind,
        "inbox_id": ch.inbox_id,
        "name": ch.name,
        "enabled": ch.enabled,
        "public_key": ch.public_key,
        "secret_hint": ch.secret_hint or None,
        "token_set": ch.token_set,
        "capabilities": capabilities_view(ch.capabilities),
        "created_at": _ts(ch, "created_at"),
        "updated_at": _ts(ch, "updated_at"),
    }
    if ch.kind == "chat":
        s = ch.chat
        out["chat"] = {
            "allowed_origins": list(s.allowed_origins),
            "colour": s.colour,
            "greeting_ja": s.greeting_ja,
            "greeting_en": s.greeting_en,
            "offline_form_id": s.offline_form_id or None,
            "position": s.position or "right",
        }
        out["snippet"] = f'<script src="{base}/widget/{ch.public_key}.js" async></script>'
    elif ch.kind == "api":
        out["api"] = {"webhook_url": ch.api.webhook_url, "reply_window_s": ch.api.reply_window_s}
        out["inbound_url"] = f"{base}/api/v1/channel-hooks/{ch.public_key}/messages"
    else:
        out["line"] = {"bot_user_id": ch.line.bot_user_id}
        out["webhook_url"] = f"{base}/hooks/line/{ch.public_key}"
    return out


def delivery_view(d: C.Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "channel_id": d.channel_id,
        "channel_name": d.channel_name,
        "kind": d.kind,
        "conversation_id": d.conversation_id,
        "ticket_id": d.ticket_id or None,
        "send_id": d.send_id,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error or None,
        "created_at": _ts(d, "created_at"),
        "next_attempt_at": _ts(d, "next_attempt_at"),
        "delivered_at": _ts(d, "delivered_at"),
    }


def conversation_view(c: C.Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel_id": c.channel_id,
        "kind": c.kind,
        "inbox_id": c.inbox_id,
        "external_id": c.external_id,
        "sender_name": c.sender_name,
        "email": c.email or None,
        "ticket_id": c.ticket_id or None,
        "last_inbound_at": _ts(c, "last_inbound_at"),
        "ended_at": _ts(c, "ended_at"),
        "last_seq": c.last_seq,
        "capabilities": capabilities_view(c.capabilities),
        "reply_window_ends_at": _ts(c, "reply_window_ends_at"),
        "address": c.address,
    }


def _settings(body: dict[str, Any], req: Any) -> None:
    for kind in SETTINGS:
        if kind in body and body[kind] is not None:
            getattr(req, kind).SetInParent()
            node = body[kind]
            target = getattr(req, kind)
            for key, value in node.items():
                if value is None:
                    continue
                if key == "allowed_origins":
                    target.allowed_origins.extend(value)
                else:
                    setattr(target, key, value)


async def create_channel(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = C.CreateChannelRequest(
        kind=body["kind"],
        inbox_id=body["inbox_id"],
        name=body["name"],
        secret=body.get("secret", ""),
        access_token=body.get("access_token", ""),
    )
    _settings(body, req)
    resp = await _stub(request).CreateChannel(req, metadata=metadata(request), timeout=15)
    return json_response(channel_view(request, resp), status=201, customer_data=False)


async def list_channels(request: web.Request) -> web.Response:
    kind = request.query.get("kind", "")
    if kind and kind not in SETTINGS:
        raise bad("chat, api or line", "kind")
    resp = await _stub(request).ListChannels(
        C.ListChannelsRequest(kind=kind), metadata=metadata(request), timeout=15
    )
    return json_response(
        {"channels": [channel_view(request, c) for c in resp.channels]}, customer_data=False
    )


async def get_channel(request: web.Request) -> web.Response:
    resp = await _stub(request).GetChannel(
        C.GetChannelRequest(channel_id=request.match_info["channel_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(channel_view(request, resp), customer_data=False)


async def update_channel(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = C.UpdateChannelRequest(
        channel_id=request.match_info["channel_id"],
        name=body.get("name", ""),
        secret=body.get("secret", ""),
        access_token=body.get("access_token", ""),
        inbox_id=body.get("inbox_id", ""),
    )
    if "enabled" in body:
        req.enabled = body["enabled"]
    _settings(body, req)
    resp = await _stub(request).UpdateChannel(req, metadata=metadata(request), timeout=15)
    return json_response(channel_view(request, resp), customer_data=False)


async def delete_channel(request: web.Request) -> web.Response:
    await _stub(request).DeleteChannel(
        C.DeleteChannelRequest(channel_id=request.match_info["channel_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return no_content()


async def rotate_secret(request: web.Request) -> web.Response:
    resp = await _stub(request).RotateChannelSecret(
        C.RotateChannelSecretRequest(channel_id=request.match_info["channel_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {"secret": resp.secret, "channel": channel_view(request, resp.channel)},
        customer_data=False,
    )


async def api_inbound(request: web.Request) -> web.Response:
    """Public: the signature is the caller's credential; ingestion checks it on the body
    exactly as received (a bad or old one is 401 and nothing is stored)."""
    if request.content_length is not None and request.content_length > HOOK_MAX_BYTES:
        raise ApiError(413, "too_large", "at most 10 MB", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > HOOK_MAX_BYTES:
            raise ApiError(413, "too_large", "at most 10 MB", "body")
        chunks.append(chunk)
    body = b"".join(chunks)
    resp = await _stub(request).ReceiveSigned(
        C.ReceiveSignedRequest(
            kind="api",
            public_key=request.match_info["public_key"],
            body=body,
            signature=request.headers.get(SIGNATURE_HEADER, "")[:200],
            timestamp=request.headers.get(TIMESTAMP_HEADER, "")[:20],
            client_address=request.get(CLIENT) or "",
        ),
        timeout=60,
    )
    accepted = [
        {"conversation_id": m.conversation_id, "seq": m.seq, "duplicate": m.duplicate}
        for m in resp.messages
    ]
    return web.json_response({"accepted": accepted}, status=202)


async def list_deliveries(request: web.Request) -> web.Response:
    raw_limit = request.query.get("limit", "")
    try:
        limit = int(raw_limit) if raw_limit else 0
    except ValueError:
        raise bad("a whole number", "limit") from None
    req = C.ListDeliveriesRequest(
        state=request.query.get("state", ""),
        channel_id=request.query.get("channel_id", ""),
        limit=limit,
    )
    resp = await _stub(request).ListDeliveries(req, metadata=metadata(request), timeout=15)
    return json_response(
        {"deliveries": [delivery_view(d) for d in resp.deliveries]}, customer_data=False
    )


async def retry_delivery(request: web.Request) -> web.Response:
    resp = await _stub(request).RetryDelivery(
        C.RetryDeliveryRequest(delivery_id=request.match_info["delivery_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(delivery_view(resp), customer_data=False)


async def ticket_conversation(request: web.Request) -> web.Response:
    resp = await _stub(request).GetConversation(
        C.GetConversationRequest(ticket_id=request.match_info["ticket_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(conversation_view(resp))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/channels", list_channels)
    r.add_post("/api/v1/channels", create_channel)
    r.add_get("/api/v1/channels/{channel_id}", get_channel)
    r.add_patch("/api/v1/channels/{channel_id}", update_channel)
    r.add_delete("/api/v1/channels/{channel_id}", delete_channel)
    r.add_post("/api/v1/channels/{channel_id}/secret", rotate_secret)
    r.add_post("/api/v1/channel-hooks/{public_key}/messages", api_inbound)
    r.add_get("/api/v1/channel-deliveries", list_deliveries)
    r.add_post("/api/v1/channel-deliveries/{delivery_id}/retry", retry_delivery)
    r.add_get("/api/v1/tickets/{ticket_id}/conversation", ticket_conversation)
