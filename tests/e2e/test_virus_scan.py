"""Virus marks (ING-5) with Debian's real clamd and a signature database of the EICAR test
file (tests/clamd.py): an infected mail is kept, filed in the trash with the verdict shown,
and neither its attachments nor its original can be downloaded; a clean mail is open as
always; with clamd stopped a mail is still taken and filed, marked "not scanned", and
scanned once clamd is back — an infected one then moves to the trash."""

from __future__ import annotations

import asyncio
import uuid
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests.clamd import EICAR, SIGNATURE, Clamd
from tests.e2e.test_smtp_intake import raw_of
from tests.helpers import all_tickets, api_get, eventually, login, send

pytestmark = pytest.mark.e2e


def mail_with(subject: str, attachments: list[tuple[str, bytes]]) -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Customer <customer@example.com>"
    m["To"] = "support@demo.example"
    m["Subject"] = subject
    m.set_content("Please see the attached files.\n")
    for name, data in attachments:
        m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return m


async def download(stack: Stack, token: str, path: str) -> bytes:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}{path}", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.read()


async def ticket_and_mail(
    stack: Stack, token: str, subject: str, status: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ticket with this subject once it has `status`, and its first mail as the API
    shows it (GET /api/v1/messages/{id})."""

    async def found() -> list[dict[str, Any]]:
        return [t for t in await all_tickets(stack, token, status) if t["subject"] == subject]

    [ticket] = await eventually(found, timeout=40, every=0.2)
    code, detail = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}")
    assert code == 200
    code, mail = await api_get(stack, token, f"/api/v1/messages/{detail['messages'][0]['id']}")
    assert code == 200
    return ticket, mail


async def test_an_infected_mail_goes_to_trash_with_its_verdict_and_nothing_downloads(
    stack: Stack,
) -> None:
    token = await login(stack)
    subject = f"Invoice {uuid.uuid4().hex[:8]}"
    message = mail_with(subject, [("notes.txt", b"just notes\n"), ("invoice.com", EICAR)])
    await asyncio.to_thread(send, stack.smtp_port, message)
    ticket, mail = await ticket_and_mail(stack, token, subject, "trash")
    assert ticket["status"] == "trash"
    scan = mail["parsed"]["virus_scan"]
    assert scan["state"] == "infected" and scan["error"] is None and scan["scanned_at"]
    [finding] = scan["findings"]
    assert finding["filename"] == "invoice.com" and finding["signature"].startswith(SIGNATURE)
    attachments = {a["filename"]: a for a in mail["parsed"]["attachments"]}
    assert finding["index"] == attachments["invoice.com"]["index"]
    # no attachment of it, nor its original, leaves the server: a clear 409 naming it
    for path in [a["download_url"] for a in attachments.values()] + [
        f"/api/v1/messages/{mail['id']}/raw"
    ]:
        code, body = await api_get(stack, token, path)
        assert code == 409, (path, body)
        assert body["error"]["code"] == "failed_precondition"
        assert SIGNATURE in body["error"]["message"] and "invoice.com" in body["error"]["message"]
    # nobody was told about it in the open queue, and nobody answered it
    assert [t for t in await all_tickets(stack, token, "open") if t["subject"] == subject] == []


async def test_a_clean_mail_is_open_and_downloads_and_plain_mail_shows_no_scan(
    stack: Stack,
) -> None:
    token = await login(stack)
    subject = f"Clean files {uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(
        send, stack.smtp_port, mail_with(subject, [("report.pdf", b"%PDF-1.4 harmless")])
    )
    _, mail = await ticket_and_mail(stack, token, subject, "open")
    scan = mail["parsed"]["virus_scan"]
    assert scan["state"] == "clean" and scan["findings"] == []
    [attachment] = mail["parsed"]["attachments"]
    assert await download(stack, token, attachment["download_url"]) == b"%PDF-1.4 harmless"

    plain = f"No attachment {uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(send, stack.smtp_port, mail_with(plain, []))
    _, mail = await ticket_and_mail(stack, token, plain, "open")
    assert mail["parsed"]["virus_scan"] is None  # nothing to scan, nothing shown


async def test_with_clamd_down_mail_is_filed_not_scanned_and_scanned_when_it_is_back(
    stack: Stack, clamd: Clamd
) -> None:
    token = await login(stack)
    infected = f"Sent while the scanner is down {uuid.uuid4().hex[:8]}"
    clean = f"Clean while the scanner is down {uuid.uuid4().hex[:8]}"
    clamd.stop()
    try:
        for subject, data in ((infected, EICAR), (clean, b"plain bytes")):
            refused = await asyncio.to_thread(
                send, stack.smtp_port, mail_with(subject, [("file.bin", data)])
            )
            assert refused == {}  # taken: never lost, never refused for the scanner
        # filed as usual, open, marked "not scanned" with the reason
        ticket, mail = await ticket_and_mail(stack, token, infected, "open")
        scan = mail["parsed"]["virus_scan"]
        assert scan["state"] == "not_scanned" and scan["findings"] == [], scan
        assert scan["error"] and clamd.address in scan["error"]
        _, other = await ticket_and_mail(stack, token, clean, "open")
        assert other["parsed"]["virus_scan"]["state"] == "not_scanned"
        assert await raw_of(stack, token, mail["id"])  # not known to be infected: downloadable
    finally:
        clamd.start()  # the same port: ingestion's rescanner finds it again
    # once clamd answers, the rescan finds the virus and tickets moves the ticket to trash
    moved, mail = await ticket_and_mail(stack, token, infected, "trash")
    assert moved["id"] == ticket["id"]
    assert mail["parsed"]["virus_scan"]["state"] == "infected"
    code, audit = await api_get(stack, token, f"/api/v1/tickets/{ticket['id']}/audit")
    assert code == 200
    [entry] = [e for e in audit["items"] if e["action"] == "virus"]
    assert entry["comment"].startswith(f"virus found: {SIGNATURE}")
    assert entry["changes"] == [{"field": "status", "old": "open", "new": "trash"}]

    async def clean_scanned() -> bool:
        _, m = await ticket_and_mail(stack, token, clean, "open")
        return bool(m["parsed"]["virus_scan"]["state"] == "clean")

    await eventually(clean_scanned, timeout=40, every=0.3)
