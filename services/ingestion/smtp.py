"""The SMTP listener (aiosmtpd on the service's own event loop).

RCPT: an address that no inbox has → 550; a lookup that fails → 451. DATA: over the size
limit → 552 (aiosmtpd, also for a too large SIZE= in MAIL FROM). A mail to addresses of
one tenant is stored once (RTE-6); to several tenants, once per tenant. 250 is answered
only after every copy is stored and its message.received event acknowledged by
JetStream; any trouble before that → 451, and the sender retries (the retry is deduped).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.runtime import log
from services.runtime import metrics as m
from services.runtime.clock import Clock
from services.runtime.errors import Unavailable

from .directory import AddressDirectory, Route
from .intake import IntakePipeline
from .store import Intake

MAX_RECIPIENTS = 100


class SmtpHandler:
    def __init__(
        self,
        directory: AddressDirectory,
        pipeline: IntakePipeline,
        clock: Clock,
        metrics: m.Metrics | None = None,
    ) -> None:
        self._directory = directory
        self._pipeline = pipeline
        self._clock = clock
        self._log = log.get("smtp")
        metrics = metrics or m.Metrics("ingestion")
        self._accepted = metrics.counter(m.SMTP_ACCEPTED)
        self._refused = m.Children(metrics.counter(m.SMTP_REFUSED))
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def _refuse(self, reason: str, reply: str) -> str:
        """A refusal, counted by its reason (docs/metrics.md)."""
        self._refused(reason).inc()
        return reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return self._refuse("too_many_recipients", "452 4.5.3 Too many recipients")
        try:
            route = await self._directory.resolve(address)
        except Unavailable as exc:
            self._log.warning("recipient lookup failed", error=str(exc))
            return self._refuse(
                "lookup_failed", "451 4.3.0 Temporary lookup failure, try again later"
            )
        if route is None:
            return self._refuse("no_such_mailbox", "550 5.1.1 No such mailbox here")
        routes: dict[str, Route] = getattr(envelope, "sb_routes", {})
        routes[address] = route
        envelope.sb_routes = routes  # type: ignore[attr-defined]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        routes: dict[str, Route] = getattr(envelope, "sb_routes", {})
        if not routes:
            return self._refuse("no_valid_recipients", "554 5.5.1 No valid recipients")
        self._in_flight += 1
        self._idle.clear()
        try:
            by_tenant: OrderedDict[str, list[Route]] = OrderedDict()
            for route in routes.values():
                by_tenant.setdefault(route.tenant_id, []).append(route)
            intakes = [
                Intake(
                    tenant_id=tenant,
                    inbox=rs[0].inbox,  # the first addressed inbox of the tenant gets it
                    channel="smtp",
                    raw=raw,
                    envelope_from=envelope.mail_from or "",
                    envelope_recipients=[r.address for r in rs],
                )
                for tenant, rs in by_tenant.items()
            ]
            accepted = await self._pipeline.accept(intakes)
        except Exception as exc:
            self._log.warning(
                "mail not accepted; sender will retry", error=repr(exc), peer=_peer(session)
            )
            return self._refuse("not_stored", "451 4.3.0 Temporary failure, please try again later")
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()
        self._accepted.inc()
        ids = ",".join(a.message_id for a in accepted)
        self._log.info("mail accepted", message_ids=ids, size=len(raw), peer=_peer(session))
        return f"250 2.0.0 OK queued as {ids}"

    async def wait_idle(self) -> None:
        await self._idle.wait()


def _peer(session: Session) -> Any:
    return session.peer[0] if isinstance(session.peer, tuple) else session.peer


class SmtpListener:
    def __init__(
        self, handler: SmtpHandler, host: str, port: int, max_bytes: int, hostname: str
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._max = max_bytes
        self._hostname = hostname
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(
                self._handler,
                data_size_limit=self._max,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname=self._hostname,
                ident="Switchboard ESMTP",
                timeout=300,
            ),
            host=self._host,
            port=self._port,
        )
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        """Accept no new connection; let the mails being stored finish."""
        if self._server is not None:
            self._server.close()
            await self._handler.wait_idle()
