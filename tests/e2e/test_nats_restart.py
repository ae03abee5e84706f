"""NATS restarted while mail arrives: SMTP answers 451 while the bus is away (never 250
for a mail whose event is not acknowledged), the sender retries as any MTA does, the
services reconnect, and every mail becomes exactly one ticket."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
import uuid

import pytest

from services.devstack.stack import Stack
from tests.conftest import Infra
from tests.helpers import Unavailable, all_tickets, eventually, login, make_mail

pytestmark = pytest.mark.e2e


def _send_with_retries(port: int, tag: str, count: int, log: dict[str, int]) -> None:
    """An MTA in miniature: a 4xx answer (or a dropped connection) means try again."""
    for i in range(count):
        msg = make_mail(f"{tag} #{i:03d}")
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                    smtp.send_message(msg)
                log["ok"] += 1
                break
            except smtplib.SMTPResponseException as exc:
                assert 400 <= exc.smtp_code < 500, exc  # never a permanent refusal
                log["retried"] += 1
                time.sleep(0.3)
            except (smtplib.SMTPServerDisconnected, ConnectionError):
                log["retried"] += 1
                time.sleep(0.3)
        time.sleep(0.05)


async def test_every_mail_once_across_a_nats_restart(stack: Stack, infra: Infra) -> None:
    token = await login(stack)
    tag = f"NATS restart {uuid.uuid4().hex[:6]}"
    count = 40
    log = {"ok": 0, "retried": 0}
    sender = threading.Thread(target=_send_with_retries, args=(stack.smtp_port, tag, count, log))
    sender.start()
    await eventually(lambda: asyncio.sleep(0, log["ok"] >= 10), timeout=30)
    infra.nats.stop()
    # Longer than a publish may wait for its ack (5 s): mail in flight gets 451, not 250.
    await asyncio.sleep(7.0)
    await infra.nats.start()
    await asyncio.to_thread(sender.join, 120)
    assert log["ok"] == count
    print(f"retries while NATS was away: {log['retried']}")

    async def all_there() -> list[str]:
        try:
            subjects = [
                t["subject"]
                for t in await all_tickets(stack, token)
                if t["subject"].startswith(tag)
            ]
        except Unavailable:
            return []
        return subjects if len(subjects) >= count else []

    await eventually(all_there, timeout=90)
    await asyncio.sleep(2)
    subjects = [
        t["subject"] for t in await all_tickets(stack, token) if t["subject"].startswith(tag)
    ]
    assert sorted(subjects) == [f"{tag} #{i:03d}" for i in range(count)]
    assert log["retried"] > 0  # the outage really happened under load: 4xx, then success
    await stack.wait_healthy(timeout=30)
