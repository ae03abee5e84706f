"""IMAP intake (aioimaplib): one fetcher per mailbox, supervised under leases.

Per mail the order is fixed, so that a crash anywhere loses nothing and doubles nothing:

  UID FETCH BODY.PEEK[] → store raw and publish message.received with the ack
  → advance the checkpoint (mailbox, UIDVALIDITY, last UID) → only then \\Seen / move /
  delete, as the mailbox is configured.

A crash before the checkpoint fetches the mail again and dedupe (Message-ID per inbox,
else content hash) makes it the same message; a crash after the checkpoint and before the
flag is repaired on the next connect (the after-fetch action is re-applied to every UID at
or below the checkpoint still in the folder). A UIDVALIDITY change rescans the folder from
the start, and dedupe again absorbs what was already taken.

IDLE where the server offers it (a new mail is fetched at once), polling otherwise. A
broken mailbox backs off alone; the others carry on.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import aioimaplib
from prometheus_client.core import Metric
from switchboard.v1 import common_pb2

from services.runtime import log
from services.runtime import metrics as m
from services.runtime.clock import Clock
from services.runtime.errors import FailedPrecondition
from services.runtime.hosts import ConnectPolicy
from services.runtime.periodic import PeriodicTask
from services.runtime.secrets import SecretBox

from .imap_session import (
    FetcherConfig,
    ImapError,
    ImapSession,
)
from .intake import IntakePipeline
from .mailboxes import Mailbox, MailboxRepo
from .store import Intake


@dataclass
class MailboxStats:
    """What the metrics read of one mailbox's fetcher (times are time.monotonic()).

    Fetch lag: the mailbox is up to date as of the moment its last complete pass searched
    the folder (every mail that search found stored), and at every moment it waits in IDLE
    on a live connection (the server would announce a new mail at once), so the lag is 0
    while idle, grows to the poll interval between polls, and grows without bound while
    the mailbox cannot be fetched."""

    caught_up_at: float
    idle: bool = False
    waiting: int = 0  # found by the last search, not stored yet
    fetched: int = 0
    errors: int = 0

    def lag_s(self, now: float) -> float:
        return 0.0 if self.idle else max(now - self.caught_up_at, 0.0)


class ImapMetrics:
    """A collector of the mailboxes this replica fetches now (a mailbox another replica
    holds is reported there; one no longer fetched disappears), read at scrape time."""

    def __init__(self, stats: dict[str, MailboxStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        now = time.monotonic()
        lag, waiting = m.IMAP_FETCH_LAG.family(), m.IMAP_WAITING.family()
        fetched, errors = m.IMAP_FETCHED.family(), m.IMAP_ERRORS.family()
        for mailbox_id, st in list(self._stats.items()):
            lag.add_metric([mailbox_id], st.lag_s(now))
            waiting.add_metric([mailbox_id], st.waiting)
            fetched.add_metric([mailbox_id], st.fetched)
            errors.add_metric([mailbox_id], st.errors)
        return [lag, waiting, fetched, errors]


# A connection test's answer per failed step: fixed words, with only what the
# administrator entered filled in.
_VERDICTS = {
    "dns": "the name {host} does not resolve",
    "connect": "nothing answered at {where}",
    "tls": "TLS with {where} failed (certificate, protocol or STARTTLS)",
    "greeting": "{where} did not answer as an IMAP server",
    "auth": "login refused for {username}",
    "folder": "the folder {folder} cannot be selected",
}


class MailboxFetcher:
    """Fetches one mailbox until stopped or its lease is lost."""

    def __init__(
        self,
        mb: Mailbox,
        *,
        holder: str,
        repo: MailboxRepo,
        secrets: SecretBox,
        pipeline: IntakePipeline,
        clock: Clock,
        cfg: FetcherConfig,
        tls: ssl.SSLContext | None = None,
        on_lost_lease: Callable[[str], Awaitable[None]] | None = None,
        stats: MailboxStats | None = None,
    ) -> None:
        self.mb = mb
        self.stats = stats or MailboxStats(time.monotonic())
        self._holder = holder
        self._repo = repo
        self._secrets = secrets
        self._pipeline = pipeline
        self._clock = clock
        self._cfg = cfg
        self._tls = tls
        self._stop = asyncio.Event()
        self._log = log.get("imap").bind(mailbox_id=mb.id, tenant_id=mb.tenant_id)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"imap:{self.mb.id}")

    async def stop(self, wait_s: float = 3.0) -> None:
        """Ask the fetcher to stop; cancel it if it does not within `wait_s` (safe at any
        point: what was not checkpointed is fetched again, and deduped)."""
        self._stop.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), wait_s)
        except TimeoutError:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass

    async def _status(self, state: str, error: str = "", fetched: int = 0) -> None:
        try:
            await self._repo.set_status(
                self.mb.id, state, self._clock.now(), error=error, fetched=fetched
            )
        except Exception as exc:  # status is a courtesy; it must never stop fetching
            self._log.warning("mailbox status not recorded", error=repr(exc))

    async def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            session: ImapSession | None = None
            try:
                secret = self._secrets.open(self.mb.secret, self.mb.id)
                await self._status("connecting")
                session = ImapSession(self.mb, secret, self._cfg, self._tls)
                await session.open()
                backoff = 1.0
                await self._cycle(session)
            except FailedPrecondition as exc:
                self.stats.errors += 1
                await self._status("error", str(exc))
                self._log.error("mailbox unusable", error=str(exc))
                backoff = self._cfg.backoff_max_s
            except LeaseLost:
                self._log.info("lease lost; another replica fetches this mailbox")
                return
            except (
                ImapError,
                aioimaplib.AioImapException,
                OSError,
                TimeoutError,
                ConnectionError,
            ) as exc:
                self.stats.errors += 1
                await self._status("error", str(exc) or repr(exc))
                self._log.warning(
                    "mailbox trouble; reconnecting", error=str(exc) or repr(exc), retry_in_s=backoff
                )
            except Exception as exc:
                self.stats.errors += 1
                await self._status("error", repr(exc))
                self._log.exception("mailbox fetch failed; reconnecting", retry_in_s=backoff)
            finally:
                if session is not None:
                    await session.close()
            if self._stop.is_set():
                break
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=backoff)
            except TimeoutError:
                pass
            backoff = min(backoff * 2, self._cfg.backoff_max_s)

    async def _cycle(self, session: ImapSession) -> None:
        mb = self.mb
        cp = await self._repo.checkpoint(mb.id)
        if cp is None or cp[0] != session.uidvalidity:
            if cp is not None:
                self._log.warning(
                    "UIDVALIDITY changed; rescanning the folder", old=cp[0], new=session.uidvalidity
                )
            last_uid = 0
            await self._advance(session.uidvalidity, 0)
        else:
            last_uid = cp[1]
            # Repair a crash between checkpoint and flag: re-apply the after-fetch action.
            pending = await session.uids_up_to(last_uid, unseen_only=mb.after_fetch == "seen")
            if pending:
                await session.after_fetch(pending)
        stats = self.stats
        while not self._stop.is_set():
            await self._status("fetching")
            searched_at = time.monotonic()
            uids = await session.uids_after(last_uid)
            stats.waiting = len(uids)
            for uid in uids:
                if self._stop.is_set():
                    return
                raw = await session.fetch(uid)
                if raw is not None:
                    intake = Intake(
                        tenant_id=mb.tenant_id,
                        inbox=common_pb2.InboxRef(id=mb.inbox_id, name=mb.inbox_name),
                        channel="imap",
                        raw=raw,
                        envelope_from="",
                        envelope_recipients=[],
                    )
                    try:
                        # A step that never ends must not stall the mailbox silently: give
                        # up, say so, reconnect and fetch the mail again (it is deduped).
                        await asyncio.wait_for(
                            self._pipeline.accept([intake]), self._cfg.accept_timeout_s
                        )
                    except TimeoutError:
                        raise ImapError(
                            f"mail UID {uid} ({len(raw)} bytes) was not stored within "
                            f"{self._cfg.accept_timeout_s:g} s"
                        ) from None
                await self._advance(session.uidvalidity, uid)
                last_uid = uid
                stats.waiting -= 1
                stats.fetched += 1
                await session.after_fetch([uid])
            stats.caught_up_at = searched_at
            if uids:
                await self._status("fetching", fetched=len(uids))
                self._log.info("fetched", count=len(uids), last_uid=last_uid)
            await self._status("idle" if session.can_idle else "polling")
            stats.idle = session.can_idle
            try:
                await session.wait_for_news(mb.poll_interval_s, self._stop)
            finally:
                if stats.idle:  # up to date until IDLE ended (news, refresh or a drop)
                    stats.idle = False
                    stats.caught_up_at = time.monotonic()

    async def _advance(self, uidvalidity: int, last_uid: int) -> None:
        if not await self._repo.advance(
            self.mb.id, self._holder, uidvalidity, last_uid, self._clock.now()
        ):
            raise LeaseLost


class LeaseLost(Exception):
    pass


class ImapSupervisor(PeriodicTask):
    """Runs a fetcher for every enabled mailbox this replica holds the lease of; renews
    leases every ttl/3; starts fetching mailboxes whose holder died; stops fetchers whose
    mailbox was disabled, deleted or taken over. `wake()` after a mailbox changed."""

    def __init__(
        self,
        *,
        holder: str,
        repo: MailboxRepo,
        secrets: SecretBox,
        pipeline: IntakePipeline,
        clock: Clock,
        lease_ttl_s: float = 30.0,
        cfg: FetcherConfig | None = None,
        tls: ssl.SSLContext | None = None,
        metrics: m.Metrics | None = None,
    ) -> None:
        super().__init__("imap-supervisor", lease_ttl_s / 3)
        self.holder = holder
        self._repo = repo
        self._secrets = secrets
        self._pipeline = pipeline
        self._clock = clock
        self._ttl = lease_ttl_s
        self._cfg = cfg or FetcherConfig()
        self._tls = tls
        self.fetchers: dict[str, MailboxFetcher] = {}
        self.stats: dict[str, MailboxStats] = {}  # of the mailboxes fetched here
        self._log = log.get("imap")
        if metrics is not None:
            metrics.register(ImapMetrics(self.stats))

    async def step(self) -> bool:
        await self.reconcile()
        return False

    @property
    def connect_policy(self) -> ConnectPolicy:
        return self._cfg.connect

    async def test(self, mb: Mailbox, timeout_s: float = 20.0) -> tuple[bool, str, str, int]:
        """Connect, log in and select the folder as a fetcher would, then log out:
        (ok, the step that failed or "ok", what happened, milliseconds). Only a verdict:
        nothing the server said is repeated (issue 16: a test must not read other
        services' banners), and never the secret."""
        started = time.monotonic()

        def done(ok: bool, step: str, detail: str) -> tuple[bool, str, str, int]:
            return ok, step, detail, int((time.monotonic() - started) * 1000)

        try:
            secret = self._secrets.open(mb.secret, mb.id)
        except FailedPrecondition as exc:
            return done(False, "secret", str(exc))
        cfg = replace(self._cfg, command_timeout_s=min(10.0, timeout_s))
        session = ImapSession(mb, secret, cfg, self._tls)
        where = f"{mb.host}:{mb.port}"
        try:
            await asyncio.wait_for(session.open(), timeout_s)
            return done(True, "ok", f"logged in as {mb.username} on {where}; {mb.folder} selected")
        except TimeoutError:
            return done(False, "timeout", f"no answer from {where} within {timeout_s:g} s")
        except ImapError as exc:
            step = exc.step or "greeting"
            if step == "address":
                return done(False, step, str(exc))  # our own words: which range, why
            return done(
                False,
                step,
                _VERDICTS.get(step, _VERDICTS["greeting"]).format(
                    where=where, username=mb.username, folder=mb.folder, host=mb.host
                ),
            )
        except (aioimaplib.AioImapException, OSError, ValueError):
            return done(False, "greeting", _VERDICTS["greeting"].format(where=where))
        finally:
            await session.close()

    async def stop(self) -> None:
        await super().stop()
        await asyncio.gather(*(f.stop() for f in self.fetchers.values()))
        for mailbox_id in list(self.fetchers):
            try:
                await self._repo.release(mailbox_id, self.holder)
            except Exception as exc:
                self._log.warning("lease not released", mailbox_id=mailbox_id, error=repr(exc))
        self.fetchers.clear()
        self.stats.clear()

    async def reconcile(self) -> None:
        wanted = {mb.id: mb for mb in await self._repo.enabled()}
        for mailbox_id, fetcher in list(self.fetchers.items()):
            gone = mailbox_id not in wanted or wanted[mailbox_id] != fetcher.mb
            finished = fetcher.task is not None and fetcher.task.done()
            if gone or finished:
                await fetcher.stop()
                del self.fetchers[mailbox_id]
                if gone:
                    await self._repo.release(mailbox_id, self.holder)
        for mailbox_id, mb in wanted.items():
            held = await self._repo.acquire(mailbox_id, self.holder, self._ttl)
            running = self.fetchers.get(mailbox_id)
            if held and running is None:
                fetcher = MailboxFetcher(
                    mb,
                    holder=self.holder,
                    repo=self._repo,
                    secrets=self._secrets,
                    pipeline=self._pipeline,
                    clock=self._clock,
                    cfg=self._cfg,
                    tls=self._tls,
                    stats=self.stats.setdefault(mailbox_id, MailboxStats(time.monotonic())),
                )
                fetcher.start()
                self.fetchers[mailbox_id] = fetcher
                self._log.info("fetching mailbox", mailbox_id=mailbox_id, host=mb.host)
            elif not held and running is not None:
                await running.stop()
                del self.fetchers[mailbox_id]
        for mailbox_id in [i for i in self.stats if i not in self.fetchers]:
            del self.stats[mailbox_id]  # fetched elsewhere now, or no more
