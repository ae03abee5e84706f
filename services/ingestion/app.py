"""ingestion's composition root."""

from __future__ import annotations

import os
import socket
import ssl
import sys

from pydantic import Field
from switchboard.v1 import (
    ingestion_channels_pb2,
    ingestion_channels_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
)

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.hosts import ConnectPolicy
from services.runtime.secrets import SecretBox
from services.runtime.service import ServiceRuntime
from services.runtime.webhook_http import WebhookPoster

from . import authresults
from .api import IngestionApi
from .api_channel import ApiParser, ApiSender
from .channel_deliveries import ChannelDeliverer, ChannelReplies, DeliverySettings
from .channel_intake import MAX_ATTACHMENT_BYTES, ChannelIntake, Inboxes
from .channel_links import ChannelLinks
from .channel_model import (
    ChannelRow,
    ChannelSender,
    ContentFetcher,
    ContentRef,
    InboundAttachment,
    InboundMessage,
    SenderNames,
    SignedParser,
)
from .channel_repo import ChannelRepo
from .channels_api import ChannelsApi
from .chat_api import ChatApi, ChatSweeper
from .chat_domain import ChatLimits, chat_secret
from .chat_repo import ChatRepo
from .clamd import Address, Clamd
from .directory import AddressDirectory
from .imap import ImapSupervisor
from .imap_session import FetcherConfig
from .imports import ImportRepo, ImportRunner
from .intake import IntakePipeline, UnparsedSweeper
from .line_adapter import LineParser
from .line_client import LineClient, LineEndpoints
from .mailboxes import MailboxRepo
from .parsing import MailParser
from .scans import Rescanner, ScanRepo
from .smtp import SmtpHandler, SmtpListener
from .store import RawStore
from .virus import VirusScanner


class IngestionSettings(rt_settings.ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    smtp_hostname: str = "switchboard.local"
    secret_key: str | None = None  # 32 bytes, base64: encrypts intake credentials at rest
    imap_lease_ttl_s: float = Field(default=30.0, ge=3, le=600)
    imap_ca_file: str | None = None  # extra CA certificates to trust for IMAP TLS
    imap_idle_refresh_s: float = Field(default=300.0, ge=1, le=29 * 60)
    # mailboxes' hosts may lead to loopback, private or link-local addresses only when
    # allow-listed here (names, addresses, CIDR ranges; issue 16)
    connect_allow: rt_settings.ConnectAllow = ""
    import_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024, le=1024**3)
    parse_workers: int = Field(default=2, ge=0, le=64)  # processes; 0: parse in a thread
    # ING-5: clamd's address (host:port, or a unix socket path); unset: no virus scanning
    clamd_addr: str | None = None
    clamd_timeout_s: float = Field(default=5.0, gt=0, le=300)  # intake's wait per mail
    clamd_retry_s: float = Field(default=30.0, ge=0.1, le=3600)  # first back-off; rescans
    # ADR 0009: the authserv-ids of the MTAs whose Authentication-Results headers count,
    # comma-separated; empty: none (every sender unverified)
    trusted_authserv_ids: str = ""
    # web chat (issue 21): one visitor message at most this long, this many a minute; a
    # chat without a message either way for this long ends (its transcript is mailed)
    chat_max_chars: int = Field(default=2000, ge=1, le=20_000)
    chat_per_minute: int = Field(default=20, ge=1, le=10_000)
    chat_idle_end_s: float = Field(default=1800.0, ge=1, le=7 * 86400)
    # issue 21: replies to API channels' webhooks (and LINE) — attempts, back-off
    # base · 2^(n-1) capped, the deliverer's poll and each send's timeout
    channel_max_attempts: int = Field(default=8, ge=1, le=50)
    channel_retry_base_s: float = Field(default=30.0, gt=0, le=3600)
    channel_retry_cap_s: float = Field(default=3600.0, gt=0, le=86400)
    channel_poll_s: float = Field(default=1.0, gt=0, le=60)
    channel_send_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # LINE's Messaging API (issue 21; docs/channels.md "LINE"): the local peer in tests
    line_api_url: str = Field(default="https://api.line.me", pattern=r"^https?://\S+$")
    line_data_url: str = Field(default="https://api-data.line.me", pattern=r"^https?://\S+$")
    line_timeout_s: float = Field(default=10.0, gt=0, le=120)


# The channel adapters by kind (docs/channels.md), filled in `channel_adapters`: the
# inbound half of those reached by a signed webhook, the outbound half, and the fetchers
# of content a message only refers to. LINE's entries are added beside the API channel's.
PARSERS: dict[str, SignedParser] = {}
SENDERS: dict[str, ChannelSender] = {}
FETCHERS: dict[str, ContentFetcher] = {}
NAMERS: dict[str, SenderNames] = {}


def channel_adapters(settings: IngestionSettings, poster: WebhookPoster) -> LineClient:
    PARSERS["api"] = ApiParser()
    SENDERS["api"] = ApiSender(poster)
    line = LineClient(
        LineEndpoints(
            api_url=settings.line_api_url,
            data_url=settings.line_data_url,
            timeout_s=settings.line_timeout_s,
            content_max_bytes=MAX_ATTACHMENT_BYTES,
        ),
        ConnectPolicy.parse(settings.connect_allow),
    )
    PARSERS["line"] = LineParser()
    SENDERS["line"] = FETCHERS["line"] = NAMERS["line"] = line
    return line


async def main() -> int:
    settings = rt_settings.load(IngestionSettings)
    rt = ServiceRuntime("ingestion", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    store = RawStore(
        db,
        outbox,
        rt.ids,
        trusted_authserv_ids=authresults.trusted_ids(settings.trusted_authserv_ids),
    )
    parser = MailParser(workers=settings.parse_workers)
    await parser.start()
    rt.on_close(parser.close)
    scanner = None
    if settings.clamd_addr:
        try:
            address = Address.parse(settings.clamd_addr)
        except ValueError as exc:
            print(f"invalid settings: SB_CLAMD_ADDR: {exc}", file=sys.stderr)
            return 2
        scanner = VirusScanner(
            Clamd(address),
            rt.clock,
            timeout_s=settings.clamd_timeout_s,
            retry_s=settings.clamd_retry_s,
        )
        rescanner = Rescanner(
            ScanRepo(db, outbox, rt.ids),
            scanner,
            outbox,
            rt.clock,
            every_s=settings.clamd_retry_s,
        )
        rt.add_background(rescanner.name, rescanner.start, rescanner.stop)
        rt.log.info("virus scanning", clamd=str(address))
    pipeline = IntakePipeline(store, outbox, rt.clock, parser=parser, scanner=scanner)
    sweeper = UnparsedSweeper(store, pipeline, outbox, rt.clock)
    rt.add_background("unparsed-sweeper", sweeper.start, sweeper.stop)

    try:
        secret_box = SecretBox(settings.secret_key)
    except ValueError as exc:
        print(f"invalid settings: {exc}", file=sys.stderr)
        return 2
    mailboxes = MailboxRepo(db.pool)
    holder = f"{socket.gethostname()}:{os.getpid()}:{rt.ids.new_str()[-12:]}"
    tls = (
        ssl.create_default_context(cafile=settings.imap_ca_file) if settings.imap_ca_file else None
    )
    supervisor = ImapSupervisor(
        holder=holder,
        repo=mailboxes,
        secrets=secret_box,
        pipeline=pipeline,
        clock=rt.clock,
        lease_ttl_s=settings.imap_lease_ttl_s,
        cfg=FetcherConfig(
            connect=ConnectPolicy.parse(settings.connect_allow),
            idle_wait_s=settings.imap_idle_refresh_s,
        ),
        tls=tls,
        metrics=rt.metrics,
    )
    rt.add_background("imap", supervisor.start, supervisor.stop)
    imports = ImportRepo(db.pool)
    runner = ImportRunner(imports, pipeline, rt.clock, holder=holder)
    rt.add_background("imports", runner.start, runner.stop)

    channels = ChannelRepo(db.pool)
    poster = WebhookPoster(
        ConnectPolicy.parse(settings.connect_allow), settings.channel_send_timeout_s
    )
    rt.on_close(poster.close)
    line = channel_adapters(settings, poster)
    rt.on_close(line.close)

    async def token_of(channel: ChannelRow) -> str | None:
        sealed = await channels.get(channel.tenant_id, channel.id)
        if sealed is not None and sealed.token_enc is not None:
            return secret_box.open(sealed.token_enc, str(channel.id))
        return None

    async def fetch(channel: ChannelRow, ref: ContentRef) -> InboundAttachment:
        fetcher = FETCHERS[channel.kind]
        return await fetcher.fetch(channel, await token_of(channel), ref)

    async def names(channel: ChannelRow, msg: InboundMessage) -> str:
        namer = NAMERS.get(channel.kind)
        if namer is None:
            return ""
        return await namer.display_name(channel, await token_of(channel), msg)

    channel_intake = ChannelIntake(
        db,
        channels,
        pipeline,
        outbox,
        Inboxes(rt.channel("accounts")),
        rt.clock,
        rt.ids,
        fetch,
        names,
    )
    replies = ChannelReplies(db, channels, outbox, rt.clock, rt.ids)
    deliverer = ChannelDeliverer(
        db,
        channels,
        outbox,
        secret_box,
        SENDERS,
        rt.clock,
        rt.ids,
        DeliverySettings(
            max_attempts=settings.channel_max_attempts,
            retry_base_s=settings.channel_retry_base_s,
            retry_cap_s=settings.channel_retry_cap_s,
            poll_s=settings.channel_poll_s,
            timeout_s=settings.channel_send_timeout_s,
        ),
        rt.metrics,
    )
    replies.wake.append(deliverer)
    rt.add_background(deliverer.name, deliverer.start, deliverer.stop)
    links = ChannelLinks(db, channels, outbox, rt.clock, rt.ids)
    await rt.add_consumer(registry.INGESTION_CHANNEL_TICKETS, links.on_ticket_event)

    chat_repo = ChatRepo(db.pool)
    chat_limits = ChatLimits(
        max_chars=settings.chat_max_chars,
        per_minute=settings.chat_per_minute,
        idle_end_s=settings.chat_idle_end_s,
    )
    chat_sweeper = ChatSweeper(chat_repo, db, outbox, rt.clock, rt.ids, chat_limits)
    rt.add_background(chat_sweeper.name, chat_sweeper.start, chat_sweeper.stop)

    server = rt.grpc_server()
    server.add(
        ingestion_channels_pb2_grpc.add_ChatServiceServicer_to_server,
        ChatApi(
            chat_repo,
            db,
            outbox,
            channel_intake,
            rt.channel("tickets"),
            rt.clock,
            rt.ids,
            chat_secret(settings.secret_key),
            chat_limits,
        ),
        ingestion_channels_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
    )
    server.add(
        ingestion_channels_pb2_grpc.add_ChannelsServiceServicer_to_server,
        ChannelsApi(
            db,
            channels,
            channel_intake,
            replies,
            secret_box,
            PARSERS,
            rt.channel("accounts"),
            rt.channel("tickets"),
            rt.clock,
            rt.ids,
        ),
        ingestion_channels_pb2.DESCRIPTOR.services_by_name["ChannelsService"].full_name,
    )
    server.add(
        ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
        IngestionApi(
            store,
            mailboxes,
            secret_box,
            supervisor,
            rt.channel("accounts"),
            rt.clock,
            rt.ids,
            imports,
            runner,
            settings.import_max_bytes,
            pipeline,
            rt.channel("tickets"),
        ),
        ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name,
    )
    directory = AddressDirectory(rt.channel("accounts"))
    listener = SmtpListener(
        SmtpHandler(directory, pipeline, rt.clock, rt.metrics),
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_max_bytes,
        settings.smtp_hostname,
    )
    port = await listener.start()
    rt.log.info("smtp listening", port=port, max_bytes=settings.smtp_max_bytes)
    rt.add_intake("smtp", listener.stop)
    return await rt.serve()
