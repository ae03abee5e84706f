"""The live reports on the live socket (RPT-5, RPT-7): a socket sends
`{"type": "subscribe", "topic": "report.live_queue" | "report.live_assignment",
"inbox_id"?}` and is pushed the same body as the REST answer, at once, then whenever the
figures change and at least every `PUSH_EVERY_S`.

Work only while someone watches: every `POLL_S` this replica asks reporting once per
tenant and topic that its own sockets watch (a call without an operator: every inbox of
the tenant), then cuts each socket's copy to the inboxes its operator may see *now*
(views_live_reports.py; the caller is the one the hub last authorised, so a changed
access narrows the next push). Each replica serves its own sockets: several replicas need
nothing shared. A suspended socket (its access changing) gets nothing; one re-authorised
without `see_reports` loses its subscriptions with an `error`; a closed one is forgotten.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from switchboard.v1 import reporting_live_pb2 as pb
from switchboard.v1 import reporting_live_pb2_grpc

from services.runtime import log, permissions
from services.runtime.identity import Identity

from . import views_live_reports as views
from .deps import DEPS
from .live import LiveClient, LiveHub, refusal

QUEUE = "report.live_queue"
ASSIGNMENT = "report.live_assignment"
TOPICS = (QUEUE, ASSIGNMENT)
POLL_S = 1.0  # how often the figures are looked at while someone watches
PUSH_EVERY_S = 2.0  # a push at least this often, changed or not
CALL_TIMEOUT_S = 5.0
MIN_GAP_S = 0.2  # between two rounds, however often the loop is woken


@dataclass(slots=True)
class _Watch:
    topic: str
    inbox_id: str  # "" every inbox the operator may see
    last_body: str = ""  # the last push without its `at`
    last_sent: float = field(default=0.0)


def _stable(body: dict[str, Any]) -> str:
    """A push's content without the moment it was taken (compared to tell a change)."""
    return json.dumps({k: v for k, v in body.items() if k != "at"}, sort_keys=True)


class LiveReports:
    def __init__(self, hub: LiveHub, stub: reporting_live_pb2_grpc.LiveReportsServiceStub) -> None:
        self._hub = hub
        self._stub = stub
        self._watches: dict[LiveClient, dict[str, _Watch]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._log = log.get("gateway.live_reports")

    # -- what sockets ask (gateway/live.py Topics) ---------------------------------------

    def said(self, client: LiveClient, message: dict[str, Any]) -> None:
        kind, topic = message.get("type"), message.get("topic")
        if kind not in ("subscribe", "unsubscribe"):
            self._hub.send(client, refusal(None, "invalid_argument", "unknown type", "type"))
            return
        if topic not in TOPICS:
            self._hub.send(client, refusal(None, "invalid_argument", "unknown topic", "topic"))
            return
        assert isinstance(topic, str)
        if kind == "unsubscribe":
            self._drop(client, topic)
            return
        inbox_id = message.get("inbox_id") or ""
        problem = self._refused(client, inbox_id)
        if problem is not None:
            self._hub.send(client, refusal(topic, *problem))
            return
        canonical = str(uuid.UUID(str(inbox_id))) if inbox_id else ""
        self._watches.setdefault(client, {})[topic] = _Watch(topic, canonical)
        self._wake.set()  # the first push at once

    def gone(self, client: LiveClient) -> None:
        self._watches.pop(client, None)

    def _drop(self, client: LiveClient, topic: str) -> None:
        watching = self._watches.get(client)
        if watching is not None:
            watching.pop(topic, None)
            if not watching:
                del self._watches[client]

    @staticmethod
    def _refused(client: LiveClient, inbox_id: object) -> tuple[str, str, str | None] | None:
        caller = client.caller
        if not caller.may(permissions.SEE_REPORTS):
            return ("permission_denied", "seeing reports needs see_reports", None)
        if inbox_id:
            try:
                canonical = str(uuid.UUID(str(inbox_id)))
            except ValueError:
                return ("invalid_argument", "inbox_id is not a valid id", "inbox_id")
            if not caller.sees_inbox(canonical):
                return ("not_found", "no such inbox", "inbox_id")
        return None

    # -- the pushes ----------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-reports")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        while True:
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
            began = time.monotonic()
            try:
                await self.round()
            except Exception as exc:  # a failed round is retried at the next tick
                self._log.warning("live reports round failed", error=str(exc))
            self._wake.clear()
            # a new subscription wakes the loop for its first push, but a burst of them
            # (or a client sending many) is one round in MIN_GAP_S, never more
            await asyncio.sleep(MIN_GAP_S)
            left = POLL_S - (time.monotonic() - began)
            if left > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=left)
                except TimeoutError:
                    pass

    async def round(self) -> None:
        """Ask reporting once per tenant and topic watched; push what changed or is due."""
        wanted: dict[tuple[str, str], list[tuple[LiveClient, _Watch]]] = defaultdict(list)
        for client, watching in list(self._watches.items()):
            if client.suspended:
                continue  # its access is changing: nothing until it is re-authorised
            for watch in list(watching.values()):
                if not client.caller.may(permissions.SEE_REPORTS):
                    self._drop(client, watch.topic)
                    self._hub.send(
                        client,
                        refusal(watch.topic, "permission_denied", "see_reports withdrawn", None),
                    )
                    continue
                wanted[(client.caller.tenant_id, watch.topic)].append((client, watch))
        await asyncio.gather(*(self._push(t, topic, w) for (t, topic), w in wanted.items()))

    async def _push(
        self, tenant: str, topic: str, watchers: list[tuple[LiveClient, _Watch]]
    ) -> None:
        md = Identity(tenant_id=tenant, display_name="gateway").metadata()
        view: Callable[[views.Sees, str | None], dict[str, Any]]
        try:
            if topic == QUEUE:
                queue = await self._stub.GetLiveQueue(
                    pb.LiveQueueRequest(), metadata=md, timeout=CALL_TIMEOUT_S
                )
                view = functools.partial(views.queue, queue)
            else:
                loads = await self._stub.GetLiveAssignment(
                    pb.LiveAssignmentRequest(), metadata=md, timeout=CALL_TIMEOUT_S
                )
                view = functools.partial(views.assignment, loads)
        except grpc.aio.AioRpcError as err:
            self._log.info("live report not read", topic=topic, code=err.code().name)
            return
        now = time.monotonic()
        for client, watch in watchers:
            caller = client.caller
            if watch.inbox_id and not caller.sees_inbox(watch.inbox_id):
                self._drop(client, topic)
                self._hub.send(client, refusal(topic, "not_found", "no such inbox", "inbox_id"))
                continue
            body = view(caller.sees_inbox, watch.inbox_id or None)
            stable = _stable(body)
            if stable == watch.last_body and now - watch.last_sent < PUSH_EVERY_S - POLL_S / 2:
                continue
            watch.last_body, watch.last_sent = stable, now
            self._hub.send(client, {"type": topic, **body})


def attach(app: web.Application) -> None:
    """The pusher on the app's live hub, started and stopped with the app."""
    deps = app[DEPS]
    stub = reporting_live_pb2_grpc.LiveReportsServiceStub(deps.channels["reporting"])  # type: ignore[no-untyped-call,unused-ignore]
    pusher = LiveReports(deps.live, stub)
    deps.live.topics = pusher

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await pusher.start()
        yield
        await pusher.stop()

    app.cleanup_ctx.append(lifecycle)
