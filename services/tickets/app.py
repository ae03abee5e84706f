"""tickets' composition root: message.routed → a ticket; message.scanned → an infected
mail's ticket to the trash; send.changed → the ticket's audit trail; approval.* → the
awaiting_approval view and the audit trail; the TicketsService API; the reply-lock expiry
sweep; the tab counts' compactor."""

from __future__ import annotations

from pydantic import Field, SecretStr
from switchboard.v1 import (
    tickets_lookup_pb2,
    tickets_lookup_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.hosts import ConnectPolicy
from services.runtime.secrets import SecretBox
from services.runtime.service import ServiceRuntime

from . import thread_rules
from .api import TicketsApi
from .api_lookup import CustomerLookupApi
from .approvals import ApprovalTracker
from .contact_imports import ContactImportRunner
from .contacts import ContactsRepo
from .counts import CountCompactor
from .deps import Deps
from .directory import Directory
from .drafts import DraftTracker
from .filing import Filing
from .locks import LockExpirySweeper, ReplyLocks
from .lookup_arrivals import LookupOnArrival
from .lookup_repo import LookupRepo
from .repo import TicketsRepo
from .scans import ScanVerdicts
from .search_limit import SearchLimiter
from .send_audit import SendAudit
from .sla_due import SlaDueTimes

ROUTED = registry.TICKETS_ROUTED
DRAFTS = registry.TICKETS_DRAFTS
SCANS = registry.TICKETS_SCANS
SENDS = registry.TICKETS_SENDS
APPROVALS = registry.TICKETS_APPROVALS


class TicketsSettings(rt_settings.ServiceSettings):
    # Signs our outgoing Message-IDs (TKT-1); without it replies thread by references
    # and subject tags only, and MintMessageId is refused.
    thread_key: SecretStr | None = Field(default=None, min_length=16)
    lock_ttl_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    # Keyword searches (tickets and contacts) per operator in any 60 s (SEC-6).
    search_per_minute: int = Field(default=30, ge=1, le=100_000)
    # issue 21: the customer-data lookup's header secrets are sealed with this key
    # (32 bytes, base64; without it no secret can be stored), and where lookup URLs may
    # lead beyond global addresses besides each tenant's own allow-list.
    secret_key: str | None = None
    connect_allow: rt_settings.ConnectAllow = ""


async def main() -> int:
    settings = rt_settings.load(TicketsSettings)
    rt = ServiceRuntime("tickets", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    redis = await rt.open_redis()
    repo = TicketsRepo(db.pool)
    locks = ReplyLocks(
        redis=redis,
        db=db,
        outbox=outbox,
        repo=repo,
        clock=rt.clock,
        ids=rt.ids,
        ttl_s=settings.lock_ttl_s,
        metrics=rt.metrics,
    )
    rt.metrics.sampler("reply-locks", locks.sample_held)
    deps = Deps(
        db=db,
        outbox=outbox,
        clock=rt.clock,
        ids=rt.ids,
        repo=repo,
        contacts=ContactsRepo(db.pool, outbox, rt.ids),
        locks=locks,
        directory=Directory(rt.channel("accounts")),
        thread_key=(
            thread_rules.thread_key(settings.thread_key.get_secret_value())
            if settings.thread_key
            else None
        ),
        search_limit=SearchLimiter(redis, rt.clock, rt.ids, settings.search_per_minute),
    )
    sweeper = LockExpirySweeper(locks)
    rt.add_background(sweeper.name, sweeper.start, sweeper.stop)
    imports = ContactImportRunner(deps)
    deps.wake_imports = imports.wake
    rt.add_background(imports.name, imports.start, imports.stop)
    compactor = CountCompactor(db.pool)
    rt.add_background(compactor.name, compactor.start, compactor.stop)
    await rt.add_consumer(ROUTED, Filing(deps).on_routed)
    await rt.add_consumer(DRAFTS, DraftTracker(deps).on_draft)
    await rt.add_consumer(SCANS, ScanVerdicts(deps).on_scanned)
    await rt.add_consumer(SENDS, SendAudit(deps).on_send)
    await rt.add_consumer(APPROVALS, ApprovalTracker(deps).on_approval)
    await rt.add_consumer(registry.TICKETS_SLA, SlaDueTimes(deps).on_sla_changed)
    server = rt.grpc_server()
    server.add(
        tickets_pb2_grpc.add_TicketsServiceServicer_to_server,
        TicketsApi(deps),
        tickets_pb2.DESCRIPTOR.services_by_name["TicketsService"].full_name,
    )
    lookups = CustomerLookupApi(
        deps,
        LookupRepo(db.pool),
        SecretBox(settings.secret_key),
        ConnectPolicy.parse(settings.connect_allow),
        rt.metrics,
    )
    arrivals = LookupOnArrival(lookups)
    await rt.add_consumer(registry.TICKETS_LOOKUPS, arrivals.on_created)
    rt.on_close(arrivals.stop)
    server.add(
        tickets_lookup_pb2_grpc.add_CustomerLookupServiceServicer_to_server,
        lookups,
        tickets_lookup_pb2.DESCRIPTOR.services_by_name["CustomerLookupService"].full_name,
    )
    return await rt.serve()
