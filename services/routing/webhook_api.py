"""RuleWebhooksService (issue 18): the tenant's webhook signing secret (a hint, or the
whole secret once, when rotated) and the webhook deliveries — listed by state, a dead one
retried. Every method needs manage_rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from switchboard.v1 import routing_webhooks_pb2 as W

from services.runtime import identity, permissions
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import webhook_sign
from .webhook_repo import STATES, Delivery, Secret, WebhookRepo

LIST_LIMIT = 200


def _admin() -> Identity:
    ident = identity.require_tenant()
    identity.require_permission(ident, permissions.MANAGE_RULES, "manage routing rules")
    return ident


def secret_pb(found: Secret | None, *, whole: bool = False) -> W.WebhookSecret:
    if found is None:
        return W.WebhookSecret(configured=False)
    pb = W.WebhookSecret(configured=True, hint=webhook_sign.hint(found.secret))
    pb.created_at.FromDatetime(found.created_at.astimezone(UTC))
    if whole:
        pb.secret = found.secret
    return pb


def delivery_pb(d: Delivery) -> W.WebhookDelivery:
    pb = W.WebhookDelivery(
        id=d.id,
        rule_id=d.rule_id,
        rule_name=d.rule_name,
        url=d.url,
        trigger=d.trigger,
        ticket_id=d.ticket_id,
        ticket_number=d.ticket_number,
        state=d.state,
        attempts=d.attempts,
        last_error=d.last_error,
    )
    pb.created_at.FromDatetime(d.created_at.astimezone(UTC))
    if d.state == "pending" and d.next_attempt_at is not None:
        pb.next_attempt_at.FromDatetime(d.next_attempt_at.astimezone(UTC))
    if d.delivered_at is not None:
        pb.delivered_at.FromDatetime(d.delivered_at.astimezone(UTC))
    return pb


class WebhooksApi:
    def __init__(self, repo: WebhookRepo, clock: Clock, wake: Callable[[], None]) -> None:
        self._repo = repo
        self._clock = clock
        self._wake = wake

    async def GetWebhookSecret(
        self, request: W.GetWebhookSecretRequest, context: Context
    ) -> W.WebhookSecret:
        ident = _admin()
        return secret_pb(await self._repo.secret(ident.tenant_id))

    async def RotateWebhookSecret(
        self, request: W.GetWebhookSecretRequest, context: Context
    ) -> W.WebhookSecret:
        ident = _admin()
        made = await self._repo.put_secret(
            ident.tenant_id, webhook_sign.new_secret(), self._clock.now()
        )
        return secret_pb(made, whole=True)

    async def ListWebhookDeliveries(
        self, request: W.ListWebhookDeliveriesRequest, context: Context
    ) -> W.ListWebhookDeliveriesResponse:
        ident = _admin()
        state = request.state or "dead"
        if state not in STATES:
            raise InvalidArgument(f"one of {', '.join(STATES)}", field="state")
        if request.limit < 0 or request.limit > LIST_LIMIT:
            raise InvalidArgument(f"between 1 and {LIST_LIMIT}", field="limit")
        found = await self._repo.list(ident.tenant_id, state, request.limit or 50)
        return W.ListWebhookDeliveriesResponse(deliveries=[delivery_pb(d) for d in found])

    async def RetryWebhookDelivery(
        self, request: W.RetryWebhookDeliveryRequest, context: Context
    ) -> W.WebhookDelivery:
        ident = _admin()
        delivery_id = parse_uuid(request.id, "id")
        found = await self._repo.retry(ident.tenant_id, delivery_id, self._clock.now())
        self._wake()
        return delivery_pb(found)
