"""The campaign sender (issue 20, OUT-6): a loop on every outbound replica.

Each pass (1) starts the scheduled campaigns whose time came (`FOR UPDATE SKIP LOCKED`:
one replica each), (2) takes the audience snapshot of a started campaign under a lease —
tickets' ResolveAudience streams the members; each batch becomes recipient rows in one
transaction, an address once (`UNIQUE (campaign_id, address)`), a suppressed address as
`suppressed`, each with the `not_before` of its sending window; a replica killed
mid-snapshot leaves a lease that runs out, and the next one reads the stream again and
inserts only what is missing — and (3) sends a batch: due pending recipients of running
campaigns, claimed `FOR UPDATE SKIP LOCKED`, checked against their window again and the
per-domain throttle (a row per campaign, domain and minute, counted in this same
transaction), rendered and queued as outbox items in the transaction that marks them
`queued`. The dispatcher sends them; `CampaignFinish` carries the outcome back.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import grpc
from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import events, log
from services.runtime.clock import Clock
from services.runtime.errors import DomainError, Unavailable
from services.runtime.grpc_client import passed_on
from services.runtime.identity import Identity
from services.runtime.periodic import PeriodicTask

from . import campaign_domain as cd
from . import signing
from .api import Deps
from .automatic import ACTOR
from .campaign_mail import insert_sends, render_mail
from .campaign_repo import Campaign, CampaignRepo, Member
from .repo import NewSend
from .suppression import UnsubscribeConfig, suppressed_among

SNAPSHOT_LEASE = timedelta(seconds=30)
ANNOUNCE_EVERY_S = 2.0  # the totals of a running campaign, at most this often per replica


@dataclass(frozen=True)
class CampaignSettings:
    batch: int = 200  # recipients claimed and queued per transaction
    throttle_period_s: float = 60.0  # the throttle's period: a minute (tests shorten it)
    worker: str = ""
    unsubscribe: UnsubscribeConfig | None = None  # the links' key (none: no mail goes)


async def announce(
    d: Deps,
    conn: asyncpg.Connection,
    c: Campaign,
    totals: dict[str, int],
    previous: str,
    now: datetime,
    actor: Any = ACTOR,
) -> None:
    """campaign.changed in the caller's transaction."""
    payload = events_pb2.CampaignChanged(
        campaign_id=str(c.id),
        name=c.name,
        inbox_id=str(c.inbox_id),
        state=c.state,
        previous_state=previous,
        recipients=sum(totals.values()),
        **{s: totals.get(s, 0) for s in ("pending", "cancelled", *cd.TOTALS)},
    )
    await d.outbox.add(
        conn,
        events.envelope(
            events.CAMPAIGN_CHANGED,
            event_id=d.ids.new_str(),
            tenant_id=str(c.tenant_id),
            occurred_at=now,
            payload=payload,
            actor=actor,
        ),
    )


class CampaignSender(PeriodicTask):
    def __init__(
        self, d: Deps, repo: CampaignRepo, settings: CampaignSettings, clock: Clock
    ) -> None:
        super().__init__("campaigns", 1.0)
        self._d = d
        self._repo = repo
        self._s = settings
        self._clock = clock
        self._inboxes: dict[str, tuple[float, dict[str, Any]]] = {}
        self._announced: dict[uuid.UUID, float] = {}
        self._log = log.get("outbound.campaigns")
        # the snapshots run beside the sending (a campaign's first recipients go while
        # the rest are still being read)
        self.snapshots = _Snapshots(self)

    async def step(self) -> bool:
        started = await self._start_due()
        sent = await self._send_batch()
        if started:
            self.snapshots.wake()
        return started or sent

    # -- (1) start -------------------------------------------------------------------

    async def _start_due(self) -> bool:
        d = self._d
        now = self._clock.now()
        async with d.db.transaction() as conn:
            c = await self._repo.due(conn, now)
            if c is None:
                return False
            try:
                zone = await d.peers.tenant_zone(Identity(tenant_id=str(c.tenant_id)).metadata())
            except (Unavailable, DomainError):
                zone = ""
            started = await self._repo.update(
                conn,
                c.id,
                {
                    "state": cd.move(c.state, "start"),
                    "started_at": now,
                    "tenant_zone": zone or "UTC",
                },
                now,
            )
            await announce(d, conn, started, {}, c.state, now)
        d.outbox.wake()
        self._log.info("campaign started", campaign_id=str(c.id), tenant_id=str(c.tenant_id))
        return True

    # -- (2) the audience snapshot -----------------------------------------------------

    async def snapshot(self) -> bool:
        d = self._d
        now = self._clock.now()
        c = await self._repo.claim_snapshot(self._s.worker, now, now + SNAPSHOT_LEASE)
        if c is None:
            return False
        bound = self._log.bind(campaign_id=str(c.id), tenant_id=str(c.tenant_id))
        added = 0
        error: str | None = None
        try:
            async for members in self._audience(c):
                async with d.db.transaction() as conn:
                    now = self._clock.now()
                    if not await self._repo.renew_snapshot(
                        conn, c.id, self._s.worker, now + SNAPSHOT_LEASE
                    ):
                        bound.warning("snapshot lost (cancelled or taken over)")
                        return True
                    added += await self._add_members(conn, c, members, now)
                self.wake_sender()
        except Unavailable as err:
            bound.warning("snapshot postponed", error=err.message)
            return False  # the lease runs out; taken again from the start
        except DomainError as err:  # the list or segment is gone (or refused)
            error = f"the audience cannot be read: {err.message}"
        async with d.db.transaction() as conn:
            await self._repo.end_snapshot(conn, c.id, self._s.worker, error)
        bound.info("snapshot taken", added=added, error=error)
        await self.touched([c.id])
        return True

    async def _audience(self, c: Campaign) -> AsyncIterator[Sequence[Any]]:
        """tickets' ResolveAudience, batch by batch (ordered by contact; the same each
        time it is read again). Asked as the service, for the campaign's tenant."""
        req = (
            tickets_pb2.ResolveAudienceRequest(list_id=str(c.list_id))
            if c.list_id
            else tickets_pb2.ResolveAudienceRequest(segment_id=str(c.segment_id))
        )
        md = Identity(tenant_id=str(c.tenant_id)).metadata()
        try:
            async for batch in self._d.peers.tickets.ResolveAudience(req, metadata=md, timeout=600):
                yield list(batch.members)
        except grpc.aio.AioRpcError as err:
            raise passed_on(err, "tickets") from err

    async def _add_members(
        self, conn: asyncpg.Connection, c: Campaign, members: Sequence[Any], now: datetime
    ) -> int:
        unique: dict[str, Any] = {}
        for m in members:
            address = m.address.strip().lower()
            if address and "@" in address:
                unique.setdefault(address, m)
        suppressed = await self._suppressed(conn, c, list(unique))
        start = max(now, c.scheduled_at or now)
        rows = [
            Member(
                id=self._d.ids.new(),
                contact_id=uuid.UUID(m.contact_id),
                address=address,
                domain=cd.domain_of(address),
                name=m.name,
                time_zone=m.time_zone,
                language=m.language,
                custom=dict(m.custom),
                state="suppressed" if address in suppressed else "pending",
                not_before=cd.next_open(start, cd.zone(m.time_zone, c.tenant_zone), c.window),
            )
            for address, m in unique.items()
        ]
        return await self._repo.add_members(conn, c.tenant_id, c.id, rows, now)

    async def _suppressed(
        self, conn: asyncpg.Connection, c: Campaign, addresses: list[str]
    ) -> set[str]:
        """The tenant's suppression list among these addresses."""
        return await suppressed_among(conn, str(c.tenant_id), addresses)

    def wake_sender(self) -> None:
        self.wake()

    # -- (3) send a batch ------------------------------------------------------------

    async def _send_batch(self) -> bool:
        d = self._d
        now = self._clock.now()
        period = cd.period_of(now, self._s.throttle_period_s)
        touched: set[uuid.UUID] = set()
        async with d.db.transaction() as conn:
            rows = await self._repo.claim(conn, now, period, self._s.batch)
            if not rows:
                return False
            campaigns: dict[uuid.UUID, Campaign] = {}
            for cid in {r["campaign_id"] for r in rows}:
                found = await self._repo.by_id(conn, cid)
                if found is not None:
                    campaigns[cid] = found
            ready, later = self._in_window(rows, campaigns, now)
            ready = await self._throttled(conn, ready, campaigns, period)
            suppressed = await self._suppressed_now(conn, ready, campaigns)
            failed: list[tuple[uuid.UUID, str]] = []
            new, queued = [], []
            for r in ready:
                c = campaigns[r["campaign_id"]]
                if r["address"] in suppressed.get(c.tenant_id, set()):
                    continue
                inbox = await self._inbox(str(c.tenant_id), str(c.inbox_id))
                if inbox is None or not inbox.addresses:
                    failed.append((r["id"], "the campaign's inbox has no address"))
                    continue
                try:
                    mail = render_mail(
                        d,
                        c,
                        r,
                        unsubscribe=self._s.unsubscribe,
                        inbox_name=inbox.name,
                        inbox_address=inbox.addresses[0],
                        now=now,
                    )
                except DomainError as err:
                    failed.append((r["id"], err.message[:500]))
                    continue
                new.append(mail)
                queued.append(r["id"])
            if new:
                new = await self._signed(new)
                sends = await insert_sends(d, conn, new, now)
                await self._repo.mark_queued(
                    conn, queued, [s.id for s in sends], [s.message_id for s in sends], now
                )
            if failed:
                await self._repo.set_states(
                    conn, [f[0] for f in failed], "failed", now, [f[1] for f in failed]
                )
            if later:
                await self._repo.postpone(conn, [x[0] for x in later], [x[1] for x in later], now)
            touched = set(campaigns)
        if new:
            d.dispatcher.wake()
        await self.touched(sorted(touched))
        self._log.info("campaign batch", queued=len(new), failed=len(failed), later=len(later))
        return bool(new or failed or later) and len(rows) == self._s.batch

    def _in_window(
        self, rows: list[asyncpg.Record], campaigns: dict[uuid.UUID, Campaign], now: datetime
    ) -> tuple[list[asyncpg.Record], list[tuple[uuid.UUID, datetime]]]:
        ready, later = [], []
        for r in rows:
            c = campaigns.get(r["campaign_id"])
            if c is None:
                continue
            at = cd.next_open(now, cd.zone(r["time_zone"], c.tenant_zone), c.window)
            if at > now:
                later.append((r["id"], at))
            else:
                ready.append(r)
        return ready, later

    async def _throttled(
        self,
        conn: asyncpg.Connection,
        rows: list[asyncpg.Record],
        campaigns: dict[uuid.UUID, Campaign],
        period: datetime,
    ) -> list[asyncpg.Record]:
        """The rows the per-domain throttle lets go in this period (the rest stay pending:
        the claim skips their domain until the next period). The throttle's row is locked
        until this transaction commits, so replicas count one after the other."""
        groups: dict[tuple[uuid.UUID, str], list[asyncpg.Record]] = defaultdict(list)
        out = []
        for r in rows:
            if campaigns[r["campaign_id"]].throttle is None:
                out.append(r)
            else:
                groups[(r["campaign_id"], r["domain"])].append(r)
        for (cid, domain), group in sorted(groups.items()):
            used = await self._repo.reserve(conn, cid, domain, period)
            n = cd.allowance(campaigns[cid].throttle, used, len(group))
            if n:
                await self._repo.use(conn, cid, domain, period, n)
                out.extend(group[:n])
        return out

    async def _suppressed_now(
        self,
        conn: asyncpg.Connection,
        rows: list[asyncpg.Record],
        campaigns: dict[uuid.UUID, Campaign],
    ) -> dict[uuid.UUID, set[str]]:
        """Addresses suppressed since the snapshot: marked `suppressed` here, not sent."""
        out: dict[uuid.UUID, set[str]] = {}
        for tenant in {campaigns[r["campaign_id"]].tenant_id for r in rows}:
            mine = [r for r in rows if campaigns[r["campaign_id"]].tenant_id == tenant]
            found = await suppressed_among(conn, str(tenant), [r["address"] for r in mine])
            if found:
                out[tenant] = found
                ids = [r["id"] for r in mine if r["address"] in found]
                await self._repo.set_states(conn, ids, "suppressed", self._clock.now())
        return out

    async def _signed(self, mails: list[NewSend]) -> list[NewSend]:
        """DKIM-signed when the tenant has a key for the sender's domain (OUT-7): the
        key read once per tenant and domain of the batch."""
        keys: dict[tuple[uuid.UUID, str], Any] = {}
        out = []
        for m in mails:
            where = (m.tenant_id, cd.domain_of(m.envelope_from))
            if where not in keys:
                key = await self._d.repo.dkim_key(str(where[0]), where[1])
                pem = (
                    self._d.box.open(bytes(key.private_key_sealed), f"{where[0]}:{key.domain}")
                    if key is not None
                    else None
                )
                keys[where] = (key, pem)
            key, pem = keys[where]
            if key is None:
                out.append(m)
                continue
            raw = signing.sign(m.raw, domain=key.domain, selector=key.selector, private_pem=pem)
            out.append(replace(m, raw=raw, dkim_signed=True))
        return out

    async def _inbox(self, tenant: str, inbox_id: str) -> Any:
        hit = self._inboxes.get(tenant)
        if hit is None or time.monotonic() - hit[0] > 10:
            listed = await self._d.peers.inboxes(Identity(tenant_id=tenant).metadata())
            hit = (time.monotonic(), {i.id: i for i in listed})
            self._inboxes[tenant] = hit
        return hit[1].get(inbox_id)

    # -- totals and completion ----------------------------------------------------------

    async def touched(self, ids: Sequence[uuid.UUID], *, force: bool = False) -> None:
        """Campaigns whose recipients moved: completed when nothing is left, and their
        totals announced (at most every ANNOUNCE_EVERY_S per campaign and replica, always
        on a change of state)."""
        if not ids:
            return
        d = self._d
        now = self._clock.now()
        async with d.db.transaction() as conn:
            done = {c.id: c for c in await self._repo.complete_if_done(conn, ids, now)}
            due = [
                i
                for i in ids
                if force
                or i in done
                or time.monotonic() - self._announced.get(i, 0.0) >= ANNOUNCE_EVERY_S
            ]
            if not due:
                return
            totals = await self._repo.totals(conn, due)
            for i in due:
                c = done.get(i) or await self._repo.by_id(conn, i)
                if c is None:
                    continue
                self._announced[i] = time.monotonic()
                await announce(d, conn, c, totals[i], "running" if i in done else "", now)
        d.outbox.wake()
        for c in done.values():
            self._log.info("campaign completed", campaign_id=str(c.id), tenant_id=str(c.tenant_id))


class _Snapshots(PeriodicTask):
    def __init__(self, sender: CampaignSender) -> None:
        super().__init__("campaign-snapshots", 1.0)
        self._sender = sender

    async def step(self) -> bool:
        return await self._sender.snapshot()
