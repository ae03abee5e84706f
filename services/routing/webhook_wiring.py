"""Wiring of the rule webhooks (issue 18) into routing's process: the consumer of
`ticket.rule_actions` that fills the deliveries outbox, the deliverer, and the
RuleWebhooksService API."""

from __future__ import annotations

from pydantic import Field
from switchboard.v1 import routing_webhooks_pb2, routing_webhooks_pb2_grpc

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.db import Database
from services.runtime.grpc_server import GrpcServer
from services.runtime.hosts import ConnectPolicy
from services.runtime.service import ServiceRuntime

from .webhook_api import WebhooksApi
from .webhook_repo import WebhookRepo
from .webhooks import WebhookDeliverer, WebhookIntake, WebhookSettings


class WebhookEnv(rt_settings.ServiceSettings):
    """SB_WEBHOOK_* and SB_CONNECT_ALLOW (docs/deployment.md)."""

    # where webhook URLs may lead beyond the global Internet (names, addresses, CIDR)
    connect_allow: rt_settings.ConnectAllow = ""
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_s: float = Field(default=30.0, ge=0.01, le=86400)
    webhook_retry_cap_s: float = Field(default=3600.0, ge=0.01, le=86400 * 7)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    webhook_poll_s: float = Field(default=1.0, gt=0, le=60)


async def wire(rt: ServiceRuntime, db: Database, server: GrpcServer) -> None:
    env = rt_settings.load(WebhookEnv)
    repo = WebhookRepo(db.pool)
    deliverer = WebhookDeliverer(
        repo,
        rt.clock,
        WebhookSettings(
            max_attempts=env.webhook_max_attempts,
            retry_base_s=env.webhook_retry_base_s,
            retry_cap_s=env.webhook_retry_cap_s,
            timeout_s=env.webhook_timeout_s,
            poll_s=env.webhook_poll_s,
        ),
        ConnectPolicy.parse(env.connect_allow),
    )
    intake = WebhookIntake(db, repo, rt.clock, rt.ids)
    intake.on_added = deliverer.wake
    rt.add_background(deliverer.name, deliverer.start, deliverer.stop)
    rt.on_close(deliverer.close)
    await rt.add_consumer(registry.ROUTING_WEBHOOKS, intake.on_rule_actions)
    server.add(
        routing_webhooks_pb2_grpc.add_RuleWebhooksServiceServicer_to_server,
        WebhooksApi(repo, rt.clock, deliverer.wake),
        routing_webhooks_pb2.DESCRIPTOR.services_by_name["RuleWebhooksService"].full_name,
    )
