"""outbound's composition root: the OutboundService API, the dispatcher that sends due
mail, the sweep of expired leases, the steps after sending, and three consumers
(automatic replies from tickets' events, bounces from ingestion's, the hand-over of a
final approval with `send` from approval's)."""

from __future__ import annotations

import socket
from datetime import timedelta

from pydantic import Field, SecretStr
from switchboard.v1 import (
    outbound_campaigns_pb2,
    outbound_campaigns_pb2_grpc,
    outbound_outreach_pb2,
    outbound_outreach_pb2_grpc,
    outbound_pb2,
    outbound_pb2_grpc,
)

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.hosts import ConnectPolicy
from services.runtime.secrets import SecretBox
from services.runtime.service import ServiceRuntime

from . import survey_domain
from .api import Deps
from .api_campaigns import CampaignsApi
from .api_outreach import OutreachApi
from .api_surveys import OutboundWithSurveys
from .approvals import APPROVALS, ApprovedSends
from .autoreply import AutoReplies
from .bounces import Bounces
from .campaign_mail import CampaignFinish, CampaignMail, CampaignUnsubscribes
from .campaign_repo import CampaignRepo
from .campaigns import CampaignSender, CampaignSettings
from .channel_outcomes import ChannelOutcomes
from .channel_sends import ChannelReplies
from .chat_transcripts import ChatTranscripts
from .dispatcher import Dispatcher, DispatchSettings, LeaseSweeper, Routes, worker_name
from .finisher import Finisher
from .peers import Peers
from .repo import OutboundRepo
from .rule_replies import RuleReplies
from .smtp import Hop, SmtpClient
from .suppression import UnsubscribeConfig, config_from
from .survey_repo import SurveyRepo
from .surveys import SURVEYS, Episodes, SurveyConfig, SurveySender

REPLIES = registry.OUTBOUND_REPLIES
BOUNCES = registry.OUTBOUND_BOUNCES


class OutboundSettings(rt_settings.ServiceSettings):
    # seals SMTP passwords and DKIM keys at rest (32 bytes, base64)
    secret_key: str | None = None
    # the platform's relay, for tenants' mail without a route of their own
    smtp_relay_host: str = ""
    smtp_relay_port: int = Field(default=25, ge=1, le=65535)
    smtp_relay_security: str = Field(default="none", pattern="^(tls|starttls|none)$")
    smtp_relay_username: str = ""
    smtp_relay_password: SecretStr | None = None
    smtp_relay_verify_certificate: bool = True
    # routes' hosts may lead to loopback, private or link-local addresses only when
    # allow-listed here (names, addresses, CIDR ranges; issue 16)
    connect_allow: rt_settings.ConnectAllow = ""
    smtp_helo_name: str = Field(default_factory=socket.gethostname)
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600)  # each command
    smtp_data_timeout_s: float = Field(default=120.0, gt=0, le=1200)  # the reply to the message
    smtp_connections_per_route: int = Field(default=16, ge=1, le=100)  # as Postfix (20)
    send_lease_s: float = Field(default=60.0, ge=1, le=3600)
    send_poll_s: float = Field(default=0.2, gt=0, le=10)
    send_concurrency: int = Field(default=32, ge=1, le=500)
    send_max_attempts: int = Field(default=8, ge=1, le=50)
    send_retry_base_s: float = Field(default=60.0, ge=0.01, le=86400)
    send_retry_cap_s: float = Field(default=3600.0, ge=0.01, le=86400 * 7)
    # satisfaction surveys (issue 20): the key that signs the links' tokens (default:
    # derived from secret_key), the gateway's address as customers reach it, and how
    # long a link answers
    survey_secret: SecretStr | None = None
    public_url: str = "http://127.0.0.1:8080"
    survey_link_days: int = Field(default=30, ge=1, le=365)
    # campaigns (issue 20, OUT-6): recipients queued per transaction, and the period of
    # the per-domain throttle (a minute; tests shorten it)
    campaign_batch: int = Field(default=200, ge=1, le=5000)
    campaign_throttle_period_s: float = Field(default=60.0, ge=0.5, le=3600)
    # one-click unsubscribe links (issue 20, OUT-6): their own key (default: derived from
    # secret_key, else from survey_secret); they do not expire
    unsubscribe_secret: SecretStr | None = None


def survey_secret(settings: OutboundSettings) -> str:
    """The key of the survey links: its own, else derived from secret_key (so a
    deployment with one secret still signs); "" when neither is set (no survey goes)."""
    if settings.survey_secret is not None:
        return settings.survey_secret.get_secret_value()
    if settings.secret_key:
        return survey_domain.derived_secret(settings.secret_key)
    return ""


def unsubscribe_config(settings: OutboundSettings) -> UnsubscribeConfig:
    return config_from(
        own=settings.unsubscribe_secret.get_secret_value() if settings.unsubscribe_secret else None,
        secret_key=settings.secret_key,
        survey_secret=(
            settings.survey_secret.get_secret_value() if settings.survey_secret else None
        ),
        public_url=settings.public_url,
    )


async def main() -> int:
    settings = rt_settings.load(OutboundSettings)
    rt = ServiceRuntime("outbound", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    repo = OutboundRepo(db.pool, rt.metrics)
    box = SecretBox(settings.secret_key)
    relay = (
        Hop(
            "relay",
            settings.smtp_relay_host,
            settings.smtp_relay_port,
            settings.smtp_relay_security,
            settings.smtp_relay_username,
            settings.smtp_relay_password.get_secret_value() if settings.smtp_relay_password else "",
            settings.smtp_relay_verify_certificate,
            checked=False,  # the deployment's own relay: not an operator's host
        )
        if settings.smtp_relay_host
        else None
    )
    routes = Routes(repo, box, relay)
    policy = ConnectPolicy.parse(settings.connect_allow)
    smtp = SmtpClient(
        helo_name=settings.smtp_helo_name,
        timeout_s=settings.smtp_timeout_s,
        data_timeout_s=settings.smtp_data_timeout_s,
        per_route=settings.smtp_connections_per_route,
        policy=policy,
    )
    rt.on_close(smtp.close)
    peers = Peers(
        rt.channel("composition"),
        rt.channel("tickets"),
        rt.channel("ingestion"),
        rt.channel("accounts"),
        rt.channel("approval"),
    )
    worker = worker_name()
    dispatcher = Dispatcher(
        repo=repo,
        routes=routes,
        smtp=smtp,
        clock=rt.clock,
        ids=rt.ids,
        settings=DispatchSettings(
            lease_s=settings.send_lease_s,
            poll_s=settings.send_poll_s,
            concurrency=settings.send_concurrency,
            retry_base_s=settings.send_retry_base_s,
            retry_cap_s=settings.send_retry_cap_s,
        ),
        worker=worker,
        metrics=rt.metrics,
        channels=ChannelReplies(peers),
    )
    rt.metrics.sampler("outbound-due", dispatcher.sample)
    finisher = Finisher(repo, peers, rt.clock, worker, busy=lambda: dispatcher.backlogged)
    dispatcher.on_final = finisher.wake
    sweeper = LeaseSweeper(
        repo, rt.clock, rt.ids, every_s=min(settings.send_lease_s / 4, 5.0), on_final=finisher.wake
    )
    deps = Deps(
        db=db,
        repo=repo,
        outbox=outbox,
        peers=peers,
        routes=routes,
        box=box,
        clock=rt.clock,
        ids=rt.ids,
        dispatcher=dispatcher,
        max_attempts=settings.send_max_attempts,
    )
    survey_repo = SurveyRepo(db.pool)
    survey_config = SurveyConfig(
        secret=survey_secret(settings),
        public_url=settings.public_url,
        link_max_age=timedelta(days=settings.survey_link_days),
    )
    api = OutboundWithSurveys(deps, survey_repo, survey_config)
    # the dispatcher stops first (it takes in work), then the sweep and the finisher
    rt.add_background("dispatcher", dispatcher.start, dispatcher.stop)
    rt.add_background(sweeper.name, sweeper.start, sweeper.stop)
    rt.add_background(finisher.name, finisher.start, finisher.stop)
    auto_replies = AutoReplies(deps, api)
    await rt.add_consumer(REPLIES, auto_replies.on_ticket_event)
    await rt.add_consumer(
        registry.OUTBOUND_RULE_REPLIES, RuleReplies(repo, auto_replies).on_rule_actions
    )
    await rt.add_consumer(BOUNCES, Bounces(deps).on_received)
    survey_sender = SurveySender(deps, api, survey_repo, survey_config, rt.clock)
    rt.add_background(survey_sender.name, survey_sender.start, survey_sender.stop)
    await rt.add_consumer(SURVEYS, Episodes(deps, survey_repo, survey_sender.wake).on_ticket_event)
    await rt.add_consumer(APPROVALS, ApprovedSends(deps, api).on_approved)
    campaign_repo = CampaignRepo(db.pool)
    campaign_sender = CampaignSender(
        deps,
        campaign_repo,
        CampaignSettings(
            batch=settings.campaign_batch,
            throttle_period_s=settings.campaign_throttle_period_s,
            worker=worker,
            unsubscribe=unsubscribe_config(settings),
        ),
        rt.clock,
    )
    campaign_finish = CampaignFinish(deps, rt.clock, campaign_sender.touched)
    rt.add_background(campaign_sender.name, campaign_sender.start, campaign_sender.stop)
    snapshots = campaign_sender.snapshots
    rt.add_background(snapshots.name, snapshots.start, snapshots.stop)
    rt.add_background(campaign_finish.name, campaign_finish.start, campaign_finish.stop)
    await rt.add_consumer(
        registry.OUTBOUND_CAMPAIGN_MAIL,
        CampaignMail(deps, campaign_repo, campaign_sender.touched).on_received,
    )
    await rt.add_consumer(
        registry.OUTBOUND_CAMPAIGN_UNSUBSCRIBES,
        CampaignUnsubscribes(deps, campaign_repo, campaign_sender.touched).on_unsubscribed,
    )
    outreach = OutreachApi(deps, api, unsubscribe_config(settings))
    await rt.add_consumer(
        registry.OUTBOUND_CHAT_TRANSCRIPTS,
        ChatTranscripts(rt.channel("ingestion"), outreach, peers).on_conversation,
    )
    await rt.add_consumer(registry.OUTBOUND_CHANNEL_DELIVERIES, ChannelOutcomes(deps).on_delivery)
    server = rt.grpc_server()
    server.add(
        outbound_pb2_grpc.add_OutboundServiceServicer_to_server,
        api,
        outbound_pb2.DESCRIPTOR.services_by_name["OutboundService"].full_name,
    )
    server.add(
        outbound_campaigns_pb2_grpc.add_CampaignsServiceServicer_to_server,
        CampaignsApi(deps, campaign_repo, campaign_sender.wake),
        outbound_campaigns_pb2.DESCRIPTOR.services_by_name["CampaignsService"].full_name,
    )
    server.add(
        outbound_outreach_pb2_grpc.add_OutreachServiceServicer_to_server,
        outreach,
        outbound_outreach_pb2.DESCRIPTOR.services_by_name["OutreachService"].full_name,
    )
    rt.log.info("outbound worker", worker=worker, relay=settings.smtp_relay_host or None)
    return await rt.serve()
