"""Rule webhooks routes (issue 18, action `webhook`): the tenant's signing secret (a hint;
the whole secret only in the answer that rotates it) and the webhook deliveries — the
dead ones by default — with a retry of a dead one. Routing decides everything; all need
manage_rules (openapi.yaml)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import routing_webhooks_pb2 as W
from switchboard.v1 import routing_webhooks_pb2_grpc

from .errors import ApiError
from .request import deps, metadata
from .responses import json_response
from .views import iso


def _stub(request: web.Request) -> routing_webhooks_pb2_grpc.RuleWebhooksServiceStub:
    return deps(request).webhooks


def secret_view(pb: W.WebhookSecret) -> dict[str, Any]:
    out: dict[str, Any] = {
        "configured": pb.configured,
        "hint": pb.hint or None,
        "created_at": iso(pb.created_at) if pb.HasField("created_at") else None,
    }
    if pb.secret:
        out["secret"] = pb.secret
    return out


def delivery_view(d: W.WebhookDelivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "rule": {"id": d.rule_id, "name": d.rule_name},
        "url": d.url,
        "trigger": d.trigger,
        "ticket": {"id": d.ticket_id, "number": d.ticket_number},
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error or None,
        "created_at": iso(d.created_at),
        "next_attempt_at": iso(d.next_attempt_at) if d.HasField("next_attempt_at") else None,
        "delivered_at": iso(d.delivered_at) if d.HasField("delivered_at") else None,
    }


async def get_secret(request: web.Request) -> web.Response:
    resp = await _stub(request).GetWebhookSecret(
        W.GetWebhookSecretRequest(), metadata=metadata(request), timeout=15
    )
    return json_response(secret_view(resp), customer_data=False)


async def rotate_secret(request: web.Request) -> web.Response:
    resp = await _stub(request).RotateWebhookSecret(
        W.GetWebhookSecretRequest(), metadata=metadata(request), timeout=15
    )
    return json_response(secret_view(resp), customer_data=False)


async def list_deliveries(request: web.Request) -> web.Response:
    raw_limit = request.query.get("limit", "")
    try:
        limit = int(raw_limit) if raw_limit else 0
    except ValueError:
        raise ApiError(400, "invalid_argument", "a whole number", "limit") from None
    req = W.ListWebhookDeliveriesRequest(state=request.query.get("state", ""), limit=limit)
    resp = await _stub(request).ListWebhookDeliveries(req, metadata=metadata(request), timeout=15)
    return json_response(
        {"deliveries": [delivery_view(d) for d in resp.deliveries]}, customer_data=False
    )


async def retry_delivery(request: web.Request) -> web.Response:
    req = W.RetryWebhookDeliveryRequest(id=request.match_info["delivery_id"])
    resp = await _stub(request).RetryWebhookDelivery(req, metadata=metadata(request), timeout=15)
    return json_response(delivery_view(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/rules/webhook-secret", get_secret)
    r.add_post("/api/v1/rules/webhook-secret", rotate_secret)
    r.add_get("/api/v1/rules/webhook-deliveries", list_deliveries)
    r.add_post("/api/v1/rules/webhook-deliveries/{delivery_id}/retry", retry_delivery)
