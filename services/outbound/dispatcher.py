"""The sending loop of one outbound replica, and the sweep of leases that ran out.

Exactly once, across any number of replicas and crashes (architecture rule 5):
  1. claim: due rows move to `sending` under this worker's lease, one worker per row
     (`FOR UPDATE SKIP LOCKED`), the attempt counted;
  2. just before the message is written, the row moves to phase `data` — only while the
     lease is still this worker's (otherwise the SMTP transaction is abandoned unsent);
  3. the SMTP result is recorded, again only under the lease.
A worker that dies before 2 leaves a lease that runs out: the sweep makes the row due
again (nothing was handed over). One that dies after 2 leaves a row in `data`: the sweep
makes it `unknown`, for an operator to decide; it is never sent again on its own. A retry
reuses the same bytes, so the same Message-ID.

A reply to a channel conversation (its recipient a pseudo-address, issue 21) is handed to
ingestion's `ChannelsService.Deliver` instead (channel_sends.py): idempotent by the
send's id, so it needs no `data` phase — a worker that dies mid-call leaves the row due
again, and the second call changes nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.runtime import events, log
from services.runtime import metrics as m
from services.runtime.channel_address import channel_target
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import IdGenerator
from services.runtime.periodic import PeriodicTask
from services.runtime.secrets import SecretBox

from . import domain
from .batching import GroupCommit
from .changes import send_changed
from .channel_sends import ChannelReplies, route_name
from .domain import Outcome, Result, Route
from .records import Send
from .repo import OutboundRepo, Recorded
from .smtp import Hop, LeaseLost, SmtpClient

ACTOR = events.system_actor("outbound")


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class DispatchSettings:
    lease_s: float = 60.0
    poll_s: float = 0.2
    batch: int = 50
    concurrency: int = 32
    retry_base_s: float = 60.0
    retry_cap_s: float = 3600.0


class Routes:
    """A tenant's SMTP routes (passwords opened), cached for a moment; the platform relay
    when the tenant has none for a mail."""

    def __init__(self, repo: OutboundRepo, box: SecretBox, relay: Hop | None, ttl_s: float = 2.0):
        self._repo = repo
        self._box = box
        self.relay = relay
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, list[Route]]] = {}

    def forget(self, tenant: str) -> None:
        self._cache.pop(tenant, None)

    async def of(self, tenant: str) -> list[Route]:
        hit = self._cache.get(tenant)
        if hit and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        rows = await self._repo.routes(tenant)
        routes = [
            Route(
                id=str(r.id),
                name=r.name,
                scope=r.scope,
                inbox_id=str(r.inbox_id or ""),
                domain=r.domain or "",
                host=r.host,
                port=r.port,
                security=r.security,
                username=r.username,
                password=(
                    self._box.open(bytes(r.password_sealed), str(r.id)) if r.password_sealed else ""
                ),
                verify_certificate=r.verify_certificate,
            )
            for r in rows
        ]
        self._cache[tenant] = (time.monotonic(), routes)
        return routes

    async def hop(self, tenant: str, inbox_id: str, recipients: list[str]) -> Hop | None:
        route = domain.choose_route(await self.of(tenant), inbox_id, recipients)
        return Hop.of(route) if route is not None else self.relay


class Dispatcher:
    def __init__(
        self,
        *,
        repo: OutboundRepo,
        routes: Routes,
        smtp: SmtpClient,
        clock: Clock,
        ids: IdGenerator,
        settings: DispatchSettings,
        worker: str,
        on_final: Any = None,
        metrics: m.Metrics | None = None,
        channels: ChannelReplies | None = None,
    ) -> None:
        self.name = "dispatcher"
        self._channels = channels
        self._repo = repo
        self._routes = routes
        self._smtp = smtp
        self.smtp = smtp
        self._clock = clock
        self._ids = ids
        self._s = settings
        self.worker = worker
        self.on_final = on_final
        self._inflight: dict[uuid.UUID, asyncio.Task[None]] = {}
        # concurrent mails' two writes go to the database together (group commit)
        self._entering: GroupCommit[uuid.UUID, bool] = GroupCommit(self._enter_many)
        self._recording: GroupCommit[Recorded, bool] = GroupCommit(self._record_many)
        self.backlogged = False  # due mail is waiting for a free slot: sending comes first
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = log.get("outbound.dispatcher")
        metrics = metrics or m.Metrics("outbound")
        self._due = metrics.gauge(m.OUTBOUND_DUE)
        self._due_age = metrics.gauge(m.OUTBOUND_DUE_AGE)

    async def sample(self) -> None:
        """Due mail no worker has taken yet, and its oldest's wait: for the metrics
        sampler (the same across replicas: one database)."""
        count, age_s = await self._repo.due_backlog(self._clock.now())
        self._due.set(count)
        self._due_age.set(age_s)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name="dispatcher")
        return self._task

    async def stop(self) -> None:
        """Claim nothing more; let the mails in hand finish (their leases protect them if
        the process is killed meanwhile)."""
        self._stop.set()
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._inflight:
            await asyncio.gather(*self._inflight.values(), return_exceptions=True)

    def _lease_until(self) -> datetime:
        return self._clock.now() + timedelta(seconds=self._s.lease_s)

    async def _run(self) -> None:
        renew_at = time.monotonic() + self._s.lease_s / 3
        while not self._stop.is_set():
            claimed = 0
            try:
                free = self._s.concurrency - len(self._inflight)
                if free > 0:
                    rows = await self._repo.claim(
                        self.worker,
                        self._clock.now(),
                        self._lease_until(),
                        min(free, self._s.batch),
                    )
                    claimed = len(rows)
                    self.backlogged = claimed == min(free, self._s.batch)
                    for row in rows:
                        task = asyncio.create_task(self._send(row))
                        self._inflight[row.id] = task
                        task.add_done_callback(self._done(row.id))
                else:
                    self.backlogged = True
                if time.monotonic() >= renew_at:
                    renew_at = time.monotonic() + self._s.lease_s / 3
                    await self._repo.renew(list(self._inflight), self.worker, self._lease_until())
                if self.backlogged and claimed:
                    continue  # more may be due
                await self._sleep(claimed)
            except (asyncpg.PostgresError, OSError) as err:
                self._log.warning("claiming failed", error=repr(err))
                await self._pause(1.0)

    async def _sleep(self, claimed: int) -> None:
        wait = self._s.poll_s
        if not claimed and len(self._inflight) < self._s.concurrency:
            due = await self._repo.next_due()
            if due is not None:
                wait = min(wait, max((due - self._clock.now()).total_seconds(), 0.0))
        if wait > 0:
            await self._pause(wait)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _enter_many(self, ids: Sequence[uuid.UUID]) -> list[bool]:
        owned = await self._repo.enter_data(ids, self.worker, self._lease_until())
        return [i in owned for i in ids]

    async def _record_many(self, results: Sequence[Recorded]) -> list[bool]:
        done = await self._repo.record(results, self.worker, self._clock.now())
        return [r.send_id in done for r in results]

    def _done(self, send_id: uuid.UUID) -> Any:
        def done(task: asyncio.Task[None]) -> None:
            self._inflight.pop(send_id, None)
            if not task.cancelled() and task.exception() is not None:
                self._log.error(
                    "send task failed", send_id=str(send_id), error=repr(task.exception())
                )
            self._wake.set()  # a slot is free

        return done

    async def _send(self, row: Send) -> None:
        with log.bound(
            send_id=str(row.id),
            tenant_id=str(row.tenant_id),
            ticket_id=str(row.ticket_id or ""),
        ):
            await self._attempt(row)

    async def _attempt(self, row: Send) -> None:
        send_id = row.id
        tenant = str(row.tenant_id)
        recipients = list(row.recipients)
        bound = self._log.bind(attempt=row.attempts)
        try:
            target = channel_target(recipients)
        except FailedPrecondition as err:  # mailboxes and a conversation in one send
            await self._record(row, Result(Outcome.PERMANENT, 0, err.message), "")
            return
        if target is not None:
            if self._channels is None:
                result = Result(Outcome.PERMANENT, 0, "no channel service to deliver through")
            else:
                result = await self._channels.deliver(row, target, self._clock.now())
            await self._record(row, result, route_name(target))
            return
        try:
            hop = await self._routes.hop(tenant, str(row.inbox_id), recipients)
        except Exception as err:  # a route that cannot be used (e.g. mixed relays)
            hop, why = None, f"no usable SMTP route: {getattr(err, 'message', repr(err))}"
        else:
            why = "no SMTP route for this inbox and no platform relay (SB_SMTP_RELAY_HOST)"
        if hop is None:
            result = Result(Outcome.PERMANENT, 0, why)
        else:

            async def before_data() -> None:
                if not await self._entering.submit(send_id):
                    raise LeaseLost()

            try:
                result = await self._smtp.deliver(
                    hop, row.envelope_from, recipients, bytes(row.raw), before_data
                )
            except LeaseLost:
                bound.warning("lease lost before the message: left to its new owner")
                return
        await self._record(row, result, hop.name if hop else "")

    async def _record(self, row: Send, result: Result, route: str) -> None:
        move = domain.after_attempt(
            result,
            row.attempts,
            row.max_attempts,
            base_s=self._s.retry_base_s,
            cap_s=self._s.retry_cap_s,
            rand=random.random(),
        )
        delay = 0.5
        while True:
            now = self._clock.now()
            next_at = (
                now + timedelta(seconds=move.next_attempt_in_s)
                if move.next_attempt_in_s is not None
                else None
            )
            env = send_changed(
                self._ids,
                row,
                action="attempted",
                state=move.state,
                previous="sending",
                at=now,
                actor=ACTOR,
                code=result.code,
                message=result.message,
                send_at=row.send_at,
            )
            try:
                ok = await self._recording.submit(
                    Recorded(
                        send_id=row.id,
                        state=move.state,
                        attempt=row.attempts,
                        outcome=result.outcome,
                        code=result.code,
                        message=result.message,
                        rejected=result.rejected,
                        next_attempt_at=next_at,
                        env=env,
                    )
                )
                break
            except (asyncpg.PostgresError, OSError) as err:
                # the result must not be lost: the lease keeps the row ours meanwhile
                self._log.warning("recording the result failed; retrying", error=repr(err))
                if self._stop.is_set() and delay > 8:
                    return  # the sweep will call it unknown (phase data) or due again
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        self._log.info(
            "attempt recorded" if ok else "attempt not recorded: lease lost",
            state=str(move.state),
            code=result.code,
            attempt=row.attempts,
            route=route,
            reply=result.message[:200],
        )
        if ok and self.on_final is not None and (move.state in domain.FINAL or row.lock_held):
            self.on_final()


class LeaseSweeper(PeriodicTask):
    """Rows whose worker's lease ran out: due again before the message, unknown in it."""

    def __init__(
        self, repo: OutboundRepo, clock: Clock, ids: IdGenerator, every_s: float, on_final: Any
    ) -> None:
        super().__init__("lease-sweeper", every_s)
        self._repo = repo
        self._clock = clock
        self._ids = ids
        self._on_final = on_final
        self._log = log.get("outbound.sweeper")

    async def step(self) -> bool:
        now = self._clock.now()
        rows = await self._repo.expired_leases(now)
        for row in rows:
            in_data = row.phase == "data"
            state = domain.State.UNKNOWN if in_data else domain.State.RETRYING
            message = (
                "the sender stopped after the message was handed over without a reply: it "
                "may have been delivered"
                if in_data
                else "the sender stopped before the message was handed over: sent again"
            )
            env = send_changed(
                self._ids,
                row,
                action="expired",
                state=state,
                previous="sending",
                at=now,
                actor=ACTOR,
                message=message,
            )
            if await self._repo.expire_lease(row, state=state, message=message, now=now, env=env):
                self._log.warning(
                    "lease expired",
                    send_id=str(row.id),
                    tenant_id=str(row.tenant_id),
                    worker=row.lease_owner,
                    state=str(state),
                )
                if in_data:
                    self._on_final()
        return len(rows) == 100
