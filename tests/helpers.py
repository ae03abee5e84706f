"""What the end-to-end tests do as a user would: send mail, log in, read the API."""

from __future__ import annotations

import asyncio
import smtplib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiohttp
import nats
from switchboard.v1.events_pb2 import EventEnvelope

from services.devstack.stack import Stack
from tests.conftest import DEMO_PASSWORD


def make_mail(
    subject: str,
    *,
    sender: str = "Customer <customer@example.com>",
    to: str = "support@demo.example",
    body: str = "Hello, I have a question.\n",
    charset: str = "utf-8",
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate()
    msg["Message-ID"] = make_msgid(domain="example.com")
    msg.set_content(body, charset=charset)
    return msg


def send(
    port: int,
    msg: EmailMessage | bytes,
    to: list[str] | None = None,
    sender: str = "customer@example.com",
) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        if isinstance(msg, bytes):
            return smtp.sendmail(sender, to or ["support@demo.example"], msg)
        return smtp.send_message(msg, to_addrs=to)


async def login(
    stack: Stack, who: str = "agent1@demo.example", password: str = DEMO_PASSWORD
) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{stack.gateway_url}/api/v1/sessions", json={"login": who, "password": password}
        ) as resp:
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["token"])


async def api_get(stack: Stack, token: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{stack.gateway_url}{path}", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status, await resp.json()


class Unavailable(Exception):
    """The gateway answered 503: a service is down (e.g. being restarted by a test)."""


async def api_call(
    stack: Stack, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """Any API call with a JSON body; the status and the JSON answer (None for a 204)."""
    async with aiohttp.ClientSession() as http:
        async with http.request(
            method,
            f"{stack.gateway_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            return resp.status, (await resp.json() if resp.status != 204 else None)


async def all_tickets(stack: Stack, token: str, status: str = "") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        q = f"/api/v1/tickets?limit=200&status={status}&cursor={cursor}"
        code, body = await api_get(stack, token, q)
        if code == 503:
            raise Unavailable(body)
        assert code == 200, body
        items.extend(body["items"])
        if not body["next"]:
            return items
        cursor = body["next"]


async def eventually(
    probe: Callable[[], Any], *, timeout: float = 15.0, every: float = 0.05
) -> Any:
    """Await `probe()` until it returns something truthy; fail after `timeout`."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not reached within {timeout}s (last: {last!r})")


@asynccontextmanager
async def published(stack: Stack, subject: str) -> AsyncIterator[list[EventEnvelope]]:
    """Every event published on `subject` (a wildcard like `sb.approval.>`) meanwhile,
    as core NATS sees them go by."""
    got: list[EventEnvelope] = []
    nc = await nats.connect(stack.nats_url)

    async def on_msg(msg: Any) -> None:
        got.append(EventEnvelope.FromString(msg.data))

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()  # the server has the subscription before the caller acts
    try:
        yield got
    finally:
        await nc.close()


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    inbox_id: str
    address: str
    login: str
    password: str


async def create_tenant(stack: Stack, roles: tuple[str, ...] = ("admin",)) -> Tenant:
    """A tenant with one inbox ("Help") and one operator of these roles who is a member of
    it, made as platform tooling makes one (`python -m services.accounts create-tenant`)."""
    import asyncpg

    from services.accounts.seed import create_tenant_with_admin
    from services.runtime.db import with_database
    from services.runtime.ids import IdGenerator

    tag = uuid.uuid4().hex[:8]
    address, login, password = f"help@{tag}.example", f"boss@{tag}.example", "other-secret"
    conn = await asyncpg.connect(with_database(stack.database_url, "sb_accounts"))
    try:
        created = await create_tenant_with_admin(
            conn,
            slug=tag,
            name=tag,
            time_zone="UTC",
            inbox_name="Help",
            inbox_addresses=[address],
            admin_login=login,
            admin_name="Boss",
            password=password,
            must_change=False,
            ids=IdGenerator(),
            roles=list(roles),
        )
    finally:
        await conn.close()
    return Tenant(str(created.tenant_id), str(created.inbox_id), address, login, password)
