"""`make seed-scale` at a tiny size: the generated tenant, written through the services'
bulk paths into the session's PostgreSQL, is consistent — counts agree across services,
numbers and counters follow, a ticket opens through the API with its messages and their
Japanese text decoded from the stored MIME bytes, and a Japanese keyword finds tickets
that hold it and only those."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.devstack import scale, seed_scale
from services.devstack.stack import Stack
from services.runtime.db import with_database
from services.tickets.query import TicketQuery, build_list_query, build_term_probe
from tests.conftest import Infra
from tests.helpers import api_get, login

pytestmark = pytest.mark.e2e

TICKETS = 240
END = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def loaded(infra: Infra, stack: Stack) -> tuple[scale.Generator, dict[str, int]]:
    gen = scale.Generator(TICKETS, seed=7, end=END, batch=100)
    counts = await seed_scale.load(infra.postgres, gen, progress=False, indexes_after=True)
    return gen, counts


async def _fetch(infra: Infra, service: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(with_database(infra.postgres.url, f"sb_{service}"))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def test_counts_agree_across_services(
    infra: Infra, loaded: tuple[scale.Generator, dict[str, int]]
) -> None:
    gen, counts = loaded
    tenant = gen.tenant.id
    assert counts["tickets"] == TICKETS
    [t] = await _fetch(
        infra,
        "tickets",
        "SELECT count(*) AS n, min(number) AS lo, max(number) AS hi, sum(message_count) AS msgs, "
        "count(DISTINCT contact_id) AS contacts, count(DISTINCT inbox_id) AS inboxes, "
        "(SELECT next_number FROM tenant_counters WHERE tenant_id = $1) AS next "
        "FROM tickets WHERE tenant_id = $1",
        tenant,
    )
    assert (t["n"], t["lo"], t["hi"], t["next"]) == (TICKETS, 1, TICKETS, TICKETS + 1)
    assert t["msgs"] == counts["messages"] and counts["messages"] > 2 * TICKETS
    assert t["contacts"] == counts["contacts"] and t["inboxes"] > 10
    [m] = await _fetch(
        infra,
        "tickets",
        "SELECT count(*) AS n, count(*) FILTER (WHERE channel = 'sent') AS sent, "
        "count(*) FILTER (WHERE cardinality(search_grams) = 0) AS unindexed "
        "FROM messages WHERE tenant_id = $1",
        tenant,
    )
    assert m["n"] == counts["messages"] and 0 < m["sent"] < m["n"] and m["unindexed"] == 0
    [r] = await _fetch(
        infra,
        "ingestion",
        "SELECT count(*) AS n, count(*) FILTER (WHERE m.state = 'parsed') AS parsed, "
        "count(b.sha256) AS with_bytes FROM raw_messages m LEFT JOIN blobs b "
        "ON b.sha256 = m.sha256 WHERE m.tenant_id = $1",
        tenant,
    )
    assert r["n"] == r["parsed"] == r["with_bytes"] == counts["messages"]
    [a] = await _fetch(
        infra,
        "accounts",
        "SELECT (SELECT count(*) FROM operators WHERE tenant_id = $1) AS ops, "
        "(SELECT count(*) FROM inboxes WHERE tenant_id = $1) AS inboxes, "
        "(SELECT count(*) FROM inbox_members WHERE tenant_id = $1 AND inbox_id = i.id) AS m "
        "FROM inboxes i WHERE i.tenant_id = $1 ORDER BY 3 LIMIT 1",
        tenant,
    )
    assert (a["ops"], a["inboxes"]) == (scale.OPERATORS, scale.INBOXES) and a["m"] > 0
    statuses = {
        row["status"]: row["n"]
        for row in await _fetch(
            infra,
            "tickets",
            "SELECT status, count(*) AS n FROM tickets WHERE tenant_id = $1 GROUP BY status",
            tenant,
        )
    }
    assert statuses.get("resolved", 0) > TICKETS // 2  # two years: mostly done with
    # the tab counts' deltas written by the bulk load, summed into one row an inbox
    [d] = await _fetch(
        infra,
        "tickets",
        "SELECT count(*) AS rows, count(DISTINCT inbox_id) AS inboxes, sum(open) AS open, "
        "sum(resolved) AS resolved FROM ticket_count_deltas WHERE tenant_id = $1",
        tenant,
    )
    assert d["rows"] == d["inboxes"] == t["inboxes"]
    assert (d["open"], d["resolved"]) == (statuses.get("open", 0), statuses["resolved"])
    # reporting's facts of the same tickets, folded into the rollups
    facts = {
        row["metric"]: (row["n"], row["rolled"])
        for row in await _fetch(
            infra,
            "reporting",
            "SELECT f.metric, count(*) AS n, (SELECT sum(count) FROM rollups_hour r "
            "WHERE r.tenant_id = $1 AND r.metric = f.metric AND r.dimension = '') AS rolled "
            "FROM facts f WHERE f.tenant_id = $1 GROUP BY f.metric",
            tenant,
        )
    }
    assert facts["arrival"] == (TICKETS, TICKETS)
    assert facts["received"][0] == m["n"] - m["sent"] == facts["received"][1]
    assert facts["sent"][0] == m["sent"] and facts["resolution"][0] == statuses["resolved"]
    assert counts["facts"] == sum(n for n, _rolled in facts.values())
    # and into the day rollups in the tenant's zone, ready, each day what its hours hold
    [zone] = await _fetch(
        infra, "reporting", "SELECT zone, ready FROM report_zones WHERE tenant_id = $1", tenant
    )
    assert (zone["zone"], zone["ready"]) == ("Asia/Tokyo", True)
    days = await _fetch(
        infra,
        "reporting",
        "SELECT d.bucket, d.metric, d.count, (SELECT sum(count) FROM rollups_hour h "
        "WHERE h.tenant_id = d.tenant_id AND h.metric = d.metric AND h.dimension = '' "
        "AND (h.bucket AT TIME ZONE 'Asia/Tokyo')::date = d.bucket) AS hours "
        "FROM (SELECT tenant_id, bucket, metric, sum(count) AS count FROM rollups_day "
        "WHERE tenant_id = $1 AND dimension = '' GROUP BY 1, 2, 3) d",
        tenant,
    )
    assert days and all(d["count"] == d["hours"] for d in days)
    assert sum(d["count"] for d in days if d["metric"] == "arrival") == TICKETS
    # the indexes and keys dropped for the load are built again, valid
    for service, index in (
        ("tickets", "messages_grams"),
        ("reporting", "facts_tenant_at"),
        ("reporting", "rollups_15m_pkey"),
        ("reporting", "rollups_day_pkey"),
    ):
        [ix] = await _fetch(
            infra,
            service,
            "SELECT i.indisvalid AS valid FROM pg_index i WHERE i.indexrelid = $1::regclass",
            index,
        )
        assert ix["valid"], index


async def test_a_ticket_opens_with_its_japanese_mail(
    stack: Stack, loaded: tuple[scale.Generator, dict[str, int]]
) -> None:
    token = await login(stack, scale.ADMIN_LOGIN, seed_scale.PASSWORD)
    code, tabs = await api_get(stack, token, "/api/v1/ticket-counts")
    assert code == 200
    assert sum(sum(c[k] for k in ("open", "pending", "resolved", "no_action", "trash"))
               for c in tabs["items"]) == TICKETS  # fmt: skip
    code, page = await api_get(stack, token, "/api/v1/tickets?limit=50")
    assert code == 200 and len(page["items"]) == 50
    received = [t["received_at"] for t in page["items"]]
    assert received == sorted(received, reverse=True)
    ja = next(t for t in page["items"] if any("\u3040" <= c <= "\u30ff" for c in t["subject"]))
    code, ticket = await api_get(stack, token, f"/api/v1/tickets/{ja['id']}")
    assert code == 200 and ticket["messages"]
    first = ticket["messages"][0]
    code, mail = await api_get(stack, token, f"/api/v1/messages/{first['id']}")
    assert code == 200, mail
    assert "お世話になっております" in mail["parsed"]["text"], mail["parsed"]
    assert ticket["subject"] in mail["parsed"]["subject"]


async def test_a_japanese_keyword_finds_the_tickets_holding_it(
    infra: Infra, stack: Stack, loaded: tuple[scale.Generator, dict[str, int]]
) -> None:
    gen, _counts = loaded
    holding = {
        row["ticket_id"]
        for row in await _fetch(
            infra,
            "tickets",
            "SELECT DISTINCT ticket_id FROM messages WHERE tenant_id = $1 "
            "AND search_text LIKE '%領収書%'",
            gen.tenant.id,
        )
    }
    assert holding, "the generator wrote no mail about 領収書"
    token = await login(stack, scale.ADMIN_LOGIN, seed_scale.PASSWORD)
    found: set[uuid.UUID] = set()
    cursor = ""
    while True:
        code, page = await api_get(
            stack, token, f"/api/v1/tickets?q=領収書&limit=200&status=&cursor={cursor}"
        )
        assert code == 200, page
        found |= {uuid.UUID(t["id"]) for t in page["items"]}
        cursor = page.get("next") or ""
        if not cursor:
            break
    trashed = {
        row["id"]
        for row in await _fetch(
            infra,
            "tickets",
            "SELECT id FROM tickets WHERE tenant_id = $1 AND status = 'trash'",
            gen.tenant.id,
        )
    }
    assert found == holding - trashed


async def test_both_paths_of_a_keyword_find_the_same_tickets(
    infra: Infra, loaded: tuple[scale.Generator, dict[str, int]]
) -> None:
    """A keyword term is looked up through the grams' index when it is rare and checked
    ticket by ticket, newest first, when it is common (query.build_term_probe): either
    way, and the planner's own EXISTS, the same page."""
    gen, _counts = loaded
    tenant = str(gen.tenant.id)
    conn = await asyncpg.connect(with_database(infra.postgres.url, "sb_tickets"))
    try:
        for keyword in ("領収書", "お届け日 変更", "receipt"):
            q = TicketQuery(keyword=keyword)
            holding: dict[str, list[uuid.UUID] | None] = {}
            for term in q.terms:
                sql, args = build_term_probe(tenant, term, True)
                holding[term] = list({r["ticket_id"] for r in await conn.fetch(sql, *args)})
            pages = []
            for paths in (None, holding, dict.fromkeys(holding)):
                sql, args = build_list_query(tenant, q, 20, None, paths)
                pages.append([r["id"] for r in await conn.fetch(sql, *args)])
            assert pages[0] == pages[1] == pages[2] and pages[0], keyword
    finally:
        await conn.close()


async def test_the_live_figures_agree_with_the_tickets(
    infra: Infra, stack: Stack, loaded: tuple[scale.Generator, dict[str, int]]
) -> None:
    """reporting's live rows, written by the seed (scale_live.py), give the supervisor's
    live assignment and live queue the tickets' own open/pending counts per inbox and per
    assignee, and as waiting the open tickets whose latest mail is the customer's."""
    gen, _counts = loaded
    tickets = await _fetch(
        infra,
        "tickets",
        "SELECT inbox_id, coalesce(assignee_id::text, '') AS who, "
        "count(*) FILTER (WHERE status = 'open') AS open, "
        "count(*) FILTER (WHERE status = 'pending') AS pending FROM tickets "
        "WHERE tenant_id = $1 AND status IN ('open', 'pending') GROUP BY 1, 2",
        gen.tenant.id,
    )
    per_inbox: dict[str, dict[str, int]] = {}
    per_assignee: dict[str, tuple[int, int]] = {}
    for r in tickets:
        i = per_inbox.setdefault(str(r["inbox_id"]), {"open": 0, "pending": 0})
        i["open"] += r["open"]
        i["pending"] += r["pending"]
        o, p = per_assignee.get(r["who"], (0, 0))
        per_assignee[r["who"]] = (o + r["open"], p + r["pending"])
    assert sum(i["open"] for i in per_inbox.values()) > 0
    waiting = {
        str(r["inbox_id"]): r["n"]
        for r in await _fetch(
            infra,
            "tickets",
            "SELECT t.inbox_id, count(*) AS n FROM tickets t WHERE t.tenant_id = $1 "
            "AND t.status = 'open' AND (SELECT m.channel FROM messages m "
            "WHERE m.tenant_id = t.tenant_id AND m.ticket_id = t.id "
            "ORDER BY m.received_at DESC, m.channel = 'sent' DESC LIMIT 1) <> 'sent' "
            "GROUP BY 1",
            gen.tenant.id,
        )
    }
    assert waiting
    token = await login(stack, scale.ADMIN_LOGIN, seed_scale.PASSWORD)
    code, body = await api_get(stack, token, "/api/v1/reports/live-assignment")
    assert code == 200, body
    assert body["totals"] == {
        "open": sum(i["open"] for i in per_inbox.values()),
        "pending": sum(i["pending"] for i in per_inbox.values()),
    }
    shown = {a["operator_id"]: (a["open"], a["pending"]) for a in body["assignees"]}
    shown[""] = (body["unassigned"]["open"], body["unassigned"]["pending"])
    assert shown == {"": (0, 0), **per_assignee}
    for inbox in gen.inboxes:
        path = f"/api/v1/reports/live-assignment?inbox_id={inbox.id}"
        code, body = await api_get(stack, token, path)
        assert code == 200, body
        assert body["totals"] == per_inbox.get(str(inbox.id), {"open": 0, "pending": 0})
    code, body = await api_get(stack, token, "/api/v1/reports/live-queue")
    assert code == 200, body
    assert {i["inbox_id"]: i["waiting"] for i in body["inboxes"] if i["waiting"]} == waiting
    assert all(i["oldest_waiting_since"] for i in body["inboxes"] if i["waiting"])
