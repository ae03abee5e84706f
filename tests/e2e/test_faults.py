"""Faults while mail flows: a service killed with SIGKILL and restarted loses nothing and
duplicates nothing; SIGTERM shuts a service down gracefully."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import threading
import time
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devstack.stack import Stack
from tests.helpers import Unavailable, all_tickets, eventually, login, make_mail, send

pytestmark = pytest.mark.e2e

MAILS = 60


def _send_many(port: int, tag: str, count: int, done: list[int], per_second: float) -> None:
    for i in range(count):
        send(port, make_mail(f"{tag} #{i:03d}"))
        done.append(i)
        time.sleep(1 / per_second)


@pytest.mark.parametrize("victim", ["routing", "tickets"])
async def test_sigkill_while_mails_arrive_loses_and_duplicates_nothing(
    stack: Stack, victim: str
) -> None:
    token = await login(stack)
    tag = f"Kill {victim} {uuid.uuid4().hex[:6]}"
    sent: list[int] = []
    sender = threading.Thread(target=_send_many, args=(stack.smtp_port, tag, MAILS, sent, 30.0))
    sender.start()
    await eventually(lambda: asyncio.sleep(0, len(sent) >= MAILS // 3))
    stack.kill(victim, signal.SIGKILL)
    await asyncio.sleep(1.0)  # mails keep arriving while it is down
    stack.start_process(victim)
    await asyncio.to_thread(sender.join)
    assert len(sent) == MAILS  # every mail got its 250

    async def all_there() -> list[str]:
        try:
            tickets = await all_tickets(stack, token, "open")
        except Unavailable:
            return []  # the victim is still coming back: the API says 503 meanwhile
        subjects = [t["subject"] for t in tickets if t["subject"].startswith(tag)]
        return subjects if len(subjects) >= MAILS else []

    await eventually(all_there, timeout=60)
    await asyncio.sleep(1.5)  # let any duplicate show itself
    subjects = [
        t["subject"]
        for t in await all_tickets(stack, token, "open")
        if t["subject"].startswith(tag)
    ]
    assert sorted(subjects) == [f"{tag} #{i:03d}" for i in range(MAILS)]
    await stack.wait_healthy(timeout=30)


async def test_sigterm_goes_not_serving_then_drains_and_exits_cleanly(stack: Stack) -> None:
    port = stack.config.ports.grpc["routing"]
    statuses: list[str] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        watch = stub.Watch(health_pb2.HealthCheckRequest(service=""))

        async def follow() -> None:
            try:
                async for resp in watch:
                    statuses.append(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))
                    if statuses[-1] == "NOT_SERVING":
                        watch.cancel()  # as a load balancer would: stop routing calls here
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass

        follower = asyncio.create_task(follow())
        await eventually(lambda: asyncio.sleep(0, statuses == ["SERVING"]))
        proc = stack.procs["routing"]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        took = time.monotonic() - started
        await asyncio.wait_for(follower, 5)
    assert code == 0
    assert statuses[:2] == ["SERVING", "NOT_SERVING"]
    assert took < 5
    log = stack.log_path("routing").read_text()
    last_run = log[log.rindex("shutting down") :]
    # each of its consumers (routing has two) stops before the process does
    found = re.findall(r"(shutting down|stopped consuming|stopped)\b", last_run)
    order = [step for step, _ in itertools.groupby(found)]
    assert order == ["shutting down", "stopped consuming", "stopped"]
    stack.start_process("routing")
    await stack.wait_healthy(timeout=30)
    # and it works again
    token = await login(stack)
    subject = f"After restart {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(send, stack.smtp_port, make_mail(subject))

    async def listed() -> bool:
        return any(t["subject"] == subject for t in await all_tickets(stack, token, "open"))

    await eventually(listed)
