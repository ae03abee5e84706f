"""Reporting's facts intake under load (issue 19): does it keep up with 200 mails/s of
intake without its lag growing?

Two phases on one stack, each `SB_BENCH_FACTS_SECONDS` (60) long at `SB_BENCH_FACTS_RATE`
(200) per second, each followed by a drain of up to `DRAIN_S`:

- `smtp`: real intake — 3 KB mails sent over SMTP to the demo tenant's Support inbox,
  paced at the rate over several connections (the stack may ingest fewer: `achieved`
  says how many it took). Every event of those mails' tickets (tickets' and outbound's
  streams) is recorded on the side.
- `replay`: reporting alone — the recorded events republished into the streams, one
  mail's events (a "group": its ticket's created, message, routing and send events) at a
  time at the rate, every id that belongs to that group alone (event, ticket, message,
  send ids) replaced by a fresh one each time, so each replayed group makes new facts as
  the mail did.

Every second: each reporting consumer's lag from JetStream (`num_pending` +
`num_ack_pending` of consumer_info), the events published, the facts in reporting's
database. The baseline, in the same run and at the same time: durable consumers of the
same subjects on the same streams whose handler does nothing (the same consumer loop,
services/runtime/bus.py, acking each message), run in this process. Printed per phase:
the lag series, its slope (least squares, growth per minute while driving), its max, the
seconds to drain after the drive stops, facts per second; `met` = the facts consumers'
slope ≤ 2 % of the events published per minute and drained within 10 s.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import aiosmtplib
import nats.errors
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from services.runtime import events, log, registry
from services.runtime.bus import Bus, ConsumerRunner, ConsumerSpec, Delivery
from services.runtime.db import Database, with_database

RATE = float(os.environ.get("SB_BENCH_FACTS_RATE", "200"))
SECONDS = float(os.environ.get("SB_BENCH_FACTS_SECONDS", "60"))
DRAIN_S = 120.0
CONNECTIONS = 8
FACTS = (registry.REPORTING_TICKETS, registry.REPORTING_SENDS)
OTHERS = (registry.REPORTING_APPROVALS, registry.REPORTING_SLA, registry.REPORTING_LIVE)
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Sample = dict[str, Any]


def _baseline_specs() -> tuple[ConsumerSpec, ...]:
    return tuple(
        ConsumerSpec(
            s.stream, s.durable.replace("reporting__", "bench__ack_only_"), s.filter_subjects
        )
        for s in FACTS
    )


async def _noop(env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
    return None


class Meter:
    """Samples the lags, the events published and the facts written once a second."""

    def __init__(self, bus: Bus, db: Database, baseline: tuple[ConsumerSpec, ...]) -> None:
        self._bus, self._db, self._baseline = bus, db, baseline
        self.published = 0
        self.missed = 0
        self.samples: list[Sample] = []

    async def _lag(self, spec: ConsumerSpec) -> int:
        """The consumer's lag; its last one when JetStream does not answer in time (a
        loaded machine), counted in `missed`."""
        try:
            info = await self._bus.js.consumer_info(spec.stream.name, spec.durable, timeout=2)
        except (nats.errors.Error, TimeoutError):
            self.missed += 1
            return int(self.samples[-1]["lags"][spec.durable]) if self.samples else 0
        return int((info.num_pending or 0) + (info.num_ack_pending or 0))

    async def sample(self, t: float) -> Sample:
        lags = {s.durable: await self._lag(s) for s in (*FACTS, *OTHERS, *self._baseline)}
        async with self._db.pool.acquire() as conn:
            facts = await conn.fetchval("SELECT count(*) FROM facts")
        s: Sample = {
            "t": round(t, 1),
            "published": self.published,
            "facts": facts,
            "lag": sum(lags[c.durable] for c in FACTS),
            "lag_baseline": sum(lags[c.durable] for c in self._baseline),
            "lag_live": lags[registry.REPORTING_LIVE.durable],
            "lags": lags,
        }
        self.samples.append(s)
        return s

    async def run_while(
        self, drive: Coroutine[Any, Any, tuple[int, float]]
    ) -> tuple[tuple[int, float], float, float]:
        """Sample every second while `drive` runs, then until every lag is 0 again (up to
        DRAIN_S): what `drive` returned, and the seconds the facts' and the live rows'
        lags took to drain after it (-1: they did not)."""
        self.samples, self.missed = [], 0
        started = time.perf_counter()
        await self.sample(0.0)
        task = asyncio.create_task(drive)
        stopped: float | None = None
        drained: dict[str, float] = {}
        while True:
            elapsed = time.perf_counter() - started  # the next whole second (none skipped)
            await asyncio.sleep(math.floor(elapsed) + 1 - elapsed)
            now = time.perf_counter() - started
            s = await self.sample(now)
            if stopped is None and task.done():
                stopped = now
            if stopped is None:
                continue
            for key in ("lag", "lag_live", "lag_baseline"):
                if s[key] == 0:
                    drained.setdefault(key, now - stopped)
            if len(drained) == 3 or now - stopped > DRAIN_S:
                return task.result(), drained.get("lag", -1.0), drained.get("lag_live", -1.0)


def _met(slope: float | None, events_per_min: float, drain_s: float) -> bool:
    """Kept up: the lag grew by at most 2 % of the events a minute, drained within 10 s."""
    return slope is not None and slope <= 0.02 * events_per_min and 0 <= drain_s <= 10


def _summary(
    samples: list[Sample], drive_s: float, drain_s: float, sent: int, live_drain_s: float
) -> Sample:
    driving = [s for s in samples if s["t"] <= drive_s]
    ts = [s["t"] for s in driving]

    def slope(key: str) -> float | None:
        if len(driving) < 3:
            return None
        return round(statistics.linear_regression(ts, [s[key] for s in driving]).slope * 60, 1)

    published = samples[-1]["published"] - samples[0]["published"]
    facts = samples[-1]["facts"] - samples[0]["facts"]
    events_per_min = published / drive_s * 60 if drive_s else 0.0
    lag_slope = slope("lag")
    return {
        "drive_s": round(drive_s, 1),
        "done": sent,
        "done_per_s": round(sent / drive_s, 1) if drive_s else None,
        "events_published": published,
        "events_per_s": round(published / drive_s, 1) if drive_s else None,
        "facts_written": facts,
        "facts_per_s": round(facts / (drive_s + max(drain_s, 0)), 1),
        "lag_slope_per_min": lag_slope,
        "lag_max": max(s["lag"] for s in samples),
        "lag_max_per_consumer": {c: max(s["lags"][c] for s in samples) for c in samples[0]["lags"]},
        "lag_at_drive_end": driving[-1]["lag"] if driving else None,
        "drain_s": round(drain_s, 1) if drain_s >= 0 else None,
        "live": {
            "what": "reporting__live (the live queue's rows), the same events",
            "lag_slope_per_min": slope("lag_live"),
            "lag_max": max(s["lag_live"] for s in samples),
            "drain_s": round(live_drain_s, 1) if live_drain_s >= 0 else None,
            "met": _met(slope("lag_live"), events_per_min, live_drain_s),
        },
        "baseline": {
            "what": "no-op consumers of the same subjects, same consumer loop, acking only",
            "lag_slope_per_min": slope("lag_baseline"),
            "lag_max": max(s["lag_baseline"] for s in samples),
        },
        "met": _met(lag_slope, events_per_min, drain_s),
        "series": [
            [s["t"], s["lag"], s["lag_baseline"], s["lag_live"], s["published"], s["facts"]]
            for s in samples
        ],
        "series_columns": ["t_s", "lag", "lag_baseline", "lag_live", "events_published", "facts"],
    }


# -- phase 1: SMTP ------------------------------------------------------------------------


class Recorder:
    """Keeps every event on tickets' and outbound's streams (core NATS sees them as they
    are stored), by the ticket they belong to, for the tagged mails' tickets."""

    def __init__(self, tag: str) -> None:
        self._tag = tag.encode()
        self.tagged: set[str] = set()
        self.by_ticket: dict[str, list[tuple[str, bytes]]] = {}
        self.count = 0
        self.accepted_s = 0.0
        self.refused = 0
        self.all_in = asyncio.Event()
        self._expected = -1

    def expect(self, tickets: int) -> None:
        self._expected = tickets
        if len(self.tagged) >= tickets:
            self.all_in.set()

    async def on_msg(self, msg: Any) -> None:
        self.count += 1
        env = events_pb2.EventEnvelope()
        env.ParseFromString(msg.data)
        kind = env.WhichOneof("payload")
        if kind == "send_changed":
            ticket = env.send_changed.ticket_id
        elif kind in (
            "ticket_created",
            "ticket_updated",
            "ticket_assigned",
            "ticket_message_added",
        ):
            ticket = getattr(env, kind).ticket.id
            if kind == "ticket_created" and self._tag in msg.data:
                self.tagged.add(ticket)
                if len(self.tagged) == self._expected:
                    self.all_in.set()
        else:
            return
        if ticket:
            self.by_ticket.setdefault(ticket, []).append((msg.subject, msg.data))

    def groups(self) -> list[list[tuple[str, bytes]]]:
        return [self.by_ticket[t] for t in self.tagged if t in self.by_ticket]


async def _reconnect(stack: Stack, smtp: aiosmtplib.SMTP) -> aiosmtplib.SMTP:
    """A new connection after a refusal or a lost one, as a sending MTA would retry."""
    smtp.close()
    while True:
        await asyncio.sleep(0.5)
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
        try:
            await smtp.connect()
            return smtp
        except (aiosmtplib.SMTPException, OSError):
            continue


async def _smtp(stack: Stack, mails: list[bytes], recorder: Recorder) -> tuple[int, float]:
    """Send the mails paced at RATE; done once every one is a ticket (`ticket.created`)."""
    count = len(mails)
    nxt, sent = 0, 0
    start = time.perf_counter()

    async def sender() -> None:
        nonlocal nxt, sent
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
        await smtp.connect()
        while nxt < count:
            i, nxt = nxt, nxt + 1
            await asyncio.sleep(max(0.0, start + i / RATE - time.perf_counter()))
            while True:
                try:
                    await smtp.sendmail("bench@example.com", ["support@demo.example"], mails[i])
                    break
                except aiosmtplib.SMTPResponseException as exc:
                    if exc.code // 100 != 4:
                        raise
                    recorder.refused += 1  # 451: not stored in time; a sender retries
                    smtp = await _reconnect(stack, smtp)
                except (aiosmtplib.SMTPException, OSError):
                    recorder.refused += 1
                    smtp = await _reconnect(stack, smtp)
            sent += 1
        await smtp.quit()

    await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
    recorder.accepted_s = time.perf_counter() - start
    recorder.expect(sent)
    try:
        await asyncio.wait_for(recorder.all_in.wait(), timeout=600)
    except TimeoutError:
        pass  # `done` says how many
    return len(recorder.tagged), time.perf_counter() - start


# -- phase 2: replay ----------------------------------------------------------------------


def _fresh(groups: list[list[tuple[str, bytes]]]) -> Callable[[int], list[tuple[str, bytes, str]]]:
    """A maker of group i's events with fresh ids: every uuid that occurs in one group only
    (event, ticket, message, send ids) replaced — same length, so the protobuf stays valid —
    and the ones several groups share (tenant, inbox, operators) kept."""
    seen: dict[bytes, int] = {}
    for g in groups:
        for u in {u for _, data in g for u in _UUID.findall(data)}:
            seen[u] = seen.get(u, 0) + 1

    def make(i: int) -> list[tuple[str, bytes, str]]:
        fresh: dict[bytes, bytes] = {}

        def swap(m: re.Match[bytes]) -> bytes:
            u = m.group(0)
            if seen.get(u, 0) > 1:
                return u
            return fresh.setdefault(u, str(uuid.uuid4()).encode())

        out = []
        for subject, data in groups[i % len(groups)]:
            new = _UUID.sub(swap, data)
            env = events_pb2.EventEnvelope()
            env.ParseFromString(new)
            out.append((subject, new, env.event_id))
        return out

    return make


async def _replay(
    bus: Bus, groups: list[list[tuple[str, bytes]]], meter: Meter
) -> tuple[int, float]:
    make = _fresh(groups)
    count = int(RATE * SECONDS)
    start = time.perf_counter()
    batch = max(1, int(RATE // 20))  # every 50 ms
    for first in range(0, count, batch):
        await asyncio.sleep(max(0.0, start + first / RATE - time.perf_counter()))
        items = [e for i in range(first, min(first + batch, count)) for e in make(i)]
        results = await bus.publish_many(items)
        meter.published += sum(1 for r in results if not isinstance(r, BaseException))
    return count, time.perf_counter() - start


# -- the whole ----------------------------------------------------------------------------


async def run(stack: Stack, make_mail: Callable[[str], bytes]) -> dict[str, Any]:
    tag = f"facts-{uuid.uuid4().hex[:6]}"
    bus = Bus(stack.nats_url, "bench-facts-intake")
    await bus.connect()
    db = Database(with_database(stack.database_url, "sb_reporting"))
    await db.open([])
    baseline = _baseline_specs()
    await bus.provision((), baseline)
    runners: list[ConsumerRunner] = [bus.consumer(s, _noop) for s in baseline]
    for r in runners:
        r.start()
    meter = Meter(bus, db, baseline)
    recorder = Recorder(tag)
    figures: dict[str, Any] = {"rate_per_s": RATE, "seconds": SECONDS}
    mails = [make_mail(f"{tag} {i}") for i in range(int(RATE * SECONDS))]
    try:
        for i in range(20):  # warm caches and connections
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port) as smtp:
                await smtp.sendmail(
                    "bench@example.com", ["support@demo.example"], make_mail(f"warm {i}")
                )
        await asyncio.sleep(2)

        async def count_published(msg: Any) -> None:
            meter.published += 1
            await recorder.on_msg(msg)

        subs = [
            await bus.nc.subscribe(f"sb.{s.domain}.>", cb=count_published)
            for s in (events.TICKETS, events.OUTBOUND)
        ]
        began = time.perf_counter()
        (tickets, drive_s), drain, live_drain = await meter.run_while(_smtp(stack, mails, recorder))
        for sub in subs:
            await sub.unsubscribe()
        figures["smtp"] = {
            "what": "real intake: mails over SMTP until each is a ticket, reporting's lag",
            "smtp_accepted_per_s": round(len(mails) / recorder.accepted_s, 1),
            "smtp_refused_or_dropped": recorder.refused,
            **_summary(meter.samples, drive_s, drain, tickets, live_drain),
            "lag_reads_missed": meter.missed,
            "wall_s": round(time.perf_counter() - began, 1),
        }
        groups = recorder.groups()
        sizes = [len(g) for g in groups]
        figures["replay"] = {
            "what": "reporting alone: the smtp phase's events republished per mail, fresh ids",
            "groups_recorded": len(groups),
            "events_per_group": round(statistics.mean(sizes), 2) if sizes else 0,
        }
        if groups:
            began = time.perf_counter()
            (groups_sent, drive_s), drain, live_drain = await meter.run_while(
                _replay(bus, groups, meter)
            )
            figures["replay"].update(
                _summary(meter.samples, drive_s, drain, groups_sent, live_drain)
            )
            figures["replay"]["lag_reads_missed"] = meter.missed
            figures["replay"]["wall_s"] = round(time.perf_counter() - began, 1)
    finally:
        for r in runners:
            await r.stop()
        for s in baseline:
            await bus.js.delete_consumer(s.stream.name, s.durable)
        await bus.drain()
        await db.close()
    figures["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return figures


async def _alone(stack: Stack) -> dict[str, Any]:
    from tests.bench.e2e import make_mail

    return await run(stack, make_mail)


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    log.configure("bench", log.LogFormat.CONSOLE, log.LogLevel.WARNING)
    sys.exit(run_alone("facts_intake", _alone))
