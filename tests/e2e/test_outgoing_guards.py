"""Issue 16, points 4–6, on the running system: a scheduled send is changed or cancelled
only by its author or by someone who may take over reply locks — never by an operator
who may not send — and every change is in the ticket's audit trail; a draft changed by
someone else tells its author who, and asks before sending; a line break hidden in an
encoded word (`=?utf-8?q?…=0D=0A…?=`) or a Unicode line separator is refused where an
operator writes it, made harmless where a customer wrote it, and never reaches the mail
at the SMTP server as a header of its own."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.e2e.test_access import own_operator
from tests.e2e.test_accounts import admin_of, call
from tests.e2e.test_compose import lock, mail_ticket
from tests.e2e.test_outbound import reply_draft, send_draft, settled
from tests.helpers import Tenant, eventually, send
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

# decodes to "evil\r\nX-Injected: 1"
EVIL = "=?utf-8?q?evil=0D=0AX-Injected=3A_1?="
# decodes to EVIL itself: what a customer's mail carries after one decoding
DOUBLE = "=?utf-8?q?=3D=3Futf-8=3Fq=3Fevil=3D0D=3D0AX-Injected=3D3A=5F1=3F=3D?="
INJECTED = re.compile(rb"(?mi)^X-Injected")


async def _team(stack: Stack) -> tuple[Tenant, str, dict[str, tuple[str, str]]]:
    """A tenant, its administrator, and operators by role: (id, token), named after it."""
    tenant, admin = await admin_of(stack)
    people = {}
    for role, name in (
        ("agent", "Aiko Author"),
        ("agent", "Bob Colleague"),
        ("trainee", "Tina Trainee"),
        ("supervisor", "Sam Supervisor"),
    ):
        op_id, _, token = await own_operator(stack, admin, tenant, roles=[role], display_name=name)
        people[name.split()[0].lower()] = (op_id, token)
    return tenant, admin, people


async def _audit(stack: Stack, token: str, ticket_id: str, *actions: str) -> list[Any]:
    async def probe() -> Any:
        code, body, _ = await call(
            stack, "GET", f"/api/v1/tickets/{ticket_id}/audit?limit=100", token=token
        )
        assert code == 200, body
        found = [e for e in body["items"] if e["action"] in actions]
        return found if {e["action"] for e in found} >= set(actions) else None

    entries: list[Any] = await eventually(probe, timeout=15)
    return entries


async def test_a_scheduled_send_is_changed_only_by_its_author_or_a_lock_taker_and_audited(
    stack: Stack,
) -> None:
    tenant, _admin, people = await _team(stack)
    aiko_id, aiko = people["aiko"]
    sam_id, sam = people["sam"]
    _, bob = people["bob"]
    _, tina = people["tina"]
    ticket = await mail_ticket(stack, tenant, aiko, f"Schedule guard {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, aiko, ticket, body="Aiko's words")
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    code, item = await send_draft(stack, aiko, draft["id"], fence, send_at=later.isoformat())
    assert code == 201, item
    path = f"/api/v1/sends/{item['id']}"
    moved = (later + timedelta(days=1)).isoformat()

    # a trainee (no permission to send) and a colleague who is not the author: 403 both
    for token in (tina, bob):
        code, body, _ = await call(
            stack, "PUT", f"{path}/schedule", {"send_at": moved}, token=token
        )
        assert code == 403, body
        code, body, _ = await call(stack, "POST", f"{path}/cancel", token=token)
        assert code == 403, body
    code, still, _ = await call(stack, "GET", path, token=aiko)
    assert still["state"] == "scheduled" and still["send_at"] == later.isoformat().replace(
        "+00:00", "Z"
    )
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=aiko)
    assert d["state"] == "submitted"

    # a supervisor (send + take_over_locks) may move and cancel it
    code, out, _ = await call(stack, "PUT", f"{path}/schedule", {"send_at": moved}, token=sam)
    assert code == 200, out
    code, out, _ = await call(stack, "POST", f"{path}/cancel", token=sam)
    assert code == 200 and out["state"] == "cancelled", out

    # each change is in the ticket's audit trail, with who made it
    entries = await _audit(
        stack, aiko, ticket["id"], "send.submitted", "send.rescheduled", "send.cancelled"
    )
    by = {e["action"]: e for e in entries}
    assert by["send.submitted"]["actor"]["id"] == aiko_id
    assert by["send.rescheduled"]["actor"] == {
        "kind": "operator",
        "id": sam_id,
        "name": "Sam Supervisor",
    }
    [when] = [c for c in by["send.rescheduled"]["changes"] if c["field"] == "send_at"]
    assert datetime.fromisoformat(when["old"]) == later
    assert datetime.fromisoformat(when["new"]) == later + timedelta(days=1)
    assert by["send.cancelled"]["actor"]["id"] == sam_id
    assert {"field": "send", "old": "scheduled", "new": "cancelled"} in by["send.cancelled"][
        "changes"
    ]

    # the reopened draft tells its author who opened it, and asks before sending
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=aiko)
    assert d["state"] == "open"
    assert d["last_change"]["by"]["id"] == sam_id and d["last_change"]["action"] == "reopened"
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=aiko)
    [warning] = [f for f in found["findings"] if f["code"] == "changed_by_other"]
    assert warning["severity"] == "warning" and "Sam Supervisor" in warning["message"]
    fence = await lock(stack, aiko, ticket["id"])
    code, body = await send_draft(stack, aiko, draft["id"], fence)
    assert code == 409 and "changed_by_other" in body["error"]["message"], body
    code, again = await send_draft(
        stack,
        aiko,
        draft["id"],
        fence,
        acknowledged_warnings=["recipient_not_participant", "changed_by_other"],
    )
    assert code == 201, again
    await settled(stack, aiko, again["id"], "sent")
    await _audit(stack, aiko, ticket["id"], "send.attempted")


async def test_a_draft_saved_by_someone_else_shows_who_to_its_author(stack: Stack) -> None:
    tenant, _admin, people = await _team(stack)
    aiko_id, aiko = people["aiko"]
    sam_id, sam = people["sam"]
    ticket = await mail_ticket(stack, tenant, aiko, f"Edited by another {uuid.uuid4().hex[:6]}")
    draft, _ = await reply_draft(stack, tenant, aiko, ticket, body="Aiko's words")
    assert draft["last_change"]["by"]["id"] == aiko_id and draft["last_change"]["action"] == (
        "saved"
    )
    code, lk, _ = await call(
        stack, "POST", f"/api/v1/tickets/{ticket['id']}/lock/takeover", token=sam
    )
    assert code == 200, lk
    cur = draft["current"]
    save = {
        "fence": lk["fence"],
        "from_address": cur["from_address"],
        "to": cur["to"],
        "subject": cur["subject"],
        "body_text": "Sam's words instead",
    }
    code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=sam)
    assert code == 200, saved
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=aiko)
    assert d["last_change"]["by"] == {"id": sam_id, "name": "Sam Supervisor"}
    assert d["last_change"]["action"] == "saved"
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=aiko)
    assert "changed_by_other" in {f["code"] for f in found["findings"]}
    code, found, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}/checks", token=sam)
    assert "changed_by_other" not in {f["code"] for f in found["findings"]}


async def _upload(stack: Stack, token: str, draft_id: str, fence: int, name: str) -> Any:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/drafts/{draft_id}/attachments",
            params={"filename": name, "fence": str(fence)},
            data=b"hello",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
        ) as r:
            return r.status, await r.json()


async def test_line_breaks_in_encoded_words_and_separators_are_refused_where_written(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, admin, people = await _team(stack)
    _, aiko = people["aiko"]
    ticket = await mail_ticket(stack, tenant, aiko, f"Encoded {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, aiko, ticket, body="Safe words")
    cur = draft["current"]
    base = {
        "fence": fence,
        "from_address": cur["from_address"],
        "from_name": "Help",
        "to": cur["to"],
        "subject": cur["subject"],
        "body_text": "Safe words",
    }
    for field, value in (
        ("subject", EVIL),
        ("subject", f"Re: {EVIL} tail"),
        ("subject", "line\u2028separator"),
        ("subject", "paragraph\u2029separator"),
        ("subject", "next\u0085line"),
        ("from_name", EVIL),
        ("from_name", "Help\u2028Desk"),
        ("to", [f"{EVIL} <taro@customer.example>"]),
        ("cc", [f"{EVIL} <boss@customer.example>"]),
        ("bcc", [f"{EVIL} <audit@customer.example>"]),
        ("to", ["Taro\u2029Yamada <taro@customer.example>"]),
    ):
        code, body, _ = await call(
            stack, "PUT", f"/api/v1/drafts/{draft['id']}", {**base, field: value}, token=aiko
        )
        assert code == 400 and body["error"]["field"] == field, (field, value, body)
    for name in (f"{EVIL}.txt", f"report{EVIL}.txt", "a\u2028b.txt"):
        code, body = await _upload(stack, aiko, draft["id"], fence, name)
        assert code == 400 and body["error"]["field"] == "filename", (name, body)

    # templates (their subject becomes the mail's) and the inbox's name (the From name)
    template = {"name": "T", "body_text": "Hello"}
    for subject in (EVIL, "a\u2028b", "a\u2029b", "a\u0085b", "{{now:%Y\u2028}}"):
        code, body, _ = await call(
            stack, "POST", "/api/v1/templates", {**template, "subject": subject}, token=admin
        )
        assert code == 400 and body["error"]["field"] == "subject", (subject, body)
    for name in (EVIL, "Help\u2028Desk"):
        code, body, _ = await call(
            stack, "PATCH", f"/api/v1/inboxes/{tenant.inbox_id}", {"name": name}, token=admin
        )
        assert code == 400 and body["error"]["field"] == "name", (name, body)

    # nothing was changed: the draft sends as saved, with no header of the attacker's
    code, d, _ = await call(stack, "GET", f"/api/v1/drafts/{draft['id']}", token=aiko)
    assert d["current"]["subject"] == cur["subject"] and d["current"]["attachments"] == []
    code, item = await send_draft(stack, aiko, draft["id"], fence)
    assert code == 201, item
    await settled(stack, aiko, item["id"], "sent")
    [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
    assert not INJECTED.search(got.data)
    assert str(got.message["From"]).startswith("Help")


def _strangers_mail(tenant: Tenant, subject: str) -> bytes:
    """A customer's mail whose name, subject and attachment name decode to encoded words
    that hide a line break, and whose References hides one too."""
    return (
        f"From: {DOUBLE} <taro@customer.example>\r\n"
        f"To: {tenant.address}\r\n"
        f"Subject: {subject} {DOUBLE}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\n"
        f"References: <{EVIL}@customer.example>\r\n"
        "Date: Mon, 07 Dec 2026 10:00:00 +0900\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Please see the file.\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Disposition: attachment;\r\n"
        " filename*=utf-8''%3D%3Futf-8%3Fq%3Fevil%3D0D%3D0AX-Injected%3D3A_1%3F%3D.txt\r\n"
        "\r\n"
        "attached\r\n"
        "--b1--\r\n"
    ).encode()


async def test_a_strangers_hidden_line_breaks_are_made_harmless_in_replies_and_forwards(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    tenant, _admin, people = await _team(stack)
    _, aiko = people["aiko"]
    tag = f"Stranger {uuid.uuid4().hex[:6]}"
    await asyncio.to_thread(
        send,
        stack.smtp_port,
        _strangers_mail(tenant, tag),
        [tenant.address],
        "taro@customer.example",
    )

    async def found() -> Any:
        _code, body, _ = await call(stack, "GET", "/api/v1/tickets?limit=200", token=aiko)
        return next((t for t in body["items"] if t["subject"].startswith(tag)), None)

    ticket = await eventually(found, timeout=30)
    sent = []
    for kind, to in (("reply", None), ("forward", ["boss@partner.example"])):
        fence = await lock(stack, aiko, ticket["id"])
        code, draft, _ = await call(
            stack,
            "POST",
            f"/api/v1/tickets/{ticket['id']}/drafts",
            {"kind": kind, "fence": fence},
            token=aiko,
        )
        assert code == 201, draft
        cur = draft["current"]
        assert "\r" not in cur["subject"] and "\n" not in cur["subject"]
        save = {
            "fence": fence,
            "from_address": cur["from_address"],
            "from_name": cur["from_name"],
            "to": to or cur["to"],
            "subject": cur["subject"],
            "body_text": f"Our {kind}",
            "attachment_ids": [a["id"] for a in cur["attachments"]],
        }
        code, saved, _ = await call(stack, "PUT", f"/api/v1/drafts/{draft['id']}", save, token=aiko)
        assert code == 200, saved  # what the customer wrote does not stop the operator
        code, item = await send_draft(stack, aiko, draft["id"], fence)
        assert code == 201, item
        sent.append(await settled(stack, aiko, item["id"], "sent"))

        async def released() -> bool:  # outbound lets the lock go after the send is done
            _c, t, _ = await call(stack, "GET", f"/api/v1/tickets/{ticket['id']}", token=aiko)
            return t["lock"] is None

        await eventually(released)
    for item in sent:
        [got] = [r for r in smtp_peer.received if r.message_id == item["message_id"]]
        assert not INJECTED.search(got.data), got.data[:2000]
        for part in got.message.walk():
            for name, value in part.items():
                assert "\n" not in str(value) and "\r" not in str(value), (name, value)
