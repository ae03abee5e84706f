"""Routing rules (issue 18, RTE-1) in `make bench`: what 500 active rules per inbox add
to a mail's routing.

- intake: mails sent at a steady pace to two tenants, one with no rules and one with 500
  rules on its inbox (the last one matching); for each mail the time from the bench
  seeing its `message.received` to seeing its `message.routed` on NATS; p50/p99 per
  tenant and the p99 added by the rules (target ≤ 2 ms), in the same run — printed first
  as `p99_ms_no_rules`, `p99_ms_500_rules` and `added_p99_ms`.
- evaluation: the rules engine alone, in process, on the same 500 rules (CPU time).

`python -m tests.bench.rules` runs it alone on a fresh stack."""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import aiosmtplib
import nats
from switchboard.v1 import events_pb2

from services.devstack.stack import Stack
from services.routing.rules import engine, model, validate
from services.routing.rules.model import Facts, Rule
from tests.helpers import create_tenant, make_mail

RULES = 500
MAILS = 1000  # per tenant: the p99 is then the 10th slowest, not the 3rd
WARM = 10  # per tenant, before
RATE = 20.0  # mails per second, both tenants together
TARGET_ADDED_P99_MS = 2.0


def rule_json(i: int, last: bool) -> dict[str, Any]:
    word = "返品" if last else f"word{i}"
    return {
        "name": f"rule {i}",
        "triggers": ["new_ticket", "customer_reply"],
        "conditions": {
            "match": "all",
            "conditions": [
                {"field": "subject", "operator": "contains", "value": word},
                {
                    "match": "any",
                    "conditions": [
                        {
                            "field": "sender_domain",
                            "operator": "in",
                            "value": ["example.com", "example.jp"],
                        },
                        {"field": "body", "operator": "regex", "value": f"order\\s*{i}\\d+"},
                    ],
                },
            ],
        },
        "actions": [{"type": "add_label", "value": f"l{i}"}],
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def evaluation() -> dict[str, float]:
    rules = tuple(
        Rule(str(i), i, 1, validate.parse(rule_json(i, i == RULES - 1))) for i in range(RULES)
    )
    facts = Facts(
        "customer@example.com",
        "Customer",
        ("help@example.com",),
        "商品の返品について",
        "注文番号 12345 order 7123 " * 200,
        "smtp",
        datetime.now(UTC),
        False,
        3000,
    )
    times = []
    for _ in range(500):
        t = time.process_time()
        engine.evaluate(rules, facts, model.NEW_TICKET, lambda c, a: None, traced=False)
        times.append((time.process_time() - t) * 1000)
    return {"p50_ms": round(_pct(times, 0.5), 3), "p99_ms": round(_pct(times, 0.99), 3)}


async def _token(stack: Stack, login: str, password: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions", json={"login": login, "password": password}
        ) as r:
            return str((await r.json())["token"])


async def run(stack: Stack) -> dict[str, Any]:
    plain = await create_tenant(stack)
    ruled = await create_tenant(stack)
    token = await _token(stack, ruled.login, ruled.password)
    async with aiohttp.ClientSession() as http:
        for i in range(RULES):
            async with http.post(
                f"{stack.gateway_url}/api/v1/rules",
                json={**rule_json(i, i == RULES - 1), "inbox_id": ruled.inbox_id},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                assert r.status == 201, await r.text()
    seen: dict[str, float] = {}
    took: dict[str, list[float]] = {plain.tenant_id: [], ruled.tenant_id: []}
    labelled = 0
    all_routed = asyncio.Event()
    nc = await nats.connect(stack.nats_url)

    async def on_event(msg: Any) -> None:
        nonlocal labelled
        now = time.perf_counter()
        env = events_pb2.EventEnvelope.FromString(msg.data)
        if env.tenant_id not in took:
            return
        if env.HasField("message_received"):
            seen[env.message_received.message_id] = now
        elif env.HasField("message_routed"):
            start = seen.pop(env.message_routed.message_id, None)
            if start is not None:
                took[env.tenant_id].append((now - start) * 1000)
                labelled += len(env.message_routed.decision.add_labels) > 0
                if sum(len(v) for v in took.values()) >= MAILS * 2:
                    all_routed.set()

    await nc.subscribe("sb.ingest.message.received", cb=on_event)
    await nc.subscribe("sb.routing.message.routed", cb=on_event)
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=stack.smtp_port, timeout=60)
    await smtp.connect()
    # warm-up, not counted: the first mail after the rules were saved loads and prepares
    # them (once per change of the rule list, not per mail)
    for i in range(WARM * 2):
        to = (plain if i % 2 else ruled).address
        raw = make_mail(f"warm {i}", to=to, body="warm\n")
        await smtp.sendmail("customer@example.com", [to], raw.as_bytes())
    for _ in range(300):
        if sum(len(v) for v in took.values()) >= WARM * 2:
            break
        await asyncio.sleep(0.1)
    for v in took.values():
        v.clear()
    labelled = 0
    for i in range(MAILS * 2):
        to = (plain if i % 2 else ruled).address
        raw = make_mail(f"商品の返品について {i}", to=to, body=f"注文 order {i}\n")
        await smtp.sendmail("customer@example.com", [to], raw.as_bytes())
        await asyncio.sleep(1 / RATE)
    await smtp.quit()
    try:
        await asyncio.wait_for(all_routed.wait(), timeout=60)
    except TimeoutError:
        pass  # the figures of what was routed
    await nc.close()
    none, many = took[plain.tenant_id], took[ruled.tenant_id]
    added = _pct(many, 0.99) - _pct(none, 0.99)
    engine_alone = evaluation()
    return {
        "what": f"message.received → message.routed on NATS, {RULES} rules on one tenant's"
        " inbox (the last matching) beside a tenant without rules, mails interleaved",
        "p99_ms_no_rules": round(_pct(none, 0.99), 2),
        "p99_ms_500_rules": round(_pct(many, 0.99), 2),
        "added_p99_ms": round(added, 2),
        "target_added_p99_ms": TARGET_ADDED_P99_MS,
        "met": added <= TARGET_ADDED_P99_MS,
        "intake": {
            "mails_per_tenant": MAILS,
            "routed": {"no_rules": len(none), "rules_500": len(many)},
            "rate_per_second": RATE,
            "no_rules": {"p50_ms": round(_pct(none, 0.5), 2), "p99_ms": round(_pct(none, 0.99), 2)},
            "rules_500": {
                "p50_ms": round(_pct(many, 0.5), 2),
                "p99_ms": round(_pct(many, 0.99), 2),
                "median_added_ms": round(statistics.median(many) - statistics.median(none), 2),
                "labelled": labelled,
            },
        },
        "engine_alone_500_rules_cpu": engine_alone,
    }


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("rules", run))
