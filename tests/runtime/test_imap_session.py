"""An IMAP session against a real Dovecot whose connection dies under a command: the
command fails at once instead of waiting out its timeout (aioimaplib alone leaves it
waiting), so the fetcher reconnects in a second rather than minutes."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from services.ingestion.imap_session import FetcherConfig, ImapError, ImapSession
from services.ingestion.mailboxes import Mailbox
from services.runtime.hosts import ConnectPolicy
from tests.conftest import CONNECT_ALLOW
from tests.dovecot import Dovecot
from tests.helpers import make_mail


def _mailbox(server: Dovecot, user: str) -> Mailbox:
    return Mailbox(
        id=str(uuid.uuid4()),
        tenant_id=str(uuid.uuid4()),
        inbox_id=str(uuid.uuid4()),
        inbox_name="Help",
        host="127.0.0.1",
        port=server.port,
        security="none",
        username=user,
        auth="password",
        secret=b"",
        folder="INBOX",
        after_fetch="seen",
        move_to="",
        poll_interval_s=60,
        enabled=True,
    )


async def _session(server: Dovecot, user: str, password: str) -> ImapSession:
    allow = ConnectPolicy.parse(CONNECT_ALLOW)  # the test server is on 127.0.0.1
    session = ImapSession(
        _mailbox(server, user), password, FetcherConfig(allow, fetch_timeout_s=120), tls=None
    )
    await session.open()
    return session


async def test_a_fetch_whose_connection_is_cut_fails_at_once(dovecot: Dovecot) -> None:
    user, password = f"cut{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(user, password)
    big = make_mail("big", body="x" * 76 + "\n")
    big.set_content(("y" * 76 + "\n") * 400_000)  # ~30 MB: the literal takes a while
    dovecot.append(big.as_bytes(), user=user)
    session = await _session(dovecot, user, password)
    try:
        fetch = asyncio.ensure_future(session.fetch(1))
        await asyncio.sleep(0.05)
        assert not fetch.done(), "the fetch ended before the cut; use a bigger mail"
        started = time.monotonic()
        dovecot.cut_connections()
        with pytest.raises(ImapError, match="connection was lost"):
            await asyncio.wait_for(fetch, 10)
        assert time.monotonic() - started < 5
    finally:
        await session.close()


async def test_idle_ends_when_the_connection_is_cut(dovecot: Dovecot) -> None:
    user, password = f"idle{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(user, password)
    session = await _session(dovecot, user, password)
    try:
        waiting = asyncio.ensure_future(session.wait_for_news(60, asyncio.Event()))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        dovecot.cut_connections()
        with pytest.raises(ImapError, match="lost while idle"):
            await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - started < 5
    finally:
        await session.close()


async def test_every_command_after_a_cut_fails_instead_of_waiting(dovecot: Dovecot) -> None:
    """A cut between commands (the fetcher is storing \\Seen, searching, selecting):
    aioimaplib would send the command into the dead connection and wait for an answer
    forever (UID STORE has no timeout of its own), stalling the mailbox."""
    user, password = f"gap{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(user, password)
    dovecot.append(make_mail("one").as_bytes(), user=user)
    session = await _session(dovecot, user, password)
    try:
        dovecot.cut_connections()
        await asyncio.wait_for(session._lost.wait(), 10)
        for command in (
            lambda: session.after_fetch([1]),
            lambda: session.uids_after(0),
            lambda: session.check_uidvalidity(),
        ):
            with pytest.raises(ImapError, match="connection was lost"):
                await asyncio.wait_for(command(), 10)
    finally:
        await session.close()
