"""One IMAP connection of a mailbox (aioimaplib), for the fetcher (imap.py) and the
administrators' "test": connect (to an address the ConnectPolicy allows, pinned), TLS or
STARTTLS, LOGIN or XOAUTH2, SELECT; search and fetch by UID; the after-fetch action (seen,
move, delete); UIDVALIDITY; IDLE or a poll. Every command under a timeout; a lost
connection ends the session."""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aioimaplib

from services.runtime.hosts import ConnectPolicy, HostRefused

from .mailboxes import Mailbox

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCH_UID = re.compile(rb"UID (\d+)")
# IDLE is re-issued at least this often (RFC 2177 asks for < 29 minutes); each time the
# folder's UIDVALIDITY is checked too, which also keeps the connection alive.
IDLE_REFRESH_S = 5 * 60


XOAUTH2_TIMEOUT_S = 8.0


class ImapError(Exception):
    """The server refused something or the connection broke: back off and reconnect.
    `step` says where (a connection test's verdict): address, dns, connect, tls,
    greeting, auth, folder — or "" later on."""

    def __init__(self, message: str, step: str = "") -> None:
        super().__init__(message)
        self.step = step


class _PinnedIMAP4(aioimaplib.IMAP4):  # type: ignore[misc]  # aioimaplib is untyped
    """aioimaplib's client on a TCP connection made already to a checked address
    (`ConnectPolicy.connect`): no second lookup of the name; TLS, when asked, is made on it
    and verifies the host's name. (aioimaplib connects in `create_client`; this one hands
    it the socket instead of a host and port.)"""

    def __init__(
        self, sock: socket.socket, host: str, *, timeout: float, ssl_context: ssl.SSLContext | None
    ) -> None:
        self._sock = sock
        super().__init__(host=host, port=0, timeout=timeout, ssl_context=ssl_context)

    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        running = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = aioimaplib.IMAP4ClientProtocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(
                lambda: self.protocol,
                sock=self._sock,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            )
        )


@dataclass(frozen=True)
class FetcherConfig:
    # where mailboxes' hosts may lead (issue 16): global addresses, and what is allow-listed
    connect: ConnectPolicy = field(default_factory=ConnectPolicy)
    command_timeout_s: float = 30.0
    fetch_timeout_s: float = 120.0
    accept_timeout_s: float = 30.0  # storing and announcing one fetched mail
    idle_wait_s: float = IDLE_REFRESH_S
    backoff_max_s: float = 60.0


def _ok(resp: aioimaplib.Response, what: str, step: str = "") -> aioimaplib.Response:
    if resp.result != "OK":
        detail = b" ".join(bytes(x) for x in resp.lines[-1:]).decode(errors="replace")[:200]
        raise ImapError(f"{what} refused: {resp.result} {detail}", step)
    return resp


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: list[int]) -> str:
    return ",".join(str(u) for u in uids)


class ImapSession:
    """One authenticated connection with a selected folder."""

    def __init__(self, mb: Mailbox, secret: str, cfg: FetcherConfig, tls: ssl.SSLContext | None):
        self.mb = mb
        self._secret = secret
        self._cfg = cfg
        self._tls = tls
        self.client: aioimaplib.IMAP4 | None = None
        self.uidvalidity = 0
        # aioimaplib leaves a command waiting when the connection drops under it (only a
        # timeout ends it): its connection_lost callback sets this, and long waits race it.
        self._lost = asyncio.Event()

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()

    async def _unless_lost(self, aw: Awaitable[Any], timeout_s: float) -> Any:
        """`aw`'s result; ImapError as soon as the connection is lost, TimeoutError after
        `timeout_s`."""
        task = asyncio.ensure_future(aw)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
        if task in done:
            return task.result()
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if self._lost.is_set():
            raise ImapError("the connection was lost")
        raise TimeoutError

    async def _cmd(self, aw: Awaitable[Any]) -> Any:
        """A command's response: every command races the connection's loss (aioimaplib
        leaves it waiting forever otherwise — UID STORE/MOVE/COPY have no timeout of their
        own) and is bounded by the command timeout."""
        return await self._unless_lost(aw, self._cfg.command_timeout_s)

    async def open(self) -> None:
        mb, cfg = self.mb, self._cfg
        ctx = self._tls or ssl.create_default_context()
        try:
            sock = await cfg.connect.connect(mb.host, mb.port, cfg.command_timeout_s)
        except HostRefused as exc:
            raise ImapError(exc.message, exc.step) from None
        self.client = _PinnedIMAP4(
            sock,
            mb.host.strip("[]"),
            timeout=cfg.command_timeout_s,
            ssl_context=ctx if mb.security == "tls" else None,
        )
        self.client.protocol.conn_lost_cb = self._on_lost
        try:
            await asyncio.wait_for(self.client.wait_hello_from_server(), cfg.command_timeout_s)
        except ssl.SSLError as exc:
            raise ImapError(f"TLS with {mb.host}:{mb.port} failed: {exc!r}", "tls") from exc
        except (OSError, TimeoutError) as exc:
            raise ImapError(
                f"no IMAP greeting from {mb.host}:{mb.port}: {exc!r}", "greeting"
            ) from exc
        if mb.security == "starttls":
            try:
                await self._starttls(ctx)
            except (ImapError, ssl.SSLError, OSError) as exc:
                raise ImapError(f"STARTTLS failed: {exc}", "tls") from exc
        if mb.auth == "xoauth2":
            # aioimaplib annotates the token as bytes but formats it as text: give it text.
            # On a bad token the server sends an error continuation that aioimaplib does not
            # answer, so the exchange would hang: bound it and call it what it is.
            try:
                resp = await asyncio.wait_for(
                    self.client.xoauth2(mb.username, self._secret),  # type: ignore[arg-type,unused-ignore]
                    XOAUTH2_TIMEOUT_S,
                )
            except TimeoutError:
                raise ImapError(
                    "login refused: the XOAUTH2 token was not accepted "
                    "(invalid or expired; give the mailbox a fresh token)",
                    "auth",
                ) from None
        else:
            resp = await self._cmd(self.client.login(mb.username, self._secret))
        _ok(resp, "login", "auth")
        resp = _ok(
            await self._cmd(self.client.select(_quote(mb.folder))), f"select {mb.folder}", "folder"
        )
        for line in resp.lines:
            m = _UIDVALIDITY.search(bytes(line))
            if m:
                self.uidvalidity = int(m.group(1))
        if not self.uidvalidity:
            raise ImapError("the server reported no UIDVALIDITY", "folder")

    async def _starttls(self, ctx: ssl.SSLContext) -> None:
        """aioimaplib has no STARTTLS: send the command, then upgrade the transport."""
        assert self.client is not None
        proto = self.client.protocol
        if not self.client.has_capability("STARTTLS"):
            raise ImapError("the server does not offer STARTTLS")
        _ok(
            await self._cmd(
                proto.execute(aioimaplib.Command("STARTTLS", proto.new_tag(), loop=proto.loop))
            ),
            "STARTTLS",
        )
        loop = asyncio.get_running_loop()
        proto.transport = await loop.start_tls(
            proto.transport, proto, ctx, server_hostname=self.mb.host
        )
        await self._cmd(proto.capability())  # capabilities may change after TLS (RFC 3501 §6.2.1)

    @property
    def can_idle(self) -> bool:
        return self.client is not None and self.client.has_capability("IDLE")

    async def uids_after(self, last_uid: int) -> list[int]:
        assert self.client is not None
        resp = _ok(
            await self._cmd(self.client.uid_search(f"UID {last_uid + 1}:*", charset=None)),
            "search",
        )
        uids: list[int] = []
        for line in resp.lines[:-1]:
            uids.extend(int(x) for x in bytes(line).split() if x.isdigit())
        return sorted(u for u in uids if u > last_uid)  # "n:*" always names the last mail

    async def uids_up_to(self, last_uid: int, unseen_only: bool) -> list[int]:
        assert self.client is not None
        if last_uid < 1:
            return []
        criteria = [f"UID 1:{last_uid}"] + (["UNSEEN"] if unseen_only else [])
        resp = _ok(await self._cmd(self.client.uid_search(*criteria, charset=None)), "search")
        uids: list[int] = []
        for line in resp.lines[:-1]:
            uids.extend(int(x) for x in bytes(line).split() if x.isdigit())
        return sorted(u for u in uids if u <= last_uid)

    async def fetch(self, uid: int) -> bytes | None:
        """The mail's bytes exactly as the server holds them; None if it vanished."""
        assert self.client is not None
        resp = await self._unless_lost(
            self.client.uid("fetch", str(uid), "(UID BODY.PEEK[])"), self._cfg.fetch_timeout_s
        )
        _ok(resp, f"fetch {uid}")
        lines = resp.lines
        for i, line in enumerate(lines[:-1]):
            if isinstance(line, bytes | bytearray) and b"FETCH" in line and b"BODY[]" in line:
                m = _FETCH_UID.search(bytes(line))
                if m and int(m.group(1)) == uid and i + 1 < len(lines):
                    return bytes(lines[i + 1])
        return None

    async def after_fetch(self, uids: list[int]) -> None:
        assert self.client is not None
        if not uids:
            return
        uid_set = _uid_set(uids)
        mb = self.mb
        if mb.after_fetch == "seen":
            _ok(
                await self._cmd(self.client.uid("store", uid_set, "+FLAGS.SILENT (\\Seen)")),
                "store \\Seen",
            )
        elif mb.after_fetch == "move":
            if self.client.has_capability("MOVE"):
                _ok(await self._cmd(self.client.uid("move", uid_set, _quote(mb.move_to))), "move")
            else:
                _ok(await self._cmd(self.client.uid("copy", uid_set, _quote(mb.move_to))), "copy")
                await self._expunge(uid_set)
        else:
            await self._expunge(uid_set)

    async def _expunge(self, uid_set: str) -> None:
        assert self.client is not None
        _ok(
            await self._cmd(self.client.uid("store", uid_set, "+FLAGS.SILENT (\\Deleted)")),
            "store \\Deleted",
        )
        if self.client.has_capability("UIDPLUS"):
            _ok(await self._cmd(self.client.uid("expunge", uid_set)), "uid expunge")
        else:
            _ok(await self._cmd(self.client.expunge()), "expunge")

    async def check_uidvalidity(self) -> None:
        """Raise if the folder's UIDVALIDITY changed under us (it was recreated, or the
        server migrated): the fetcher then reconnects and rescans. SELECT again rather
        than STATUS: servers answer STATUS on the selected mailbox from their own state
        (Dovecot even after that mailbox was renamed away)."""
        assert self.client is not None
        resp = _ok(
            await self._cmd(self.client.select(_quote(self.mb.folder))), f"select {self.mb.folder}"
        )
        for line in resp.lines:
            m = _UIDVALIDITY.search(bytes(line))
            if m and int(m.group(1)) != self.uidvalidity:
                raise ImapError(
                    f"UIDVALIDITY of {self.mb.folder} changed "
                    f"({self.uidvalidity} → {m.group(1).decode()})"
                )

    async def wait_for_news(self, poll_s: float, stop: asyncio.Event) -> None:
        """Return when the server announces something (IDLE) or after the poll interval
        or the IDLE refresh period, having checked that the folder is still the same."""
        assert self.client is not None
        if not self.can_idle:
            try:
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
            except TimeoutError:
                pass
            if not stop.is_set():
                await self.check_uidvalidity()
            return
        idle = await self._cmd(self.client.idle_start(timeout=self._cfg.idle_wait_s))
        stopper = asyncio.ensure_future(stop.wait())
        lost = asyncio.ensure_future(self._lost.wait())
        pusher = asyncio.ensure_future(self.client.wait_server_push(self._cfg.idle_wait_s + 5))
        try:
            await asyncio.wait({stopper, pusher, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            lost.cancel()
            if not pusher.done():
                pusher.cancel()
        if self._lost.is_set():
            idle.cancel()
            idle.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise ImapError("the connection was lost while idle")
        self.client.idle_done()
        try:
            await asyncio.wait_for(idle, self._cfg.command_timeout_s)
        except TimeoutError as exc:
            raise ImapError("the server did not end IDLE") from exc
        if not stop.is_set():
            await self.check_uidvalidity()

    async def close(self) -> None:
        if self.client is None:
            return
        try:
            await asyncio.wait_for(self.client.logout(), 5)
        except (Exception, asyncio.CancelledError):
            pass
        self.client = None
