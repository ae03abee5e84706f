"""A real SMTP server for the tests (aiosmtpd, in a thread of the test process) that
outbound delivers to, and that misbehaves on request. What it does is chosen by the
recipient's local part:

  tempfail-rcpt@   451 at RCPT TO                 reject-rcpt@   550 at RCPT TO
  busy@            421 at RCPT TO, then closes    drop-rcpt@     closes the connection at RCPT
  hang@            takes the message, never answers the final dot
  drop-data@       takes the message, closes the connection without a reply
  flaky<N>@        451 after the message for the first N tries of a Message-ID, then 250
  slow@            waits 50 ms before accepting

Anything else is accepted. Every accepted message is kept (`received`) with its envelope.
"""

from __future__ import annotations

import asyncio
import re
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from services.devstack.infra import free_port

_FLAKY = re.compile(r"^flaky(\d+)@")


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> Any:
        return message_from_bytes(self.data, policy=default)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "").strip().strip("<>")


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    sessions: int = 0
    delay_s: float = 0.0  # before accepting every message

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: Any
    ) -> Any:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        local = address.lower()
        if local.startswith("tempfail-rcpt@"):
            return "451 4.3.0 try again later"
        if local.startswith("reject-rcpt@"):
            return "550 5.1.1 no such user"
        if local.startswith("busy@"):
            asyncio.get_running_loop().call_later(0.01, server.transport.close)  # type: ignore[union-attr]
            return "421 4.7.0 too busy, closing"
        if local.startswith("drop-rcpt@"):
            server.transport.close()  # type: ignore[union-attr]
            return "250 OK"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        data = bytes(envelope.original_content or b"")
        if any(r.startswith("hang@") for r in rcpts):
            await asyncio.sleep(3600)
        if any(r.startswith("drop-data@") for r in rcpts):
            server.transport.close()  # type: ignore[union-attr]
            return "250 never seen"
        for r in rcpts:
            m = _FLAKY.match(r)
            if m:
                mid = Received("", [], data).message_id
                with self.lock:
                    self.tries[mid] += 1
                    n = self.tries[mid]
                if n <= int(m.group(1)):
                    return "451 4.4.1 come back later"
        if any(r.startswith("slow@") for r in rcpts):
            await asyncio.sleep(0.05)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            self.received.append(Received(envelope.mail_from or "", list(envelope.rcpt_tos), data))
        return "250 2.0.0 queued"


class SmtpPeer:
    """`login`: the server requires AUTH with these credentials (over plain text: the
    tests' peer is on the loopback)."""

    def __init__(self, login: tuple[str, str] | None = None, delay_s: float = 0.0) -> None:
        self.port = free_port()
        self.handler = _Handler(delay_s=delay_s)
        self.logins: list[str] = []
        extra: dict[str, Any] = {}
        if login is not None:

            def authenticate(
                server: Any, session: Any, envelope: Any, mechanism: str, data: Any
            ) -> AuthResult:
                ok = (
                    isinstance(data, LoginPassword)
                    and (
                        data.login.decode(),
                        data.password.decode(),
                    )
                    == login
                )
                if ok:
                    self.logins.append(data.login.decode())
                return AuthResult(success=ok, handled=False)

            extra = {
                "authenticator": authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        with warnings.catch_warnings():  # AUTH without TLS: the loopback, on purpose
            warnings.simplefilter("ignore")
            self._controller = Controller(
                self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=10, **extra
            )

    def start(self) -> SmtpPeer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address.lower() in (t.lower() for t in r.rcpt_tos)]

    def by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.received)
