"""Campaigns (issue 20, OUT-6) on the running system, to the aiosmtpd peer: a campaign to
a 10,000-contact list sends each recipient exactly once, also when outbound is killed
(SIGKILL) mid-campaign and restarted; a recipient outside the sending window in their
time zone waits; the per-domain throttle spreads a domain's mails over periods (2 s in
the tests instead of a minute); pause stops queueing, resume goes on, cancel marks the
rest cancelled; a suppressed or unsubscribed contact is not mailed; a reply marks its
recipient replied and becomes a ticket in the campaign's inbox, a hard bounce marks it
bounced. The API checks what it is given (400 naming the field, 409 on a wrong state,
404 for another tenant's campaign, 403 without manage_outreach)."""

from __future__ import annotations

import asyncio
import collections
import signal
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.devstack.stack import Stack
from services.outbound import campaign_domain as cd
from services.outbound.suppression import suppress
from services.runtime.db import with_database
from tests.e2e.test_access import ticket_by_subject
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk
from tests.helpers import Tenant, eventually, send
from tests.smtp_peer import Received, SmtpPeer

pytestmark = pytest.mark.e2e

ALL_DAYS = [1, 2, 3, 4, 5, 6, 7]


async def new_list(stack: Stack, token: str, contacts: list[dict[str, Any]]) -> str:
    code, made, _ = await call(
        stack, "POST", "/api/v1/contact-lists", {"name": f"L {uuid.uuid4().hex[:6]}"}, token=token
    )
    assert code == 201, made
    for at in range(0, len(contacts), 1000):
        code, out, _ = await call(
            stack,
            "POST",
            f"/api/v1/contact-lists/{made['id']}/members",
            {"contacts": contacts[at : at + 1000]},
            token=token,
        )
        assert code == 200 and not out["errors"], out
    return str(made["id"])


async def campaign(stack: Stack, token: str, tenant: Tenant, list_id: str, **over: Any) -> Any:
    body = {
        "name": "春のご案内",
        "inbox_id": tenant.inbox_id,
        "subject": "{{customer.name|お客様}}へのお知らせ",
        "body": "{{customer.name|お客様}}様\n{{custom.plan|Free}} プラン\n"
        "配信停止: {{unsubscribe.url}}\n{{inbox.name}}",
        "audience": {"list_id": list_id},
        **over,
    }
    code, out, _ = await call(stack, "POST", "/api/v1/campaigns", body, token=token)
    assert code == 201, out
    return out


async def act(stack: Stack, token: str, cid: str, action: str, body: Any = None) -> Any:
    code, out, _ = await call(
        stack, "POST", f"/api/v1/campaigns/{cid}/{action}", body or {}, token=token
    )
    assert code == 200, out
    return out


async def get(stack: Stack, token: str, cid: str) -> Any:
    code, out, _ = await call(stack, "GET", f"/api/v1/campaigns/{cid}", token=token)
    assert code == 200, out
    return out


async def in_state(stack: Stack, token: str, cid: str, state: str, timeout: float = 60) -> Any:
    async def probe() -> Any:
        c = await get(stack, token, cid)
        return c if c["state"] == state else None

    return await eventually(probe, timeout=timeout, every=0.3)


async def recipients(stack: Stack, cid: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        return list(
            await conn.fetch(
                "SELECT * FROM campaign_recipients WHERE campaign_id = $1 ORDER BY address",
                uuid.UUID(cid),
            )
        )
    finally:
        await conn.close()


def mailed(peer: SmtpPeer, tag: str) -> list[Received]:
    return [r for r in list(peer.received) if any(tag in a for a in r.rcpt_tos)]


def at_least(peer: SmtpPeer, tag: str, n: int) -> Any:
    async def probe() -> bool:
        return len(mailed(peer, tag)) >= n

    return probe


async def test_campaigns_are_checked_and_kept_per_tenant(stack: Stack) -> None:
    tenant, admin, agent, _ = await desk(stack)
    other, other_admin, _, _ = await desk(stack)
    list_id = await new_list(stack, admin, [{"address": f"a.{uuid.uuid4().hex[:6]}@x.example"}])
    made = await campaign(stack, admin, tenant, list_id)
    assert made["state"] == "draft" and made["audience"] == {"list_id": list_id}
    assert made["totals"]["recipients"] == 0 and made["window"] is None
    path = f"/api/v1/campaigns/{made['id']}"
    good = {
        "name": "n",
        "inbox_id": tenant.inbox_id,
        "subject": "s",
        "body": "b",
        "audience": {"list_id": list_id},
    }
    for bad, field in (
        ({"body": "Hello {{customer.nmae}}"}, "body"),
        ({"subject": "{{ticket.number}}"}, "subject"),
        ({"name": ""}, "name"),
        ({"window": {"start": "9", "end": "18:00"}}, "window.start"),
        ({"window": {"start": "09:00", "end": "18:00", "days": [8]}}, "window.days"),
        ({"throttle_per_domain_per_minute": 0}, "throttle_per_domain_per_minute"),
        ({"scheduled_at": "soon"}, "scheduled_at"),
        ({"audience": {}}, "audience"),
        ({"inbox_id": other.inbox_id}, "inbox_id"),
    ):
        code, out, _ = await call(stack, "POST", "/api/v1/campaigns", {**good, **bad}, token=admin)
        assert code in (400, 404) and out["error"]["field"] == field, (bad, out)
    code, out, _ = await call(
        stack, "POST", "/api/v1/campaigns", {**good, "body": "{{x.y}}"}, token=admin
    )
    assert "{{x.y}}" in out["error"]["message"]
    # an agent may not; another tenant sees nothing
    assert (await call(stack, "GET", "/api/v1/campaigns", token=agent))[0] == 403
    assert (await call(stack, "GET", path, token=other_admin))[0] == 404
    assert (await call(stack, "POST", f"{path}/cancel", {}, token=other_admin))[0] == 404
    code, listed, _ = await call(stack, "GET", "/api/v1/campaigns", token=other_admin)
    assert code == 200 and listed["campaigns"] == []
    # PATCH while a draft; a window; wrong states are 409
    code, patched, _ = await call(
        stack,
        "PATCH",
        path,
        {"name": "夏", "window": {"start": "09:00", "end": "18:00", "days": [1, 2]}},
        token=admin,
    )
    assert code == 200 and patched["name"] == "夏", patched
    assert patched["window"] == {"start": "09:00", "end": "18:00", "days": [1, 2]}
    assert (await call(stack, "POST", f"{path}/pause", {}, token=admin))[0] == 409
    assert (await call(stack, "POST", f"{path}/resume", {}, token=admin))[0] == 409
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    scheduled = await act(stack, admin, made["id"], "schedule", {"scheduled_at": later})
    assert scheduled["state"] == "scheduled"
    code, listed, _ = await call(stack, "GET", "/api/v1/campaigns?state=scheduled", token=admin)
    assert [c["id"] for c in listed["campaigns"]] == [made["id"]]
    cancelled = await act(stack, admin, made["id"], "cancel")
    assert cancelled["state"] == "cancelled" and cancelled["finished_at"]
    assert (await call(stack, "PATCH", path, {"name": "x"}, token=admin))[0] == 409
    assert (await call(stack, "DELETE", path, token=admin))[0] == 409
    assert (await call(stack, "POST", f"{path}/schedule", {}, token=admin))[0] == 409
    draft = await campaign(stack, admin, tenant, list_id)
    code, _, _ = await call(stack, "DELETE", f"/api/v1/campaigns/{draft['id']}", token=admin)
    assert code == 204
    assert (await call(stack, "GET", f"/api/v1/campaigns/{draft['id']}", token=admin))[0] == 404
    code, shown, _ = await call(
        stack,
        "POST",
        "/api/v1/campaigns/preview",
        {
            "subject": "{{customer.name}}様",
            "body": "{{custom.plan|Free}} {{bogus}}",
            "inbox_id": tenant.inbox_id,
            "contact": {"address": "t@x.example", "name": "太郎", "custom": {"plan": "Pro"}},
        },
        token=admin,
    )
    assert code == 200 and shown["subject"] == "太郎様" and shown["body"].startswith("Pro ")
    assert shown["problems"] and "bogus" in shown["problems"][0]


async def test_window_throttle_suppression_and_pause_resume_cancel(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, _, _ = await desk(stack)
    tag = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    # a window open now in UTC, three hours long; Kathmandu (+05:45) is outside it
    start = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    window = {
        "start": start.strftime("%H:%M"),
        "end": (start + timedelta(hours=3)).strftime("%H:%M"),
        "days": ALL_DAYS,
    }
    contacts = [
        {"address": f"inside.{tag}@a.example", "time_zone": "UTC"},
        {"address": f"outside.{tag}@a.example", "time_zone": "Asia/Kathmandu"},
        {"address": f"suppressed.{tag}@a.example", "time_zone": "UTC"},
        *({"address": f"t{i}.{tag}@slow.example", "time_zone": "UTC"} for i in range(6)),
    ]
    list_id = await new_list(stack, admin, contacts)
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        async with conn.transaction():
            await suppress(conn, tenant.tenant_id, f"suppressed.{tag}@a.example", "manual")
    finally:
        await conn.close()
    made = await campaign(
        stack, admin, tenant, list_id, window=window, throttle_per_domain_per_minute=2
    )
    await act(stack, admin, made["id"], "schedule", {})
    slow = [f"t{i}.{tag}@slow.example" for i in range(6)]

    async def throttled_sent(n: int) -> bool:
        rows = await recipients(stack, made["id"])
        return sum(1 for r in rows if r["address"] in slow and r["state"] == "sent") >= n

    await eventually(lambda: throttled_sent(2), timeout=30, every=0.2)
    paused = await act(stack, admin, made["id"], "pause")
    assert paused["state"] == "paused"
    await asyncio.sleep(0.5)  # a batch in hand when the pause came is still queued
    before = {r["address"] for r in await recipients(stack, made["id"]) if r["state"] != "pending"}
    await asyncio.sleep(4.5)  # two throttle periods: nothing more is queued meanwhile
    after = {r["address"] for r in await recipients(stack, made["id"]) if r["state"] != "pending"}
    assert after == before
    await act(stack, admin, made["id"], "resume")
    await eventually(lambda: throttled_sent(6), timeout=60, every=0.2)
    rows = {r["address"]: r for r in await recipients(stack, made["id"])}
    # the throttle: at most 2 of slow.example's mails queued per 2 s period
    periods = collections.Counter(
        cd.period_of(rows[a]["queued_at"], 2.0) for a in slow if rows[a]["queued_at"]
    )
    assert max(periods.values()) <= 2 and len(periods) >= 3, periods
    # the window: inside sent; outside waits for its opening in Kathmandu
    assert rows[f"inside.{tag}@a.example"]["state"] == "sent"
    outside = rows[f"outside.{tag}@a.example"]
    assert outside["state"] == "pending" and outside["not_before"] > now + timedelta(hours=12)
    assert outside["time_zone"] == "Asia/Kathmandu"
    # suppressed: never mailed, counted
    assert rows[f"suppressed.{tag}@a.example"]["state"] == "suppressed"
    shown = await get(stack, admin, made["id"])
    assert shown["totals"]["suppressed"] == 1 and shown["totals"]["sent"] == 7
    assert shown["state"] == "running"  # one still waits for its window
    code, page, _ = await call(
        stack, "GET", f"/api/v1/campaigns/{made['id']}/recipients?state=pending", token=admin
    )
    assert code == 200 and [r["address"] for r in page["recipients"]] == [outside["address"]]
    cancelled = await act(stack, admin, made["id"], "cancel")
    assert cancelled["totals"]["cancelled"] == 1 and cancelled["totals"]["pending"] == 0
    sent_to = {a for r in mailed(smtp_peer, tag) for a in r.rcpt_tos}
    assert f"suppressed.{tag}@a.example" not in sent_to and outside["address"] not in sent_to
    assert len(sent_to) == 7


async def test_reply_unsubscribe_and_bounce_mark_their_recipients(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, _ = await desk(stack)
    tag = uuid.uuid4().hex[:8]
    who = {k: f"{k}.{tag}@r.example" for k in ("replies", "leaves", "bounces", "later")}
    list_id = await new_list(
        stack, admin, [{"address": a, "name": k.title()} for k, a in who.items()]
    )
    made = await campaign(stack, admin, tenant, list_id, subject=f"News {tag}")
    await act(stack, admin, made["id"], "schedule", {})
    await eventually(at_least(smtp_peer, tag, 4), timeout=30, every=0.1)
    by = {r.rcpt_tos[0]: r for r in mailed(smtp_peer, tag)}
    # a reply: the recipient is `replied`, the mail a ticket in the campaign's inbox
    original = by[who["replies"]].message_id
    reply = (
        f"From: Replies <{who['replies']}>\r\nTo: {tenant.address}\r\n"
        f"Subject: Re: News {tag}\r\nMessage-ID: <{uuid.uuid4().hex}@r.example>\r\n"
        f"In-Reply-To: <{original}>\r\nReferences: <{original}>\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n興味があります。\r\n"
    ).encode()
    await asyncio.to_thread(send, stack.smtp_port, reply, [tenant.address], who["replies"])
    # a hard bounce of another
    dsn = (
        f"From: MAILER-DAEMON@r.example\r\nTo: {tenant.address}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@r.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; r.example\r\n\r\n"
        f"Final-Recipient: rfc822; {who['bounces']}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{by[who['bounces']].message_id}>\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()
    await asyncio.to_thread(send, stack.smtp_port, dsn, [tenant.address])
    # an unsubscribe through the mail's link (recorded by the suppression list)
    rows = {r["address"]: r for r in await recipients(stack, made["id"])}
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_outbound"))
    try:
        async with conn.transaction():
            await suppress(
                conn,
                tenant.tenant_id,
                who["leaves"],
                "unsubscribed",
                campaign_id=made["id"],
                recipient_id=str(rows[who["leaves"]]["id"]),
            )
    finally:
        await conn.close()

    async def settled() -> Any:
        got = {r["address"]: r["state"] for r in await recipients(stack, made["id"])}
        want = {
            who["replies"]: "replied",
            who["leaves"]: "unsubscribed",
            who["bounces"]: "bounced",
            who["later"]: "sent",
        }
        return got if got == want else None

    await eventually(settled, timeout=30, every=0.3)
    done = await in_state(stack, admin, made["id"], "completed")
    totals = done["totals"]
    assert (totals["replied"], totals["unsubscribed"], totals["bounced"], totals["sent"]) == (
        1,
        1,
        1,
        1,
    )
    ticket = await ticket_by_subject(stack, agent, f"Re: News {tag}")
    assert ticket["inbox"]["id"] == tenant.inbox_id


async def test_ten_thousand_recipients_each_mailed_exactly_once_across_a_sigkill(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    """10,000 contacts over 20 domains, 500 of them in Kathmandu, outside a sending window
    open now in UTC; a throttle of 40 mails per domain and period: each of the 9,500
    inside is mailed at most once across a SIGKILL of outbound, no domain gets more than
    40 queued in a period, the 500 outside wait for their window (and are cancelled)."""
    tenant, admin, _, _ = await desk(stack)
    tag = uuid.uuid4().hex[:8]
    count, outside_n, throttle = 10_000, 500, 40
    now = datetime.now(UTC)
    start = (now - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    window = {
        "start": start.strftime("%H:%M"),
        "end": (start + timedelta(hours=3)).strftime("%H:%M"),
        "days": ALL_DAYS,
    }
    contacts = [
        {
            "address": f"c{i}.{tag}@bulk{i % 20}.example",
            "name": f"顧客 {i}",
            "custom": {},
            "time_zone": "Asia/Kathmandu" if i % 20 == 7 and i < 20 * outside_n else "UTC",
        }
        for i in range(count)
    ]
    outside = {c["address"] for c in contacts if c["time_zone"] == "Asia/Kathmandu"}
    assert len(outside) == outside_n
    list_id = await new_list(stack, admin, contacts)
    made = await campaign(
        stack, admin, tenant, list_id, window=window, throttle_per_domain_per_minute=throttle
    )
    cid = made["id"]
    await act(stack, admin, cid, "schedule", {})

    async def inside_done() -> Any:
        c = await get(stack, admin, cid)
        t = c["totals"]
        return c if t["sent"] + t["failed"] == count - outside_n and t["queued"] == 0 else None

    try:
        # outbound dies mid-campaign, is started again and goes on
        await eventually(at_least(smtp_peer, tag, 2000), timeout=300, every=0.1)
        stack.kill("outbound", signal.SIGKILL)
        stack.start_process("outbound")
        await stack.wait_healthy(timeout=60)
        done = await eventually(inside_done, timeout=900, every=0.5)
        assert done["state"] == "running" and done["totals"]["pending"] == outside_n
    finally:  # nothing left sending for the tests after this one
        await call(stack, "POST", f"/api/v1/campaigns/{cid}/cancel", {}, token=admin)
    rows = await recipients(stack, cid)
    assert len(rows) == count
    # the window: those in Kathmandu were never mailed; they waited for their opening
    assert all(r["state"] == "cancelled" for r in rows if r["address"] in outside)
    # the throttle: at most 40 of a domain's mails queued in one period (2 s in the tests;
    # the busiest periods held exactly 40 in the runs measured, beside a full test run)
    per_period = collections.Counter(
        (r["domain"], cd.period_of(r["queued_at"], 2.0)) for r in rows if r["queued_at"]
    )
    assert max(per_period.values()) <= throttle, per_period.most_common(3)
    count -= outside_n
    got = mailed(smtp_peer, tag)
    per_address = collections.Counter(a for r in got for a in r.rcpt_tos)
    assert max(per_address.values()) == 1, per_address.most_common(3)  # never twice
    # each recipient sent was received once; one whose send was cut off in the transfer
    # (the sender killed mid-message) is failed as "unknown", never sent again
    sent = {r["address"] for r in rows if r["state"] == "sent"}
    unknown = [r for r in rows if r["state"] == "failed"]
    assert all("unknown" in r["error"] for r in unknown), unknown[:3]
    assert sent <= set(per_address) and len(sent) + len(unknown) == count
    assert len(unknown) <= 32  # at most what was in flight
    assert not set(per_address) & outside
    assert done["totals"]["sent"] == len(sent) and done["totals"]["recipients"] == count + outside_n
    # the mail: From the inbox, its Message-ID recorded, RFC 8058 headers, bulk
    first = next(r for r in got if r.rcpt_tos == [contacts[0]["address"]])
    msg = first.message
    assert msg["From"].addresses[0].addr_spec == tenant.address
    assert msg["Precedence"] == "bulk" and msg["Auto-Submitted"] == "auto-generated"
    assert (
        msg["List-Unsubscribe"].startswith("<http") and "/unsubscribe/" in msg["List-Unsubscribe"]
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(msg["Subject"]) == "顧客 0へのお知らせ"
    text = msg.get_body(("plain",)).get_content()
    assert "顧客 0様" in text and "Free プラン" in text and "/unsubscribe/" in text
    row = next(r for r in rows if r["address"] == contacts[0]["address"])
    assert first.message_id == row["message_id"]
