"""Exports (issue 19, DAT-1) through the real processes: CSV of tickets and messages with
chosen columns, the mails of a period as .eml files in a zip and as an mbox (byte-identical
to what was received), resumed after a SIGKILL of reporting with the same checksum, bad
input, permissions, masking, and the operation log. Each test has a tenant of its own."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import mailbox
import signal
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.helpers import (
    Tenant,
    all_tickets,
    api_call,
    api_get,
    create_tenant,
    eventually,
    login,
    send,
)
from tests.smtp_peer import SmtpPeer

pytestmark = pytest.mark.e2e

TICKET_COLUMNS = ["number", "subject", "status", "from_address", "received_at"]


def _raw_mail(to: str, subject: str, sender: str) -> bytes:
    """A mail as bytes with CRLF line ends (what SMTP carries unchanged)."""
    lines = [
        f"From: Customer <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        "Date: Sun, 06 Dec 2026 10:00:00 +0000",
        f"Message-ID: <{uuid.uuid4().hex}@example.com>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"Question about {subject}.",
        "From the customer, with love.",  # an mbox must quote this line
        "",
    ]
    return "\r\n".join(lines).encode()


async def _admin(stack: Stack) -> tuple[Tenant, str]:
    tenant = await create_tenant(stack)
    return tenant, await login(stack, tenant.login, tenant.password)


async def _send_and_wait(
    stack: Stack, tenant: Tenant, token: str, tag: str, count: int, sender: str
) -> list[bytes]:
    mails = [_raw_mail(tenant.address, f"{tag} #{i}", sender) for i in range(count)]
    for raw in mails:
        await asyncio.to_thread(send, stack.smtp_port, raw, [tenant.address], sender)

    async def filed() -> bool:
        tickets = await all_tickets(stack, token)
        return sum(t["subject"].startswith(tag) for t in tickets) >= count

    await eventually(filed, timeout=30)
    return mails


async def _export(stack: Stack, token: str, body: dict[str, Any]) -> dict[str, Any]:
    code, made = await api_call(stack, token, "POST", "/api/v1/exports", body)
    assert code == 202, made
    return dict(made)


async def _finished(
    stack: Stack, token: str, export_id: str, timeout: float = 60
) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        code, body = await api_get(stack, token, f"/api/v1/exports/{export_id}")
        if code == 503:
            return None  # reporting is being restarted
        assert code == 200, body
        assert body["state"] != "failed", body
        return dict(body) if body["state"] == "done" else None

    return dict(await eventually(done, timeout=timeout, every=0.2))


async def _download(stack: Stack, token: str, export: dict[str, Any]) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}{export['download']}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            assert resp.headers["Content-Type"].startswith(export["content_type"].split(";")[0])
            assert export["filename"] in resp.headers["Content-Disposition"]
            return await resp.read()


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def _ready(stack: Stack, tenant: Tenant) -> str:
    """Now, once every mail so far has been stored (a period boundary between them)."""
    await asyncio.sleep(0.05)
    return _iso(datetime.now(UTC))


async def test_tickets_and_messages_csv_hold_the_tickets_with_the_chosen_columns(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    start = _iso(datetime.now(UTC) - timedelta(seconds=5))
    tag = f"CSV {uuid.uuid4().hex[:6]}"
    await _send_and_wait(stack, tenant, token, tag, 4, "taro.yamada@example.com")
    end = _iso(datetime.now(UTC) + timedelta(seconds=5))

    made = await _export(
        stack,
        token,
        {"kind": "tickets_csv", "from": start, "to": end, "columns": TICKET_COLUMNS},
    )
    assert made["state"] in ("queued", "running", "done") and made["kind"] == "tickets_csv"
    export = await _finished(stack, token, made["id"])
    assert export["done"] == export["total"] == 4
    data = await _download(stack, token, export)
    assert hashlib.sha256(data).hexdigest() == export["sha256"]
    assert len(data) == export["size_bytes"]
    header, *rows = _csv_rows(data)
    assert header == TICKET_COLUMNS
    tickets = sorted(await all_tickets(stack, token), key=lambda t: t["number"])
    expected = [
        [str(t["number"]), t["subject"], t["status"], t["from"]["address"]] for t in tickets
    ]
    assert [r[:4] for r in rows] == expected
    for row, ticket in zip(rows, tickets, strict=True):
        received = datetime.fromisoformat(ticket["received_at"])
        assert datetime.fromisoformat(row[4]) == received.replace(microsecond=0)  # to the second

    made = await _export(
        stack,
        token,
        {
            "kind": "messages_csv",
            "from": start,
            "to": end,
            "inbox_id": tenant.inbox_id,
            "columns": ["subject", "from_address", "to", "channel"],
            "tz": "Asia/Tokyo",
        },
    )
    export = await _finished(stack, token, made["id"])
    header, *rows = _csv_rows(await _download(stack, token, export))
    assert header == ["subject", "from_address", "to", "channel"]
    assert sorted(rows) == sorted(
        [f"{tag} #{i}", "taro.yamada@example.com", tenant.address, "smtp"] for i in range(4)
    )

    code, listed = await api_get(stack, token, "/api/v1/exports")
    assert code == 200 and [e["kind"] for e in listed["items"]] == ["messages_csv", "tickets_csv"]

    async def logged() -> bool:
        code, ops = await api_get(stack, token, "/api/v1/operations?action=createExport")
        assert code == 200, ops
        return len(ops["items"]) >= 2

    await eventually(logged, timeout=15)


async def test_the_eml_zip_and_the_mbox_hold_exactly_the_periods_mails_byte_for_byte(
    stack: Stack, tmp_path: Path
) -> None:
    tenant, token = await _admin(stack)
    tag = f"EML {uuid.uuid4().hex[:6]}"
    await _send_and_wait(stack, tenant, token, f"{tag} before", 2, "early@example.com")
    start = await _ready(stack, tenant)
    inside = await _send_and_wait(stack, tenant, token, f"{tag} inside", 3, "mid@example.com")
    end = await _ready(stack, tenant)
    await _send_and_wait(stack, tenant, token, f"{tag} after", 1, "late@example.com")

    made = await _export(stack, token, {"kind": "eml_zip", "from": start, "to": end})
    export = await _finished(stack, token, made["id"])
    assert export["done"] == export["total"] == 3
    data = await _download(stack, token, export)
    assert hashlib.sha256(data).hexdigest() == export["sha256"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert all(n.endswith(".eml") for n in names)
        contents = [zf.read(n) for n in names]
    assert contents == inside  # exactly the period's mails, in order, as sent

    # ... and as the API gives each original (GetRawMessage)
    tickets = [t for t in await all_tickets(stack, token) if " inside " in t["subject"]]
    originals = []
    for t in tickets:
        code, full = await api_get(stack, token, f"/api/v1/tickets/{t['id']}")
        assert code == 200, full
        for entry in full["timeline"]:
            if entry["type"] != "mail":
                continue
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{stack.gateway_url}/api/v1/messages/{entry['message']['id']}/raw",
                    headers={"Authorization": f"Bearer {token}"},
                ) as resp:
                    assert resp.status == 200
                    originals.append(await resp.read())
    assert sorted(originals) == sorted(contents)

    made = await _export(
        stack, token, {"kind": "mbox", "from": start, "to": end, "inbox_id": tenant.inbox_id}
    )
    export = await _finished(stack, token, made["id"])
    data = await _download(stack, token, export)
    assert data.count(b"\n>From the customer") == 3  # quoted
    path = tmp_path / "mails.mbox"
    await asyncio.to_thread(path.write_bytes, data)
    box = mailbox.mbox(path)
    try:
        assert [m["Subject"] for m in box] == [f"{tag} inside #{i}" for i in range(3)]
    finally:
        box.close()


async def _restart_reporting(stack: Stack, env: dict[str, str] | None) -> None:
    """reporting killed (SIGKILL) and started again, with `env` added to its settings."""
    stack.kill("reporting", signal.SIGKILL)
    if env is None:
        stack.config.extra_env.pop("reporting", None)
    else:
        stack.config.extra_env["reporting"] = env
    stack.start_process("reporting")
    await stack.wait_healthy(timeout=60)


async def test_an_export_killed_midway_finishes_with_the_same_file_as_an_uninterrupted_one(
    stack: Stack,
) -> None:
    tenant, token = await _admin(stack)
    start = _iso(datetime.now(UTC) - timedelta(seconds=5))
    tag = f"Kill {uuid.uuid4().hex[:6]}"
    await _send_and_wait(stack, tenant, token, tag, 8, "kill@example.com")
    end = _iso(datetime.now(UTC) + timedelta(seconds=5))
    # one row or mail per batch, and a pause after each: an export takes seconds
    slow = {"SB_EXPORT_BATCH_ROWS": "1", "SB_EXPORT_BATCH_BYTES": "1", "SB_EXPORT_PAUSE_S": "0.4"}
    await _restart_reporting(stack, slow)
    try:
        sums = {}
        for kind in ("tickets_csv", "eml_zip"):
            body = {"kind": kind, "from": start, "to": end}
            made = await _export(stack, token, body)

            async def midway(export_id: str = made["id"]) -> bool:
                code, seen = await api_get(stack, token, f"/api/v1/exports/{export_id}")
                assert code == 200 and seen["state"] != "done", seen
                return bool(seen["state"] == "running" and 2 <= seen["done"] <= 5)

            await eventually(midway, timeout=30, every=0.05)
            await _restart_reporting(stack, slow)  # SIGKILL in the middle of it
            resumed = await _finished(stack, token, made["id"])
            again = await _finished(stack, token, (await _export(stack, token, body))["id"])
            assert resumed["done"] == again["done"] == 8
            data = await _download(stack, token, resumed)
            assert hashlib.sha256(data).hexdigest() == resumed["sha256"] == again["sha256"]
            sums[kind] = resumed["sha256"]
        assert len(set(sums.values())) == 2
    finally:
        await _restart_reporting(stack, None)


async def _masked_exporter(stack: Stack, tenant: Tenant, admin: str) -> str:
    """An operator of the tenant who may export but not see customers' addresses: the
    tenant's trainee role given `export`, a new trainee logged in with a password of
    their own. Their token."""
    code, body = await api_call(
        stack, admin, "PUT", "/api/v1/roles/trainee", {"permissions": ["export", "print"]}
    )
    assert code == 200, body
    who = f"masked-{uuid.uuid4().hex[:8]}@ops.example"
    code, made = await api_call(
        stack,
        admin,
        "POST",
        "/api/v1/operators",
        {
            "login": who,
            "display_name": "Masked",
            "inbox_ids": [tenant.inbox_id],
            "roles": ["trainee"],
        },
    )
    assert code == 201, made
    temporary = made["temporary_password"]
    token = await login(stack, who, temporary)
    new = "a password of my own"
    code, body = await api_call(
        stack,
        token,
        "POST",
        "/api/v1/me/password",
        {"current_password": temporary, "new_password": new},
    )
    assert code == 200, body
    return await login(stack, who, new)


async def test_bad_input_permissions_and_masking(stack: Stack) -> None:
    from services.runtime.demo import SUPPORT_INBOX

    tenant, admin = await _admin(stack)
    start = _iso(datetime.now(UTC) - timedelta(seconds=5))
    tag = f"Mask {uuid.uuid4().hex[:6]}"
    await _send_and_wait(stack, tenant, admin, tag, 2, "hanako.suzuki@example.co.jp")
    end = _iso(datetime.now(UTC) + timedelta(seconds=5))
    good = {"kind": "tickets_csv", "from": start, "to": end}

    bad: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "kind": "xlsx"}, 400, "kind"),
        ({**good, "columns": ["subject", "password"]}, 400, "columns"),
        ({**good, "from": end, "to": start}, 400, "to"),
        ({"kind": "tickets_csv", "to": end}, 400, "from"),
        ({**good, "from": "yesterday"}, 400, "from"),
        ({**good, "tz": "Mars/Olympus"}, 400, "tz"),
        ({**good, "inbox_id": "not-an-id"}, 400, "inbox_id"),
        ({**good, "inbox_id": str(SUPPORT_INBOX)}, 404, "inbox_id"),  # another tenant's
        ({**good, "inbox_id": str(uuid.uuid4())}, 404, "inbox_id"),
    ]
    for body, status, field in bad:
        code, answer = await api_call(stack, admin, "POST", "/api/v1/exports", body)
        assert (code, answer["error"]["field"]) == (status, field), (body, answer)
        if field == "columns":
            assert "'password'" in answer["error"]["message"]  # the unknown one, named
    code, listed = await api_get(stack, admin, "/api/v1/exports")
    assert code == 200 and listed["items"] == []  # nothing was made

    code, answer = await api_get(stack, admin, f"/api/v1/exports/{uuid.uuid4()}")
    assert code == 404 and answer["error"]["field"] == "export_id"
    agent = await login(stack)  # the demo tenant's agent: no `export`
    code, answer = await api_call(stack, agent, "POST", "/api/v1/exports", good)
    assert code == 403 and "export" in answer["error"]["message"]
    assert (await api_get(stack, agent, "/api/v1/exports"))[0] == 403

    made = await _export(stack, admin, {**good, "columns": ["subject", "from_address"]})
    supervisor = await login(stack, "supervisor@demo.example")  # may export, not this one
    code, answer = await api_get(stack, supervisor, f"/api/v1/exports/{made['id']}")
    assert code == 404 and answer["error"]["field"] == "export_id"
    code, answer = await api_get(stack, supervisor, f"/api/v1/exports/{made['id']}/file")
    assert code == 404
    export = await _finished(stack, admin, made["id"])
    _, *rows = _csv_rows(await _download(stack, admin, export))
    assert {r[1] for r in rows} == {"hanako.suzuki@example.co.jp"}

    masked = await _masked_exporter(stack, tenant, admin)
    code, answer = await api_call(
        stack, masked, "POST", "/api/v1/exports", {**good, "kind": "eml_zip"}
    )
    assert code == 403 and "see_customer_addresses" in answer["error"]["message"]
    body = {**good, "kind": "messages_csv", "columns": ["subject", "from_address", "to"]}
    export = await _finished(stack, masked, (await _export(stack, masked, body))["id"])
    _, *rows = _csv_rows(await _download(stack, masked, export))
    assert sorted(rows) == [
        [f"{tag} #{i}", "h***@e***.jp", tenant.address] for i in range(2)
    ]  # the customer's address masked, the tenant's own inbox address kept


async def test_an_aggregate_reports_csv_export_is_the_charts_csv(stack: Stack) -> None:
    tenant, admin = await _admin(stack)
    tag = f"Report {uuid.uuid4().hex[:6]}"
    await _send_and_wait(stack, tenant, admin, tag, 2, "report@example.com")
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date().isoformat()
    params = {"from": today, "to": today, "tz": "Asia/Tokyo", "granularity": "day"}

    code, answer = await api_call(
        stack, admin, "POST", "/api/v1/exports",
        {"kind": "report_csv", "report": "volume", **params, "granularity": "fortnight"},
    )  # fmt: skip
    assert code == 400 and answer["error"]["field"] == "granularity", answer

    async def counted() -> bytes | None:
        made = await _export(stack, admin, {"kind": "report_csv", "report": "volume", **params})
        export = await _finished(stack, admin, made["id"])
        assert export["report"] == "volume" and export["content_type"].startswith("text/csv")
        data = await _download(stack, admin, export)
        query = "&".join(f"{k}={v}" for k, v in params.items())
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{stack.gateway_url}/api/v1/reports/volume.csv?{query}",
                headers={"Authorization": f"Bearer {admin}"},
            ) as resp:
                assert resp.status == 200
                chart = await resp.read()
        # the same cells, the same bytes — once reporting has counted both mails (an export
        # and a chart read while the second is being counted may differ: asked again)
        return data if data == chart and b",2," in data else None

    await eventually(counted, timeout=30, every=1)


async def test_the_eml_zip_holds_sent_mails_as_they_were_sent(
    stack: Stack, smtp_peer: SmtpPeer
) -> None:
    from tests.e2e.test_compose import desk, mail_ticket
    from tests.e2e.test_outbound import reply_draft, send_draft, settled

    tenant, _admin, agent, supervisor = await desk(stack)  # the supervisor may export
    start = _iso(datetime.now(UTC) - timedelta(seconds=5))
    ticket = await mail_ticket(stack, tenant, agent, f"Parcel {uuid.uuid4().hex[:6]}")
    draft, fence = await reply_draft(stack, tenant, agent, ticket)
    code, item = await send_draft(stack, agent, draft["id"], fence)
    assert code == 201, item
    await settled(stack, agent, item["id"], "sent")
    [sent] = [r.data for r in smtp_peer.received if r.message_id == item["message_id"]]

    async def filed() -> list[dict[str, Any]] | None:
        code, t = await api_get(stack, agent, f"/api/v1/tickets/{ticket['id']}")
        assert code == 200, t
        return t["messages"] if len(t["messages"]) == 2 else None

    messages = await eventually(filed, timeout=20)
    end = _iso(datetime.now(UTC) + timedelta(seconds=5))
    made = await _export(stack, supervisor, {"kind": "eml_zip", "from": start, "to": end})
    export = await _finished(stack, supervisor, made["id"])
    with zipfile.ZipFile(io.BytesIO(await _download(stack, supervisor, export))) as zf:
        contents = [zf.read(n) for n in zf.namelist()]
    assert len(contents) == 2 and sent in contents  # the reply, byte for byte as sent
    assert {m["channel"] for m in messages} == {"smtp", "sent"}
