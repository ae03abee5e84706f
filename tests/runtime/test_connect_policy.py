"""Where an administrator's host may lead (issue 16), with real sockets on this machine:
without the deployment's allow-list a loopback address is refused before any connection
is made — the listener there sees nobody — by the shared policy, the IMAP session and the
SMTP connection test alike; allow-listed, the connection is made to the address checked;
and a test that reaches something which is not a mail server answers a verdict, never
what that server said."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from services.devstack.infra import free_port
from services.ingestion.imap_session import FetcherConfig, ImapError, ImapSession
from services.ingestion.mailboxes import Mailbox
from services.outbound.smtp import Hop, SmtpClient
from services.runtime.hosts import ConnectPolicy, HostRefused

BANNER = b'INFO {"server_id":"secret-internal","version":"9.9.9"}\r\n'


class Listener:
    """A TCP server on 127.0.0.1 that greets like a service that is not mail (NATS's
    INFO line), and counts who connected."""

    def __init__(self) -> None:
        self.port = free_port()
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.write(BANNER)
        await writer.drain()
        try:
            await asyncio.wait_for(reader.read(1000), 5)
        except TimeoutError:
            pass
        writer.close()

    async def __aenter__(self) -> Listener:
        self._server = await asyncio.start_server(self._on, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    async with Listener() as server:
        yield server


def _mailbox(host: str, port: int) -> Mailbox:
    return Mailbox(
        id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        inbox_id=str(uuid.uuid4()),
        inbox_name="Help",
        host=host,
        port=port,
        security="none",
        username="u",
        auth="password",
        secret=b"",
        folder="INBOX",
        after_fetch="seen",
        move_to="",
        poll_interval_s=60,
        enabled=True,
    )


async def test_loopback_is_refused_without_the_allow_list_and_nothing_connects(
    listener: Listener,
) -> None:
    strict = ConnectPolicy()
    for host in ("127.0.0.1", "[127.0.0.1]", "localhost"):
        with pytest.raises(HostRefused) as err:
            await strict.connect(host, listener.port, 5)
        assert err.value.step == "address" and "loopback" in err.value.message

    session = ImapSession(_mailbox("127.0.0.1", listener.port), "pw", FetcherConfig(), tls=None)
    with pytest.raises(ImapError) as imap_err:
        await session.open()
    assert imap_err.value.step == "address"

    smtp = SmtpClient(helo_name="test.example", timeout_s=5, data_timeout_s=5)
    ok, step, detail, _ = await smtp.probe(Hop("r", "127.0.0.1", listener.port, "none"))
    assert (ok, step) == (False, "address") and "loopback" in detail
    assert listener.accepted == 0


async def test_an_allow_listed_address_connects_and_a_stranger_service_gets_a_verdict(
    listener: Listener,
) -> None:
    allowed = ConnectPolicy.parse("127.0.0.1")
    sock = await allowed.connect("127.0.0.1", listener.port, 5)
    assert sock.getpeername() == ("127.0.0.1", listener.port)
    sock.close()
    with pytest.raises(HostRefused):  # another loopback address is not on the list
        await allowed.connect("127.0.0.2", listener.port, 5)

    smtp = SmtpClient(helo_name="test.example", timeout_s=3, data_timeout_s=3, policy=allowed)
    ok, step, detail, _ = await smtp.probe(Hop("r", "127.0.0.1", listener.port, "none"))
    assert not ok and step in ("greeting", "timeout"), (step, detail)
    assert "INFO" not in detail and "secret-internal" not in detail and "9.9.9" not in detail

    cfg = FetcherConfig(allowed, command_timeout_s=3)
    session = ImapSession(_mailbox("127.0.0.1", listener.port), "pw", cfg, tls=None)
    with pytest.raises(ImapError) as err:
        await session.open()
    assert err.value.step == "greeting"
    await session.close()
    assert listener.accepted >= 3
