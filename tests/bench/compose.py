"""Composition figures (issue 6), each beside a baseline measured in the same run:

- render: a template of 20 reserved words filled in for a ticket through the gRPC API
  (`RenderTemplate`: the ticket, its contact and the inbox asked of tickets and accounts,
  then the rendering) — renders per second with 16 callers, beside the bare in-process
  `reserved.render` of the same template and context;
- checks: the pre-send checks of a 20 KB draft through the gRPC API (`CheckDraft`: the
  draft and its attachments read, the ticket's participants asked of tickets, the
  checks) — p50/p99 over sequential calls (target p99 ≤ 20 ms), beside the bare
  `checks.run` of the same draft.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import grpc
from switchboard.v1 import composition_pb2, composition_pb2_grpc

from services.accounts.seed import DEMO_INBOXES
from services.composition import checks, reserved
from services.devstack.stack import Stack

CALLERS = 16
SECONDS = 6.0
CHECKS = 300
TARGET_CHECK_P99_MS = 20.0
WORDS = (
    "{{customer.name}} 様（{{customer.company}}）\n{{today}} / {{now:%Y年%m月%d日 %H:%M}}\n"
    "チケット #{{ticket.number}}「{{ticket.subject}}」\n{{inbox.name}} <{{inbox.address}}>\n"
    "{{original.subject}} — {{original.from}} {{original.date}}\n"
    "担当 {{operator.name}} {{operator.address}}\n"
    "{{customer.name}} {{ticket.number}} {{today:%m/%d}} {{now:%H:%M}} {{inbox.name}} "
    "{{original.subject}} {{operator.name}}"
)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _ms(values: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {"p50_ms": round(statistics.median(ms), 3), "p99_ms": round(pct(ms, 99), 3)}


async def _api(stack: Stack, token: str, method: str, path: str, body: Any = None) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method,
            f"{stack.gateway_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as r:
            assert r.status < 300, await r.text()
            return await r.json() if r.status != 204 else None


async def run(
    stack: Stack, admin: str, agent: str, agent_md: list[tuple[str, str]]
) -> dict[str, Any]:
    assert WORDS.count("{{") == 20
    template = await _api(
        stack,
        admin,
        "POST",
        "/api/v1/templates",
        {
            "name": f"bench {uuid.uuid4().hex[:6]}",
            "subject": "{{original.subject}}",
            "body_text": WORDS,
        },
    )
    tickets = (await _api(stack, agent, "GET", "/api/v1/tickets?limit=1"))["items"]
    ticket = tickets[0]
    lock = await _api(stack, agent, "POST", f"/api/v1/tickets/{ticket['id']}/lock")
    draft = await _api(
        stack,
        agent,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": "reply", "fence": lock["fence"]},
    )
    body = ("山田様\n\nお問い合わせありがとうございます。ご注文の商品につきまして、" * 60)[:4_000]
    english = "\nPlease find the details below. "
    body += english * ((20 * 1024 - len(body.encode())) // len(english) + 1)
    draft = await _api(
        stack,
        agent,
        "PUT",
        f"/api/v1/drafts/{draft['id']}",
        {
            "fence": lock["fence"],
            "from_address": DEMO_INBOXES["Support"][1][0],
            "to": draft["current"]["to"],
            "subject": draft["current"]["subject"],
            "body_text": body,
            "signature_text": draft["current"]["signature_text"],
        },
    )
    addr = f"127.0.0.1:{stack.config.ports.grpc['composition']}"
    async with grpc.aio.insecure_channel(addr) as channel:
        stub = composition_pb2_grpc.CompositionServiceStub(channel)
        render_req = composition_pb2.RenderTemplateRequest(
            template_id=template["id"], ticket_id=ticket["id"]
        )
        first = await stub.RenderTemplate(render_req, metadata=agent_md)
        done = 0
        end = time.perf_counter() + SECONDS

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < end:
                await stub.RenderTemplate(render_req, metadata=agent_md)
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
        grpc_rate = done / (time.perf_counter() - started)

        check_req = composition_pb2.CheckDraftRequest(draft_id=draft["id"])
        await stub.CheckDraft(check_req, metadata=agent_md)
        check_lat = []
        for _ in range(CHECKS):
            t0 = time.perf_counter()
            await stub.CheckDraft(check_req, metadata=agent_md)
            check_lat.append(time.perf_counter() - t0)

    ctx = reserved.Context(
        now=datetime.now(UTC),
        time_zone="Asia/Tokyo",
        language="ja",
        operator=reserved.Person("Aiko Agent", "agent1@demo.example"),
        customer=reserved.Person("山田 太郎", "taro@example.jp", "山田商事"),
        ticket_number=ticket["number"],
        ticket_subject=ticket["subject"],
        inbox_name="Support",
        inbox_address="support@demo.example",
        original=reserved.Original(
            ticket["subject"], reserved.Person("山田 太郎"), datetime.now(UTC)
        ),
    )
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 2.0:
        reserved.render(WORDS, ctx)
        n += 1
    bare_rate = n / (time.perf_counter() - t0)
    out = checks.Outgoing(
        subject=draft["current"]["subject"],
        body=body,
        signature=draft["current"]["signature_text"],
        to=["taro@example.jp"],
        cc=[],
        bcc=[],
        attachment_count=0,
    )
    bare_lat = []
    for _ in range(CHECKS):
        t1 = time.perf_counter()
        checks.run(out, checks.Settings(), ["taro@example.jp"])
        bare_lat.append(time.perf_counter() - t1)
    await _api(stack, agent, "DELETE", f"/api/v1/drafts/{draft['id']}?fence={lock['fence']}")
    await _api(stack, agent, "DELETE", f"/api/v1/tickets/{ticket['id']}/lock?fence={lock['fence']}")
    return {
        "render": {
            "what": "a template of 20 reserved words for a ticket, 16 concurrent callers",
            "problems": len(first.problems),
            "grpc_per_second": round(grpc_rate, 1),
            "bare_in_process_per_second": round(bare_rate, 1),
            "ratio_to_bare": round(grpc_rate / bare_rate, 5),
        },
        "checks": {
            "what": f"pre-send checks of a {len(body.encode()) // 1024} KB draft, sequential",
            "grpc": _ms(check_lat),
            "bare_in_process": _ms(bare_lat),
            "target_p99_ms": TARGET_CHECK_P99_MS,
            "met": pct([v * 1000 for v in check_lat], 99) <= TARGET_CHECK_P99_MS,
        },
    }


def agent_metadata() -> list[tuple[str, str]]:
    """agent1 of the demo tenant, as the gateway would send it."""
    from services.accounts.seed import DEMO_OPERATORS, DEMO_TENANT
    from services.runtime import permissions
    from services.runtime.identity import Identity

    op_id, _, name, roles, _ = DEMO_OPERATORS[1]
    granted = frozenset().union(*(permissions.BUILTIN_ROLES[r][0] for r in roles))
    return Identity(
        str(DEMO_TENANT),
        op_id,
        tuple(roles),
        "",
        name,
        permissions=granted,
        time_zone="Asia/Tokyo",
        language="ja",
    ).metadata()
