"""Approval figures (issue 17), beside the plain send path measured in the same run:

- submit → push: a trainee asks for approval of a new mail (`POST /drafts/{id}/approval`);
  the time from the start of that request to the `approval.changed` push reaching an
  approver's WebSocket (target p99 ≤ 300 ms). Baseline: an agent sends a mail
  (`POST /drafts/{id}/send`) and the same WebSocket receives its `send.changed` push.
- approval → SMTP: the approver decides `approve_and_send`
  (`POST /approvals/{id}/decisions`); the time from the start of that request to the mail
  arriving at a local SMTP peer (target p99 ≤ 1 s). The path: the decision and its
  `approval.approved` event in one transaction, the outbox relay, JetStream, outbound's
  `outbound__approvals` consumer, its exactly-once send path, SMTP. Baseline: the agent's
  plain send from the start of `POST /drafts/{id}/send` to the peer.

Requests are made one at a time (a supervisor does not approve in parallel), paced so the
stack is idle between them; each mail has its own subject, by which the peer times it.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import threading
import time
from email import message_from_bytes
from email.policy import default
from typing import Any

import aiohttp
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.devstack.infra import free_port
from services.devstack.stack import Stack

ROUNDS = int(os.environ.get("SB_BENCH_APPROVALS", "60"))
DOMAIN = "approval-bench.example"
PUSH_TARGET_P99_MS = 300.0
SEND_TARGET_P99_MS = 1000.0
PAUSE_S = 0.25


class _Timer:
    """An SMTP peer that notes when each subject arrived (time.perf_counter)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        now = time.perf_counter()
        raw = envelope.original_content or b""
        subject = str(message_from_bytes(raw, policy=default)["Subject"] or "")
        with self._lock:
            self.count += 1
            self.arrived.setdefault(subject, now)
        return "250 OK"

    async def wait(self, subject: str, timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if subject in self.arrived:
                    return self.arrived[subject]
            await asyncio.sleep(0.002)
        raise TimeoutError(f"{subject!r} never reached the SMTP peer")


class _Pushes:
    """An operator's live socket; notes when each awaited push arrived."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], float] = {}

    def note(self, event: dict[str, Any], now: float) -> None:
        if event.get("type") == "approval.changed":
            approval = event.get("approval") or {}
            self.seen.setdefault(("approval", str(approval.get("id"))), now)
        elif event.get("type") == "send.changed":
            send = event.get("send") or {}
            self.seen.setdefault(("send", str(send.get("draft_id"))), now)

    async def wait(self, key: tuple[str, str], timeout: float = 30.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if key in self.seen:
                return self.seen[key]
            await asyncio.sleep(0.002)
        raise TimeoutError(f"no push for {key}")


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
    }


class _Api:
    def __init__(self, http: aiohttp.ClientSession, base: str, token: str) -> None:
        self.http, self.base, self.token = http, base, token

    async def call(self, method: str, path: str, body: Any = None, want: int = 200) -> Any:
        async with self.http.request(
            method,
            f"{self.base}/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as r:
            text = await r.text()
            if r.status != want:
                raise AssertionError(f"{method} {path}: {r.status} {text}")
            return json.loads(text) if text else None

    async def new_mail(self, inbox_id: str, subject: str) -> str:
        draft = await self.call("POST", "/drafts", {"inbox_id": inbox_id}, 201)
        await self.call(
            "PUT",
            f"/drafts/{draft['id']}",
            {
                "from_address": "support@demo.example",
                "to": [f"customer@{DOMAIN}"],
                "subject": subject,
                "body_text": "お問い合わせありがとうございます。ご注文の件、確認いたしました。\n",
            },
        )
        return str(draft["id"])


async def _login(http: aiohttp.ClientSession, base: str, login: str, password: str) -> str:
    async with http.post(
        f"{base}/api/v1/sessions", json={"login": login, "password": password}
    ) as r:
        if r.status != 201:
            raise AssertionError(f"login {login}: {r.status} {await r.text()}")
        return str((await r.json())["token"])


async def run(stack: Stack, admin: str, password: str) -> dict[str, Any]:
    timer = _Timer()
    port = free_port()
    controller = Controller(timer, hostname="127.0.0.1", port=port)
    controller.start()
    pushes = _Pushes()
    try:
        async with aiohttp.ClientSession() as http:
            base = stack.gateway_url
            boss = _Api(http, base, admin)
            await boss.call(
                "POST",
                "/smtp-routes",
                {
                    "name": "approval bench peer",
                    "scope": "domain",
                    "domain": DOMAIN,
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                },
                201,
            )
            await asyncio.sleep(2.5)  # outbound's route cache
            trainee = _Api(http, base, await _login(http, base, "trainee@demo.example", password))
            agent = _Api(http, base, await _login(http, base, "agent1@demo.example", password))
            approver_token = await _login(http, base, "supervisor@demo.example", password)
            approver = _Api(http, base, approver_token)
            inboxes = await agent.call("GET", "/inboxes")
            inbox_id = next(
                i["id"] for i in inboxes["items"] if "support@demo.example" in i["addresses"]
            )
            async with http.ws_connect(
                f"{base}/api/v1/live", headers={"Authorization": f"Bearer {approver_token}"}
            ) as ws:
                await ws.receive()  # hello

                async def reader() -> None:
                    async for msg in ws:
                        pushes.note(json.loads(msg.data), time.perf_counter())

                read = asyncio.create_task(reader())
                figures = await _measure(trainee, agent, approver, inbox_id, timer, pushes)
                read.cancel()
    finally:
        controller.stop()
    return {**figures, "peer_received": timer.count}


async def _measure(
    trainee: _Api,
    agent: _Api,
    approver: _Api,
    inbox_id: str,
    timer: _Timer,
    pushes: _Pushes,
) -> dict[str, Any]:
    push_ms: list[float] = []
    approved_ms: list[float] = []
    plain_push_ms: list[float] = []
    plain_ms: list[float] = []
    warm = 5
    for n in range(ROUNDS + warm):
        # the approval path
        subject = f"approval bench {n}"
        draft_id = await trainee.new_mail(inbox_id, subject)
        started = time.perf_counter()
        request = await trainee.call("POST", f"/drafts/{draft_id}/approval", {}, 201)
        pushed = await pushes.wait(("approval", str(request["id"])))
        full = await approver.call("GET", f"/approvals/{request['id']}")
        decided = time.perf_counter()
        await approver.call(
            "POST",
            f"/approvals/{request['id']}/decisions",
            {"verdict": "approve_and_send", "stage": full["stage"], "revision": full["revision"]},
        )
        arrived = await timer.wait(subject)
        # the plain path, the same mail from an agent
        plain_subject = f"plain bench {n}"
        plain_id = await agent.new_mail(inbox_id, plain_subject)
        sent = time.perf_counter()
        await agent.call("POST", f"/drafts/{plain_id}/send", {}, 201)
        plain_arrived = await timer.wait(plain_subject)
        plain_pushed = await pushes.wait(("send", plain_id))
        if n >= warm:
            push_ms.append((pushed - started) * 1000)
            approved_ms.append((arrived - decided) * 1000)
            plain_push_ms.append((plain_pushed - sent) * 1000)
            plain_ms.append((plain_arrived - sent) * 1000)
        await asyncio.sleep(PAUSE_S)
    push, approved = _ms(push_ms), _ms(approved_ms)
    plain_push, plain = _ms(plain_push_ms), _ms(plain_ms)
    return {
        "rounds": ROUNDS,
        "submit_to_approver_push": {
            **push,
            "target_p99_ms": PUSH_TARGET_P99_MS,
            "met": push["p99_ms"] <= PUSH_TARGET_P99_MS,
        },
        "approve_and_send_to_smtp": {
            **approved,
            "target_p99_ms": SEND_TARGET_P99_MS,
            "met": approved["p99_ms"] <= SEND_TARGET_P99_MS,
        },
        "baseline": {
            "what": "an agent's plain send of the same mail: POST /drafts/{id}/send to its "
            "send.changed push on the same socket, and to the SMTP peer",
            "send_to_push": plain_push,
            "send_to_smtp": plain,
        },
        "ratio_to_baseline": {
            "push_p99": round(push["p99_ms"] / plain_push["p99_ms"], 3),
            "smtp_p99": round(approved["p99_ms"] / plain["p99_ms"], 3),
        },
    }


async def _alone(stack: Stack) -> dict[str, Any]:
    from tests.bench.e2e import PASSWORD, login_token

    return await run(stack, await login_token(stack, "admin@demo.example"), PASSWORD)


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("approval", _alone))
