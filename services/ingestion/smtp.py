"""The SMTP listener (aiosmtpd on the service's own event loop).

A refusal is only for something the sender must change or retry, never for the shape of
a line; every refusal this listener decides is in `Refusal`. RCPT: an address that no
inbox has → 550; a lookup that fails → 451. DATA: over the size limit → 552 (also for a
too large SIZE= in MAIL FROM, which aiosmtpd answers). A mail to addresses of one tenant is
stored once (RTE-6); to several tenants, once per tenant. 250 is answered only after every
copy is stored and its message.received event acknowledged by JetStream; any trouble
before that → 451, and the sender retries (the retry is deduped).

DATA is read by `IntakeSMTP.smtp_DATA` rather than aiosmtpd's (which refuses any line over
1,000 bytes, and so every mail sent with bare LF line ends, with "500 Line too long"): any
line length, bare LF as a line end, and only CRLF.CRLF as the end (`smtp_data.DataReader`).
Command lines keep aiosmtpd's limits.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from services.runtime import log
from services.runtime import metrics as m
from services.runtime.clock import Clock
from services.runtime.errors import Unavailable

from .directory import AddressDirectory, Route
from .intake import IntakePipeline
from .smtp_data import DataReader
from .store import Intake

MAX_RECIPIENTS = 100


class Refusal(enum.Enum):
    """Every answer but 250 that this listener decides, by reason (the name)."""

    TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
    LOOKUP_FAILED = "451 4.3.0 Temporary lookup failure, try again later"
    NO_SUCH_MAILBOX = "550 5.1.1 No such mailbox here"
    NO_VALID_RECIPIENTS = "554 5.5.1 No valid recipients"
    TOO_LARGE = "552 5.3.4 Message too big for system"
    NOT_STORED = "451 4.3.0 Temporary failure, please try again later"


class IntakeSMTP(SMTP):
    """aiosmtpd's server with DATA read as a real MTA reads it (see the module's doc)."""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        data = DataReader(self.data_size_limit)
        while self.transport is not None:
            try:
                piece = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                # a line longer than the reader's buffer limit: take it in parts
                piece = await self._reader.read(exc.consumed)
            except asyncio.CancelledError:
                self._writer.close()  # the connection went away in the middle of DATA
                raise
            if data.feed(piece):
                break
        else:
            return
        if data.too_large:
            self.envelope = self._create_envelope()  # the next transaction starts afresh
            await self.push(self.event_handler.refuse(Refusal.TOO_LARGE))
            return
        self.envelope.content = self.envelope.original_content = data.content()
        status = await self._call_handler_hook("DATA")
        self.envelope = self._create_envelope()
        await self.push("250 OK" if status is MISSING else status)


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

    def refuse(self, refusal: Refusal) -> str:
        """The answer of a refusal, counted by its reason (docs/metrics.md)."""
        self._refused(refusal.name.lower()).inc()
        return refusal.value

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return self.refuse(Refusal.TOO_MANY_RECIPIENTS)
        try:
            route = await self._directory.resolve(address)
        except Unavailable as exc:
            self._log.warning("recipient lookup failed", error=str(exc))
            return self.refuse(Refusal.LOOKUP_FAILED)
        if route is None:
            return self.refuse(Refusal.NO_SUCH_MAILBOX)
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
            return self.refuse(Refusal.NO_VALID_RECIPIENTS)
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
            return self.refuse(Refusal.NOT_STORED)
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
            lambda: IntakeSMTP(
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
