"""Rule webhooks (issue 18, action `webhook`): routing answers `ticket.rule_actions`
(`routing__webhooks`) by writing one delivery per webhook into its outbox table, in one
transaction with the event's dedupe, so a redelivered event adds nothing and a restart
loses nothing. The deliverer claims due rows (SKIP LOCKED, with a lease, so replicas never
post the same one at once), POSTs the signed JSON with aiohttp, and on failure tries again
after base · 2^(n-1) seconds (capped); after the last attempt the delivery is dead, listed
by the API until an administrator retries it.

Where a URL leads is checked at each attempt by the runtime's ConnectPolicy, in aiohttp's
resolver (the addresses checked are the ones connected to): loopback, private, link-local
and other non-global addresses are refused unless SB_CONNECT_ALLOW lists them; a refused
address is not retried. The secret is never logged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from switchboard.v1 import events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery as BusDelivery
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.hosts import ConnectPolicy
from services.runtime.ids import IdGenerator
from services.runtime.outbox import first_time
from services.runtime.webhook_http import LeasedDeliverer, RetrySettings, WebhookPoster

from . import webhook_sign
from .webhook_repo import Delivery, NewDelivery, WebhookRepo

DURABLE = registry.ROUTING_WEBHOOKS.durable
BATCH = 32


WebhookSettings = RetrySettings  # the rule webhooks' (SB_WEBHOOK_*)


class WebhookIntake:
    """`ticket.rule_actions` → one delivery row per webhook action."""

    def __init__(self, db: Database, repo: WebhookRepo, clock: Clock, ids: IdGenerator) -> None:
        self._db = db
        self._repo = repo
        self._clock = clock
        self._ids = ids
        self.on_added: Callable[[], None] | None = None  # the deliverer's wake

    async def on_rule_actions(self, env: events_pb2.EventEnvelope, delivery: BusDelivery) -> None:
        actions = events.payload_of(env, events.TICKET_RULE_ACTIONS)
        if not actions.webhooks:
            return
        now = self._clock.now()
        occurred = env.occurred_at.ToDatetime(tzinfo=UTC)
        items = []
        for i, hook in enumerate(actions.webhooks):
            new_id = self._ids.new()
            items.append(
                NewDelivery(
                    id=new_id,
                    cause_event_id=env.event_id,
                    position=i,
                    rule_id=hook.rule_id,
                    rule_name=hook.rule_name,
                    url=hook.url,
                    trigger=actions.trigger,
                    ticket_id=actions.ticket.id,
                    ticket_number=actions.ticket.number,
                    body=webhook_sign.payload(
                        str(new_id),
                        occurred,
                        actions.trigger,
                        hook.rule_id,
                        hook.rule_name,
                        actions.ticket,
                    ),
                )
            )
        async with self._db.transaction() as conn:
            if not await first_time(conn, DURABLE, env):
                return
            added = await self._repo.add(conn, env.tenant_id, items, now)
        log.get("routing.webhooks").info(
            "webhook deliveries queued", ticket_id=actions.ticket.id, deliveries=added
        )
        if self.on_added is not None:
            self.on_added()


class WebhookDeliverer(LeasedDeliverer[Delivery]):
    batch = BATCH

    def __init__(
        self,
        repo: WebhookRepo,
        clock: Clock,
        settings: WebhookSettings,
        policy: ConnectPolicy,
    ) -> None:
        super().__init__("routing-webhooks", clock, settings)
        self._repo = repo
        self._poster = WebhookPoster(policy, settings.timeout_s)
        self._log = log.get("routing.webhooks")

    async def close(self) -> None:
        await self._poster.close()

    async def claim(self, now: datetime, lease: timedelta, limit: int) -> list[Delivery]:
        return await self._repo.claim(now, lease, limit)

    async def attempt(self, d: Delivery) -> None:
        secret = await self._repo.secret(d.tenant_id)
        if secret is None:  # the tenant's first webhook: its secret is made now
            secret = await self._repo.first_secret(
                d.tenant_id, webhook_sign.new_secret(), self._clock.now()
            )
        body = d.body.encode()
        ts = int(self._clock.now().timestamp())
        headers = webhook_sign.headers(secret.secret, d.id, ts, body)
        outcome = await self._poster.post(d.url, body, headers)
        if outcome.ok:
            await self._repo.delivered(d, self._clock.now())
            self._log.info(
                "webhook delivered",
                tenant_id=d.tenant_id,
                delivery_id=d.id,
                rule_id=d.rule_id,
                status=outcome.status,
            )
            return
        error, final = outcome.error, outcome.final
        attempts = d.attempts + 1
        retry_at = self.retry_at(attempts, final)
        await self._repo.failed(d, error, retry_at)
        self._log.warning(
            "webhook failed" if retry_at else "webhook dead",
            tenant_id=d.tenant_id,
            delivery_id=d.id,
            rule_id=d.rule_id,
            attempts=attempts,
            error=error,
        )
