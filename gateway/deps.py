"""The gateway's settings and what its handlers use (`Deps`, built once by app.py and
found at `request.app[DEPS]`)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field
from switchboard.v1 import (
    accounts_pb2_grpc,
    approval_pb2_grpc,
    composition_pb2_grpc,
    ingestion_channels_pb2_grpc,
    ingestion_pb2_grpc,
    outbound_outreach_pb2_grpc,
    outbound_pb2_grpc,
    routing_assign_pb2_grpc,
    routing_pb2_grpc,
    routing_sla_pb2_grpc,
    routing_webhooks_pb2_grpc,
    tickets_lookup_pb2_grpc,
    tickets_pb2_grpc,
)

from services.runtime import grpc_client, redis_client, registry
from services.runtime import settings as rt_settings
from services.runtime.bus import Bus
from services.runtime.ids import IdGenerator
from services.runtime.metrics import Metrics

from .access import Access, load_spec, rules_of
from .auth import SessionResolver, client_address, parse_networks
from .bodies import Bodies
from .live import LiveHub
from .live_chat import LiveChat

BACKENDS = registry.SERVICE_NAMES  # every gRPC service the gateway calls and reports on
OPENAPI = Path(__file__).with_name("openapi.yaml")


class GatewaySettings(rt_settings.RuntimeSettings):
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    session_cache_s: int = Field(default=30, ge=0, le=3600)
    # SEC-9: a live socket is re-authorised this often even when no change is announced
    live_recheck_s: float = Field(default=60.0, ge=5, le=3600)
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, le=1024**3)
    form_rate_per_minute: int = Field(default=10, ge=1, le=10_000)  # per form and client
    survey_rate_per_minute: int = Field(default=30, ge=1, le=10_000)  # the survey page, per client
    unsubscribe_rate_per_minute: int = Field(default=30, ge=1, le=10_000)  # the unsubscribe page
    chat_socket_rate_per_minute: int = Field(default=60, ge=1, le=100_000)  # web chat sockets
    # web chat: visitors' inboxes asked again this often whether anyone is present (an
    # operator's "online" lapses without an event)
    chat_presence_recheck_s: float = Field(default=30.0, ge=0.1, le=3600)
    # SEC-2: the real client address is read from `client_ip_header` only when the TCP peer
    # is one of these proxies (comma-separated addresses or CIDR ranges).
    trusted_proxies: str = ""
    client_ip_header: str = "X-Forwarded-For"
    # The session cookie is Secure unless this is off (plain http other than localhost).
    cookie_secure: bool = True
    hsts: bool = False  # Strict-Transport-Security, when the gateway is reached over https
    # issue 21: the gateway's public address in the URLs shown to administrators (a chat
    # widget's snippet, an API channel's inbound URL, a LINE webhook URL); empty: the
    # address the request came in by
    public_url: str = ""


class Deps:
    """What the handlers use: settings, the services' stubs, Redis, the bus, the live hub,
    the OpenAPI document with its access rules and request-body validators."""

    def __init__(self, settings: GatewaySettings, metrics: Metrics) -> None:
        self.settings = settings
        self.ids = IdGenerator()
        self.channels = {name: grpc_client.channel(settings.addr_of(name)) for name in BACKENDS}
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(self.channels["accounts"])  # type: ignore[no-untyped-call,unused-ignore]
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(self.channels["tickets"])  # type: ignore[no-untyped-call,unused-ignore]
        self.ingestion = ingestion_pb2_grpc.IngestionServiceStub(self.channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]
        self.composition = composition_pb2_grpc.CompositionServiceStub(self.channels["composition"])  # type: ignore[no-untyped-call,unused-ignore]
        self.outbound = outbound_pb2_grpc.OutboundServiceStub(self.channels["outbound"])  # type: ignore[no-untyped-call,unused-ignore]
        self.outreach = outbound_outreach_pb2_grpc.OutreachServiceStub(self.channels["outbound"])  # type: ignore[no-untyped-call,unused-ignore]
        self.approval = approval_pb2_grpc.ApprovalServiceStub(self.channels["approval"])  # type: ignore[no-untyped-call,unused-ignore]
        self.assignment = routing_assign_pb2_grpc.AssignmentServiceStub(self.channels["routing"])  # type: ignore[no-untyped-call,unused-ignore]
        self.sla = routing_sla_pb2_grpc.SlaServiceStub(self.channels["routing"])  # type: ignore[no-untyped-call,unused-ignore]
        self.routing = routing_pb2_grpc.RoutingServiceStub(self.channels["routing"])  # type: ignore[no-untyped-call,unused-ignore]
        self.webhooks = routing_webhooks_pb2_grpc.RuleWebhooksServiceStub(self.channels["routing"])  # type: ignore[no-untyped-call,unused-ignore]
        self.lookup = tickets_lookup_pb2_grpc.CustomerLookupServiceStub(self.channels["tickets"])  # type: ignore[no-untyped-call,unused-ignore]
        self.redis = redis_client.connect(settings.redis_url)
        self.sessions = SessionResolver(
            self.channels["accounts"], self.redis, settings.session_cache_s
        )
        self.bus = Bus(settings.nats_url, "sb-gateway")
        self.metrics = metrics
        self.live = LiveHub(metrics, self.sessions, settings.live_recheck_s)
        self.live.chat = LiveChat(
            ingestion_channels_pb2_grpc.ChannelsServiceStub(self.channels["ingestion"])  # type: ignore[no-untyped-call,unused-ignore]
        )
        self.spec = load_spec(OPENAPI)
        self.bodies = Bodies(self.spec)
        trusted = parse_networks(settings.trusted_proxies.split(","))
        header = settings.client_ip_header
        self.access = Access(
            rules_of(self.spec),
            self.sessions,
            self.bus,
            self.ids,
            lambda request: client_address(request, trusted, header),
        )


DEPS = web.AppKey("deps", Deps)
