"""Agentless notifications (issue 20, OUT-6; `manage_outreach`, also with a personal API
token as `Authorization: Bearer`): `POST /api/v1/notifications` sends one mail from an
inbox to one recipient, from a template or a subject and body with `{{var.<name>}}`
words, exactly once per idempotency key (the body's `idempotency_key` or the
`Idempotency-Key` header): 202 with the new notification, 200 with the first one when
the key was used for the same request (nothing sent again), 409 when it was used for
another. `GET /api/v1/notifications/{id}` and `GET /api/v1/notifications` read the state
(queued, sent, failed, bounced) as outbound's outbox item has it."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import outbound_outreach_pb2 as pb

from . import views
from .request import bad, deps, json_body, limit, metadata
from .responses import json_response

HEADER = "Idempotency-Key"
STATES = ("queued", "sent", "failed", "bounced")


def notification(n: pb.Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "idempotency_key": n.idempotency_key,
        "inbox_id": n.inbox_id,
        "to": {"address": n.to.address, "name": n.to.name},
        "subject": n.subject,
        "template_id": n.template_id or None,
        "state": n.state,
        "error": n.error,
        "created_at": views.iso(n.created_at),
        "sent_at": views.iso(n.sent_at),
    }


def _text(value: Any) -> str:
    """A variable's value as text: strings as they are, numbers and booleans as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _key(request: web.Request, body: dict[str, Any]) -> str:
    in_body = body.get("idempotency_key")
    in_header = request.headers.get(HEADER)
    if in_body is not None and in_header is not None and in_body != in_header:
        raise bad(f"idempotency_key and the {HEADER} header differ", "idempotency_key")
    key = in_body if in_body is not None else in_header
    if not key:
        raise bad(f"idempotency_key (or the {HEADER} header) is required", "idempotency_key")
    return str(key)


async def create_notification(request: web.Request) -> web.Response:
    body = await json_body(request)
    to = body["to"]
    resp = await deps(request).outreach.CreateNotification(
        pb.CreateNotificationRequest(
            idempotency_key=_key(request, body),
            inbox_id=body["inbox_id"],
            template_id=body.get("template_id", ""),
            subject=body.get("subject", ""),
            body=body.get("body", ""),
            to=pb.Recipient(address=to["address"], name=to.get("name", "")),
            variables={k: _text(v) for k, v in body.get("variables", {}).items()},
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(notification(resp.notification), 202 if resp.created else 200)


async def get_notification(request: web.Request) -> web.Response:
    resp = await deps(request).outreach.GetNotification(
        pb.GetNotificationRequest(notification_id=request.match_info["notification_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(notification(resp))


async def list_notifications(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    if state and state not in STATES:
        raise bad(f"state must be one of {', '.join(STATES)}", "state")
    resp = await deps(request).outreach.ListNotifications(
        pb.ListNotificationsRequest(
            cursor=request.query.get("cursor", "")[:100], limit=limit(request), state=state
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {
            "notifications": [notification(n) for n in resp.notifications],
            "next_cursor": resp.next_cursor,
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/notifications", create_notification)
    r.add_get("/api/v1/notifications", list_notifications)
    r.add_get("/api/v1/notifications/{notification_id}", get_notification)
