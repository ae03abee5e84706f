"""Campaign figures (issue 20, OUT-6), beside a baseline measured in the same run:

- campaign sent per second: a campaign to a contact list of N contacts (built through
  the members API), scheduled now, to a local aiosmtpd sink in its own process (an SMTP
  route of the tenant) — from the moment it was scheduled to the last mail recorded as
  sent: the audience snapshot (ResolveAudience), rendering each mail (reserved words, the
  RFC 8058 link), queueing it in the transaction that marks its recipient, and the
  dispatcher's sending;
- baseline: outbound's plain sending rate — N ready mails written due at once into the
  same outbox (as tests/bench/outbound.py does) and sent by the same outbound to the same
  sink, from due to the last one sent.

Target: campaign rate ≥ 0.5 × the plain rate. `python -m tests.bench.campaigns` runs it
alone (a fresh stack); `make bench` runs it with the rest.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg

from services.devstack.stack import Stack
from services.runtime.db import with_database
from tests.bench.outbound import Sink, _due, _wait_sent

ITEMS = int(os.environ.get("SB_BENCH_CAMPAIGN", "2000"))
TARGET_RATIO = 0.5


async def _api(
    http: aiohttp.ClientSession, stack: Stack, token: str, method: str, path: str, body: Any = None
) -> Any:
    async with http.request(
        method,
        f"{stack.gateway_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status < 300, (path, r.status, await r.text())
        return await r.json() if r.status != 204 else None


async def _campaign_sent(pool: asyncpg.Pool, tenant_id: str, count: int) -> datetime:
    """The time the last of the campaign's `count` mails was sent."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        row = await pool.fetchrow(
            "SELECT count(*) FILTER (WHERE state = 'sent') AS sent, max(sent_at) AS last "
            "FROM sends WHERE tenant_id = $1 AND kind = 'campaign'",
            uuid.UUID(tenant_id),
        )
        if row is not None and row["sent"] >= count:
            last: datetime = row["last"]
            return last
        await asyncio.sleep(0.2)
    raise TimeoutError("the campaign did not finish")


async def run(stack: Stack, admin: str, tenant_id: str) -> dict[str, Any]:
    sink = Sink()
    await sink.start()
    pool = await asyncpg.create_pool(
        with_database(stack.database_url, "sb_outbound"), min_size=1, max_size=2
    )
    try:
        async with aiohttp.ClientSession() as http:
            # the tenant's default route goes to this sink (in `make bench`, the outbound
            # bench's route to its own sink is there already)
            for route in (await _api(http, stack, admin, "GET", "/api/v1/smtp-routes"))["items"]:
                await _api(http, stack, admin, "DELETE", f"/api/v1/smtp-routes/{route['id']}")
            await _api(
                http,
                stack,
                admin,
                "POST",
                "/api/v1/smtp-routes",
                {"name": "bench sink", "host": "127.0.0.1", "port": sink.port, "security": "none"},
            )
            inbox = (await _api(http, stack, admin, "GET", "/api/v1/inboxes"))["items"][0]
            made = await _api(
                http, stack, admin, "POST", "/api/v1/contact-lists", {"name": "bench"}
            )
            tag = uuid.uuid4().hex[:6]
            contacts = [
                {"address": f"c{i}.{tag}@sink{i % 10}.example", "name": f"顧客 {i}"}
                for i in range(ITEMS)
            ]
            for at in range(0, ITEMS, 1000):
                await _api(
                    http,
                    stack,
                    admin,
                    "POST",
                    f"/api/v1/contact-lists/{made['id']}/members",
                    {"contacts": contacts[at : at + 1000]},
                )
            await asyncio.sleep(2.5)  # outbound's route cache
            # warm up: connections, prepared statements
            since = datetime.now(UTC)
            await _due(pool, tenant_id, 50, datetime.now(UTC))
            await _wait_sent(pool, tenant_id, since, 50)

            # the baseline: N ready mails due at once
            since = datetime.now(UTC)
            due_at = datetime.now(UTC)
            await _due(pool, tenant_id, ITEMS, due_at)
            rows = await _wait_sent(pool, tenant_id, since, ITEMS)
            plain_sent = [r for r in rows if r["state"] == "sent"]
            span = (max(r["sent_at"] for r in plain_sent) - due_at).total_seconds()
            plain_rate = len(plain_sent) / span

            # the campaign to N contacts, scheduled now
            campaign = await _api(
                http,
                stack,
                admin,
                "POST",
                "/api/v1/campaigns",
                {
                    "name": "bench",
                    "inbox_id": inbox["id"],
                    "subject": "{{customer.name}}様へのお知らせ",
                    "body": "{{customer.name}}様\n新しいプランのご案内です。\n"
                    "配信停止: {{unsubscribe.url}}\n{{inbox.name}}",
                    "audience": {"list_id": made["id"]},
                },
            )
            started = datetime.now(UTC)
            await _api(
                http, stack, admin, "POST", f"/api/v1/campaigns/{campaign['id']}/schedule", {}
            )
            last = await _campaign_sent(pool, tenant_id, ITEMS)
            campaign_rate = ITEMS / (last - started).total_seconds()
    finally:
        await pool.close()
        received = await sink.stop()
    ratio = campaign_rate / plain_rate
    return {
        "recipients": ITEMS,
        "sink_received": received,
        "campaign_sent_per_second": round(campaign_rate, 1),
        "baseline": {
            "what": f"{ITEMS} ready mails due at once in the same outbox, sent by the same "
            "outbound to the same sink",
            "sent_per_second": round(plain_rate, 1),
        },
        "ratio_to_baseline": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


async def _alone(stack: Stack) -> dict[str, Any]:
    from tests.bench.e2e import login_token, tenant_of

    admin = await login_token(stack, "admin@demo.example")
    return await run(stack, admin, await tenant_of(stack, admin))


if __name__ == "__main__":
    from tests.bench.e2e import run_alone

    sys.exit(run_alone("campaigns", _alone))
