"""Sending (issue 7) on the running system, to a real SMTP server (aiosmtpd, scripted to
misbehave): a reply sent now reaches the customer with the inbox's identity and a signed
Message-ID, is stored in its ticket, sets the status chosen and frees the reply lock, and
the customer's answer threads back; scheduled sends can be moved and cancelled; 4xx and
dropped connections are retried with the same Message-ID, 5xx fails, a silence after
the message leaves the item "unknown" for an operator to decide; bounces are linked."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.devstack.stack import Stack
from tests.e2e.test_accounts import call
from tests.e2e.test_compose import desk, lock, mail_ticket
from tests.helpers import Tenant, eventually, make_mail, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e


async def reply_draft(
    stack: Stack,
    tenant: Tenant,
    token: str,
    ticket: dict[str, Any],
    *,
    to: list[str] | None = None,
    body: str = "Thank you for writing. Your parcel left today.",
    kind: str = "reply",
    **fields: Any,
) -> tuple[dict[str, Any], int]:
    """A saved reply (or `kind`) draft on the ticket, with the reply lock's fence."""
    fence = await lock(stack, token, ticket["id"])
    code, draft, _ = await call(
        stack,
        "POST",
        f"/api/v1/tickets/{ticket['id']}/drafts",
        {"kind": kind, "fence": fence},
        token=token,
    )
    assert code == 201, draft
    cur = draft["current"]
    save = {
        "fence": fence,
        "from_address": tenant.address,
        "from_name": "Help",
        "to": to if to is not None else cur["to"],
        "cc": [],
        "subject": cur["subject"],
        "body_text": body,
        "signature_text": "",
        "include_quote": False,
        **fields,
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=token)
    assert code == 200, saved
    return saved, fence


async def send_draft(
    stack: Stack, token: str, draft_id: str, fence: int, **body: Any
) -> tuple[int, dict[str, Any]]:
    code, out, _ = await call(
        stack,
        "POST",
        f"/api/v1/drafts/{draft_id}/send",
        {"fence": fence, "acknowledged_warnings": ["recipient_not_participant"], **body},
        token=token,
    )
    return code, out


async def settled(stack: Stack, token: str, send_id: str, *states: str, timeout: float = 20) -> Any:
    async def probe() -> Any:
        code, item, _ = await call(stack, "GET", f"/api/v1/sends/{send_id}", token=token)
        assert code == 200, item
        return item if item["state"] in states else None

    return await eventually(probe, timeout=timeout, every=0.1)


async def test_a_reply_sent_now_reaches_the_customer_threads_and_updates_the_ticket(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    subject = f"Where is my parcel {uuid.uuid4().hex[:6]}"
    ticket = await mail_ticket(stack, tenant, agent, subject)
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    code, item = await send_draft(stack, agent, draft["id"], fence, status_after="pending")
    assert code == 201, item
    assert item["state"] == "scheduled" and item["kind"] == "reply"
    assert item["recipients"] == ["taro@customer.example"]
    done = await settled(stack, agent, item["id"], "sent")
    assert done["last_reply"]["code"] == 250 and done["attempts"] == 1
    assert [r["outcome"] for r in done["replies"]] == ["sent"]

    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    assert got.mail_from == tenant.address and got.rcpt_tos == ["taro@customer.example"]
    msg = got.message
    assert msg["From"].addresses[0].addr_spec == tenant.address
    assert str(msg["Subject"]) == f"Re: {subject}"
    assert msg["In-Reply-To"] and msg["In-Reply-To"] in msg["References"]
    assert msg["Date"] and "Your parcel left today" in msg.get_body(("plain",)).get_content()

    async def filed() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
        ours = [m for m in t["messages"] if m["channel"] == "sent"]
        return t if ours and t["status"] == "pending" and t["lock"] is None else None

    t = await eventually(filed)
    assert t["message_count"] == 2
    finished = await eventually(lambda: _finished(stack, agent, item["id"]), timeout=10)
    assert finished["after_send"] == {"done": True, "problems": None}
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=agent)
    assert d["state"] == "sent"
    # the same draft cannot go twice
    code, again = await send_draft(stack, agent, draft["id"], fence)
    assert code in (201, 409)
    assert code == 409 or again["id"] == item["id"]
    assert sum(1 for r in smtp_peer.received if r.message_id == item["message_id"]) == 1

    # the customer answers our mail: it joins the same ticket
    answer = make_mail(
        f"Re: Re: {subject}",
        sender="Taro Yamada <taro@customer.example>",
        to=tenant.address,
        body="Thanks!",
    )
    answer["In-Reply-To"] = f"<{item['message_id']}>"
    await asyncio.to_thread(send, stack.smtp_port, answer, [tenant.address])

    async def threaded() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
        return t if t["message_count"] == 3 else None

    assert (await eventually(threaded))["status"] == "open"  # the customer's reply reopens it
    code, listed, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=agent)
    assert [s["id"] for s in listed["items"]] == [item["id"]]


async def test_a_new_mail_once_sent_starts_a_ticket_that_the_answer_joins(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    """A mail without a ticket (a new mail from an inbox) is filed as the first message of
    a ticket of its own — routing decides that without asking tickets — and the customer's
    answer threads into it."""
    tenant, _admin, agent, _ = await desk(stack)
    subject = f"Your order {uuid.uuid4().hex[:6]}"
    code, draft, _ = await call(
        stack, "POST", "/api/v1/drafts", {"inbox_id": tenant.inbox_id}, token=agent
    )
    assert code == 201 and draft["ticket_id"] is None
    save = {
        "from_address": tenant.address,
        "to": ["hanako@customer.example"],
        "subject": subject,
        "body_text": "Your order has shipped.",
    }
    code, _saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=agent)
    assert code == 200
    code, item = await send_draft(stack, agent, draft["id"], 1)  # no ticket: no lock
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    await eventually(lambda: _finished(stack, agent, item["id"]), timeout=10)

    async def started() -> Any:
        _c, page, _ = await call(
            stack, "GET", f"/api/v1/tickets?q={subject.split()[-1]}&status=open", token=agent
        )
        found = [t for t in page["items"] if t["subject"] == subject]
        return found[0] if found else None

    ticket = await eventually(started, every=0.25)  # a search: counted per minute
    answer = make_mail(
        f"Re: {subject}", sender="Hanako <hanako@customer.example>", to=tenant.address, body="ok"
    )
    answer["In-Reply-To"] = f"<{item['message_id']}>"
    await asyncio.to_thread(send, stack.smtp_port, answer, [tenant.address])

    async def joined() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
        return t if t["message_count"] == 2 else None

    t = await eventually(joined)
    assert [m["channel"] for m in t["messages"]] == ["sent", "smtp"]


async def _finished(stack: Stack, token: str, send_id: str) -> Any:
    _c, item, _ = await call(stack, "GET", f"/api/v1/sends/{send_id}", token=token)
    return item if item["after_send"]["done"] else None


async def test_scheduled_send_can_be_moved_cancelled_and_edited_then_goes_on_time(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Schedule {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, body="First version")
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    code, item = await send_draft(
        stack, agent, draft["id"], fence, send_at=later.isoformat(), status_after="resolved"
    )
    assert code == 201 and item["state"] == "scheduled", item
    assert item["send_at"] == later.isoformat().replace("+00:00", "Z")

    # a scheduled send frees the lock at once; the draft is no longer editable
    _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
    assert t["lock"] is None
    code, body, _ = await call(stack, "GET", "/api/v1/sends?state=scheduled", token=agent)
    assert item["id"] in [s["id"] for s in body["items"]]

    # moved to another time: the Date header follows
    moved = later + timedelta(days=1)
    code, out, _ = await call(
        stack,
        "PUT",
        f"/api/v1/sends/{item['id']}/schedule",
        {"send_at": moved.isoformat()},
        token=agent,
    )
    assert code == 200 and out["send_at"] == moved.isoformat().replace("+00:00", "Z"), out
    code, body, _ = await call(
        stack,
        "PUT",
        f"/api/v1/sends/{item['id']}/schedule",
        {"send_at": "2020-01-01T00:00:00Z"},
        token=agent,
    )
    assert code == 400 and body["error"]["field"] == "send_at"

    # cancelled to edit: the draft opens again, is changed, and sent in two seconds
    code, out, _ = await call(stack, "POST", f"/api/v1/sends/{item['id']}/cancel", token=agent)
    assert code == 200 and out["state"] == "cancelled"
    code, body, _ = await call(stack, "POST", f"/api/v1/sends/{item['id']}/cancel", token=agent)
    assert code == 409
    draft2, fence2 = await _reopen_and_edit(stack, tenant, agent, ticket, draft, "Second version")
    soon = datetime.now(UTC) + timedelta(seconds=2)
    code, item2 = await send_draft(
        stack, agent, draft2["id"], fence2, send_at=soon.isoformat(), status_after="resolved"
    )
    assert code == 201, item2
    done = await settled(stack, agent, item2["id"], "sent")
    sent_at = datetime.fromisoformat(done["sent_at"])
    assert sent_at >= soon - timedelta(milliseconds=50)
    [got] = [r for r in smtp_peer.received if r.message_id == item2["message_id"]]
    assert "Second version" in got.message.get_body(("plain",)).get_content()
    assert not [r for r in smtp_peer.received if r.message_id == item["message_id"]]

    async def resolved() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
        return t["status"] == "resolved"

    await eventually(resolved)


async def _reopen_and_edit(
    stack: Stack,
    tenant: Tenant,
    token: str,
    ticket: dict[str, Any],
    draft: dict[str, Any],
    body: str,
) -> tuple[dict[str, Any], int]:
    async def reopened() -> Any:
        _c, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=token)
        return d if d["state"] == "open" else None

    d = await eventually(reopened)
    fence = await lock(stack, token, ticket["id"])
    cur = d["current"]
    save = {
        "fence": fence,
        "from_address": cur["from_address"],
        "from_name": cur["from_name"],
        "to": cur["to"],
        "subject": cur["subject"],
        "body_text": body,
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=token)
    assert code == 200, saved
    return saved, fence


@pytest.mark.parametrize(
    ("recipient", "final", "attempts", "code"),
    [
        ("tempfail-rcpt", "failed", 3, 451),  # 4xx, retried up to the limit (3 in tests)
        ("reject-rcpt", "failed", 1, 550),  # 5xx: permanent at once
        ("busy", "failed", 3, 421),
        ("drop-rcpt", "failed", 3, None),  # connection lost before the message: retried
        ("flaky2", "sent", 3, 250),  # 451 twice, then accepted: same Message-ID each time
        ("hang", "unknown", 1, None),  # no reply after the final dot
        ("drop-data", "unknown", 1, None),  # connection closed after the final dot
    ],
)
async def test_smtp_failures_are_retried_failed_or_left_unknown(
    stack: Stack, smtp_peer: SmtpPeer, recipient: str, final: str, attempts: int, code: Any
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"SMTP {recipient} {uuid.uuid4().hex[:6]}")
    address = f"{recipient}@peer.example"
    draft, fence = await reply_draft(stack, tenant, agent, ticket, to=[address])
    status, item = await send_draft(stack, agent, draft["id"], fence)
    assert status == 201, item
    done = await settled(stack, agent, item["id"], final, timeout=30)
    assert done["attempts"] == attempts, done
    assert done["last_reply"]["code"] == code, done
    assert len(done["replies"]) == attempts
    delivered = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    assert len(delivered) == (1 if final == "sent" else 0)
    if recipient.startswith("flaky"):
        assert smtp_peer.handler.tries[item["message_id"]] == 3  # one Message-ID, three tries
    if final == "failed":
        # the draft opens again for the operator; the lock was released after the first try
        async def reopened() -> Any:
            _c, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=agent)
            return d["state"] == "open"

        await eventually(reopened)
    if final == "unknown":
        assert "no reply" in done["last_reply"]["message"]
        code2, out, _ = await call(
            stack,
            "POST",
            f"/api/v1/sends/{item['id']}/resolve",
            {"decision": "maybe"},
            token=agent,
        )
        assert code2 == 400
        code2, out, _ = await call(
            stack,
            "POST",
            f"/api/v1/sends/{item['id']}/resolve",
            {"decision": "delivered"},
            token=agent,
        )
        assert code2 == 200 and out["state"] == "sent", out

        async def filed() -> Any:
            _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
            return any(m["channel"] == "sent" for m in t["messages"])

        await eventually(filed)


async def test_partial_rejection_sends_to_the_others_and_says_who_was_refused(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Partial {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(
        stack, tenant, agent, ticket, to=["taro@customer.example", "reject-rcpt@peer.example"]
    )
    _s, item = await send_draft(stack, agent, draft["id"], fence)
    done = await settled(stack, agent, item["id"], "sent")
    assert done["rejected"] == ["reject-rcpt@peer.example"]
    assert "reject-rcpt@peer.example" in done["last_reply"]["message"]
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    assert got.rcpt_tos == ["taro@customer.example"]


async def test_a_bounce_is_linked_to_the_sent_mail(stack: Stack, smtp_peer: SmtpPeer) -> None:
    tenant, _admin, agent, _ = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Bounce {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, to=["gone@peer.example"])
    _s, item = await send_draft(stack, agent, draft["id"], fence)
    await settled(stack, agent, item["id"], "sent")
    dsn = (
        f"From: MAILER-DAEMON@peer.example\r\nTo: {tenant.address}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@peer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; peer.example\r\n\r\n"
        "Final-Recipient: rfc822; gone@peer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: <{item['message_id']}>\r\nSubject: x\r\n\r\n--b--\r\n"
    ).encode()
    await asyncio.to_thread(send, stack.smtp_port, dsn, [tenant.address])
    bounced = await settled(stack, agent, item["id"], "bounced")
    assert bounced["bounce"] == "5.1.1"

    async def in_ticket() -> Any:
        _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=agent)
        return t["message_count"] == 3  # the question, our reply, the bounce

    await eventually(in_ticket)


async def test_sending_needs_the_lock_the_checks_and_the_permission(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, agent, supervisor = await desk(stack)
    ticket = await mail_ticket(stack, tenant, agent, f"Guards {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket, body="Please find it attached.")
    # warnings not acknowledged
    code, body, _ = await call(
        stack, "POST", f"/api/v1/drafts/{draft['id']}/send", {"fence": fence}, token=agent
    )
    assert code == 409 and body["error"]["field"] == "acknowledged_warnings", body
    assert "attachment_forgotten" in body["error"]["message"]
    # a stale fence (the supervisor took the lock over)
    code, _taken, _ = await call(
        stack, "POST", f"/api/v1/tickets/{ticket['id']}/lock/takeover", token=supervisor
    )
    code, body = await send_draft(
        stack, agent, draft["id"], fence, acknowledged_warnings=["attachment_forgotten"]
    )
    assert code == 409 and body["error"]["field"] == "fence", body
    for bad, field in (
        ({"send_at": "tomorrow"}, "send_at"),
        ({"send_at": "2020-01-01T00:00:00Z"}, "send_at"),
        ({"status_after": "trash"}, "status_after"),
        ({"fence": "x"}, "fence"),
        ({"surprise": 1}, None),
    ):
        code, body, _ = await call(
            stack,
            "POST",
            f"/api/v1/drafts/{draft['id']}/send",
            {"fence": fence, **bad},
            token=agent,
        )
        assert code == 400, (bad, body)
        if field:
            assert body["error"]["field"] == field
    # nothing went out, and nothing is queued
    code, listed, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}/sends", token=agent)
    assert listed["items"] == []
    # a trainee may not send without approval
    trainee_md = await _trainee(stack, admin, tenant)
    code, body, _ = await call(
        stack, "POST", f"/api/v1/drafts/{draft['id']}/send", {"fence": 1}, token=trainee_md
    )
    assert code == 403, body


async def _trainee(stack: Stack, admin: str, tenant: Tenant) -> str:
    from tests.e2e.test_access import operator_token

    return await operator_token(stack, admin, tenant, roles=["trainee"])
