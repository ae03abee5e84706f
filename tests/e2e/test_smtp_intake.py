"""SMTP intake takes what a real MTA takes (ING-2, ING-3), on the wire: mail with bare LF
line ends (a script sending an .eml file), lines of any length, a mail without a line
break — each accepted, filed, and its raw bytes back byte-identical. Only CRLF.CRLF ends
the data (SMTP smuggling), and only the size limit refuses (552)."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from typing import Any

import aiohttp
import pytest

from services.devstack.stack import Stack
from tests import shared
from tests.conftest import SMTP_MAX_BYTES
from tests.helpers import Tenant, all_tickets, api_get, create_tenant, eventually, login

pytestmark = pytest.mark.e2e


def smtp_data(port: int, data: bytes, to: str = "support@demo.example") -> tuple[int, bytes]:
    """One transaction through smtplib whose DATA is `data` exactly as given (it must end
    with the terminator): no line-end conversion, no dot-stuffing, no SIZE= hint."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        smtp.ehlo("client.example")
        assert smtp.mail("customer@example.com")[0] == 250
        assert smtp.rcpt(to)[0] == 250
        code, _ = smtp.docmd("DATA")
        assert code == 354
        smtp.send(data)
        reply = smtp.getreply()
        assert smtp.noop()[0] == 250  # the session goes on after the answer
        return reply


def queued_id(reply: tuple[int, bytes]) -> str:
    code, text = reply
    assert code == 250, reply
    return text.decode().rsplit(" ", 1)[-1]


async def raw_of(stack: Stack, token: str, message_id: str) -> bytes:
    """GET /api/v1/messages/{id}/raw, once the mail is filed (access is by its ticket)."""

    async def fetch() -> bytes | None:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{stack.gateway_url}/api/v1/messages/{message_id}/raw",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                return await resp.read() if resp.status == 200 else None

    return bytes(await eventually(fetch, timeout=30))


async def ticket_of(stack: Stack, token: str, subject: str) -> dict[str, Any]:
    async def found() -> list[dict[str, Any]]:
        return [t for t in await all_tickets(stack, token) if t["subject"] == subject]

    [ticket] = await eventually(found, timeout=30)
    return ticket


async def test_a_bare_lf_mail_is_taken_and_a_bare_dot_line_does_not_end_it(stack: Stack) -> None:
    token = await login(stack)
    subject = f"Bare LF {uuid.uuid4().hex[:8]}"
    head = f"From: Script <script@example.com>\nTo: support@demo.example\nSubject: {subject}\n"
    data = (
        head.encode() + b"\nfirst line\n.\nsecond part, still the same mail\n"
        b"MAIL FROM:<smuggled@example.com>\r\n.\nthird\n.\r\nlast line\r\n.\r\n"
    )
    message_id = queued_id(await asyncio.to_thread(smtp_data, stack.smtp_port, data))
    ticket = await ticket_of(stack, token, subject)
    assert ticket["status"] == "open" and ticket["from"]["address"] == "script@example.com"
    # kept as it came: bare LFs stay, each lone dot (unstuffed) leaves an empty line
    assert await raw_of(stack, token, message_id) == (
        head.encode() + b"\nfirst line\n\nsecond part, still the same mail\n"
        b"MAIL FROM:<smuggled@example.com>\r\n\nthird\n\r\nlast line\r\n"
    )
    code, mail = await api_get(stack, token, f"/api/v1/messages/{message_id}")
    assert code == 200
    text = mail["parsed"]["text"]
    assert "second part, still the same mail" in text and "last line" in text
    # nothing was smuggled in as a mail of its own
    assert [t for t in await all_tickets(stack, token) if "smuggled" in str(t["from"])] == []


async def test_smtplib_sending_an_eml_file_with_lf_line_ends_is_taken_byte_identical(
    stack: Stack,
) -> None:
    """What `smtplib.SMTP.sendmail(from, to, open(eml, "rb").read())` sends: bare LFs, and
    every line starting with a dot stuffed (after LF too)."""
    token = await login(stack)
    subject = f"Script eml {uuid.uuid4().hex[:8]}"
    eml = (
        f"From: a@example.com\nTo: support@demo.example\nSubject: {subject}\n\n"
        ".starts with a dot\n.\n..two dots\nend\r\n"
    ).encode()

    def send() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=30) as smtp:
            smtp.ehlo()
            smtp.mail("a@example.com")
            smtp.rcpt("support@demo.example")
            return smtp.data(eml)

    message_id = queued_id(await asyncio.to_thread(send))
    assert await raw_of(stack, token, message_id) == eml
    await ticket_of(stack, token, subject)


async def test_long_lines_and_a_mail_without_line_breaks_come_back_byte_identical(
    stack: Stack,
) -> None:
    token = await login(stack)
    subject = f"Long line {uuid.uuid4().hex[:8]}"
    long_line = b"".join(b"%04d" % i for i in range(750))  # 3,000 bytes, no break
    mail = (
        (
            f"From: bounces@ses.example\r\nTo: support@demo.example\r\nSubject: {subject}\r\n"
            f"X-Long: {long_line.decode()}\r\n\r\n"
        ).encode()
        + long_line
        + b"\r\n"
    )
    message_id = queued_id(await asyncio.to_thread(smtp_data, stack.smtp_port, mail + b".\r\n"))
    assert await raw_of(stack, token, message_id) == mail
    await ticket_of(stack, token, subject)

    # one line, no header block, 100 KB: still a mail (with a parse problem), kept whole
    one_line = b"no line break at all " + b"x" * 100_000
    message_id = queued_id(
        await asyncio.to_thread(smtp_data, stack.smtp_port, one_line + b"\r\n.\r\n")
    )
    assert await raw_of(stack, token, message_id) == one_line + b"\r\n"


async def test_too_large_mail_gets_552_also_without_a_line_break_and_the_session_goes_on(
    stack: Stack,
) -> None:
    token = await login(stack)
    subject = f"Too large {uuid.uuid4().hex[:8]}"
    for data in (
        b"x" * (SMTP_MAX_BYTES + 10) + b"\r\n.\r\n",
        f"Subject: {subject}\n\n".encode() + b"y\n" * (SMTP_MAX_BYTES // 2) + b"\r\n.\r\n",
    ):
        code, text = await asyncio.to_thread(smtp_data, stack.smtp_port, data)
        assert code == 552, text
    await asyncio.sleep(0.5)
    assert [t for t in await all_tickets(stack, token) if t["subject"] == subject] == []


@pytest.fixture
async def tenant(stack: Stack) -> Tenant:
    return await create_tenant(stack)


async def test_every_corpus_mail_is_taken_by_smtp_and_comes_back_byte_identical(
    stack: Stack, tenant: Tenant
) -> None:
    """Other projects' test mail (most with bare LF line ends) sent as a script would send
    it: every one under the size limit is accepted, every one over it gets 552."""
    corpora = shared.required()  # skipped without ../shared, required in CI
    files = sorted(
        p for p in corpora.rglob("*") if p.is_file() and p.suffix.lower() in {".eml", ".raw"}
    )
    assert len(files) > 250

    def send_all() -> tuple[dict[str, bytes], list[str]]:
        first: dict[str, bytes] = {}  # message id → the bytes it was first stored from
        refused = []
        with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=60) as smtp:
            smtp.ehlo()
            for path in files:
                raw = path.read_bytes()
                smtp.mail("sender@example.com")
                smtp.rcpt(tenant.address)
                reply = smtp.data(raw)
                if reply[0] == 552:
                    assert len(raw) > SMTP_MAX_BYTES, path
                    refused.append(path.name)
                    continue
                # smtplib ends the data with CRLF when the mail does not
                sent = raw if raw.endswith(b"\r\n") else raw + b"\r\n"
                first.setdefault(queued_id(reply), sent)
        return first, refused

    first, refused = await asyncio.to_thread(send_all)
    assert len(refused) == sum(p.stat().st_size > SMTP_MAX_BYTES for p in files)
    token = await login(stack, tenant.login, tenant.password)
    for message_id, sent in first.items():
        assert await raw_of(stack, token, message_id) == sent, message_id
