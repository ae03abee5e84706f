"""One mail over SMTP with aiosmtplib, telling apart what can be retried from what cannot.

Everything up to the end of the message is safe to retry: nothing was handed over. The
moment the message's final dot is written, it may have been delivered; a connection that
ends then without a reply is `unknown`, never retried on its own. Just before writing the
message, `before_data` records that moment (phase `data`, under the item's lease); when
it says the lease is lost, the transaction is abandoned unsent.

Connections are pooled per route (host, port, security, login) and reused for the next
mail; a reused connection that turns out dead before the message is replaced once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aiosmtplib
from aiosmtplib.errors import SMTPException, SMTPResponseException

from services.runtime import log

from .domain import Outcome, Result, Route, clip_reply, outcome_of

_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Hop:
    """Where to connect (a tenant's route, or the platform relay)."""

    name: str
    host: str
    port: int
    security: str  # tls, starttls, none
    username: str = ""
    password: str = ""
    verify_certificate: bool = True

    @classmethod
    def of(cls, route: Route) -> Hop:
        return cls(
            route.name,
            route.host,
            route.port,
            route.security,
            route.username,
            route.password,
            route.verify_certificate,
        )

    def key(self) -> str:
        secret = hashlib.sha256(self.password.encode()).hexdigest()[:16]
        tls = f"{self.security}:{self.verify_certificate}"
        return f"{self.host}:{self.port}:{tls}:{self.username}:{secret}"


class LeaseLost(Exception):
    """Another worker owns the item now: this one must not send it."""


@dataclass
class _Conn:
    smtp: aiosmtplib.SMTP
    used: int = 0
    idle_since: float = field(default_factory=time.monotonic)


class SmtpClient:
    def __init__(
        self,
        *,
        helo_name: str,
        timeout_s: float,
        data_timeout_s: float,
        per_route: int = 16,
        idle_s: float = 30.0,
        max_per_connection: int = 100,
    ) -> None:
        self._helo = helo_name
        self._timeout = timeout_s
        self._data_timeout = data_timeout_s
        self._per_route = per_route
        self._idle_s = idle_s
        self._max_use = max_per_connection
        self._idle: dict[str, list[_Conn]] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self._log = log.get("outbound.smtp")

    def _limit(self, hop: Hop) -> asyncio.Semaphore:
        key = hop.key()
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self._per_route)
        return self._limits[key]

    async def _connect(self, hop: Hop) -> _Conn:
        tls_context = None
        if hop.security != "none" and not hop.verify_certificate:
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        smtp = aiosmtplib.SMTP(
            hostname=hop.host.strip("[]"),
            port=hop.port,
            local_hostname=self._helo,
            timeout=self._timeout,
            use_tls=hop.security == "tls",
            start_tls=hop.security == "starttls",
            validate_certs=hop.verify_certificate,
            tls_context=tls_context,
        )
        await smtp.connect()
        if hop.username:
            await smtp.login(hop.username, hop.password)
        return _Conn(smtp)

    async def probe(self, hop: Hop, timeout_s: float = 20.0) -> tuple[bool, str, int]:
        """A connection test of a route: connect, EHLO, STARTTLS or TLS, AUTH when it has
        a user name, QUIT — on a connection of its own, nothing sent. (ok, what the
        server said or why it failed, milliseconds); never the password."""
        started = time.monotonic()
        conn: _Conn | None = None
        try:
            conn = await asyncio.wait_for(self._connect(hop), timeout_s)
            smtp = conn.smtp
            tls = (
                "TLS" if hop.security == "tls" else "STARTTLS" if hop.security == "starttls" else ""
            )
            auth = f", logged in as {hop.username}" if hop.username else ""
            ehlo = smtp.last_ehlo_response
            banner = ehlo.message.splitlines()[0] if ehlo and ehlo.message else ""
            via = f" with {tls}" if tls else ""
            ok, detail = True, f"connected to {hop.host}:{hop.port}{via}{auth}"
            if banner:
                detail += f" ({banner[:200]})"
        except TimeoutError:
            ok, detail = False, f"no answer from {hop.host}:{hop.port} within {timeout_s:g} s"
        except aiosmtplib.SMTPAuthenticationError as exc:
            ok, detail = False, f"login refused: {exc.code} {exc.message}"[:500]
        except aiosmtplib.SMTPResponseException as exc:
            ok, detail = False, f"the server answered {exc.code} {exc.message}"[:500]
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            ok, detail = False, (str(exc) or repr(exc))[:500]
        finally:
            if conn is not None:
                await self._quit(conn)
        return ok, detail, int((time.monotonic() - started) * 1000)

    def _take_idle(self, hop: Hop) -> _Conn | None:
        pool = self._idle.get(hop.key(), [])
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if conn.smtp.is_connected and now - conn.idle_since < self._idle_s:
                return conn
            conn.smtp.close()
        return None

    def _give_back(self, hop: Hop, conn: _Conn) -> None:
        conn.used += 1
        if conn.used >= self._max_use or not conn.smtp.is_connected:
            task = asyncio.ensure_future(self._quit(conn))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(hop.key(), []).append(conn)

    async def _quit(self, conn: _Conn) -> None:
        try:
            await asyncio.wait_for(conn.smtp.quit(), 2)
        except Exception:
            conn.smtp.close()

    async def close(self) -> None:
        pools, self._idle = self._idle, {}
        await asyncio.gather(*(self._quit(c) for conns in pools.values() for c in conns))

    async def deliver(
        self,
        hop: Hop,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        before_data: Callable[[], Awaitable[None]],
    ) -> Result:
        """Send one message; the outcome for the whole item. Raises LeaseLost (from
        `before_data`) when the item must not be sent by this worker."""
        async with self._limit(hop):
            conn = self._take_idle(hop)
            if conn is not None:
                try:
                    return await self._transaction(hop, conn, sender, recipients, raw, before_data)
                except _Stale:
                    conn.smtp.close()  # dead before anything was handed over: a fresh one
            try:
                conn = await self._connect(hop)
            except SMTPResponseException as err:
                return Result(outcome_of(err.code), err.code, clip_reply(err.message))
            except (SMTPException, OSError, TimeoutError, ssl.SSLError) as err:
                return Result(Outcome.TEMPORARY, 0, clip_reply(f"connection failed: {_why(err)}"))
            try:
                return await self._transaction(hop, conn, sender, recipients, raw, before_data)
            except _Stale as stale:
                conn.smtp.close()
                return Result(Outcome.TEMPORARY, 0, clip_reply(f"connection lost: {stale}"))

    async def _transaction(
        self,
        hop: Hop,
        conn: _Conn,
        sender: str,
        recipients: Sequence[str],
        raw: bytes,
        before_data: Callable[[], Awaitable[None]],
    ) -> Result:
        smtp = conn.smtp
        reused = conn.used > 0
        try:
            try:
                await smtp.mail(sender)
            except SMTPResponseException as err:
                await self._reset(hop, conn)
                return Result(outcome_of(err.code), err.code, clip_reply(err.message))
            accepted: list[str] = []
            rejected: list[tuple[str, int, str]] = []
            for rcpt in recipients:
                try:
                    await smtp.rcpt(rcpt)
                    accepted.append(rcpt)
                except SMTPResponseException as err:
                    if outcome_of(err.code) is Outcome.TEMPORARY:
                        # one recipient to try later: the whole mail waits, nobody gets
                        # it twice
                        await self._reset(hop, conn)
                        return Result(
                            Outcome.TEMPORARY, err.code, clip_reply(f"{rcpt}: {err.message}")
                        )
                    rejected.append((rcpt, err.code, err.message))
            if not accepted:
                await self._reset(hop, conn)
                rcpt, code, message = rejected[-1]
                return Result(Outcome.PERMANENT, code, clip_reply(f"{rcpt}: {message}"))
            start = await smtp.execute_command(b"DATA")
            if start.code != 354:
                await self._reset(hop, conn)
                code = start.code if start.code >= 400 else 451
                return Result(outcome_of(code), start.code, clip_reply(start.message))
        except (SMTPException, OSError, TimeoutError) as err:
            # nothing was handed over: safe to retry
            if reused:
                raise _Stale(_why(err)) from err
            smtp.close()
            return Result(Outcome.TEMPORARY, 0, clip_reply(f"connection lost: {_why(err)}"))
        try:
            await before_data()
        except LeaseLost:
            smtp.close()  # abandon the transaction: the server discards the message
            raise
        except Exception:
            smtp.close()
            raise
        body = _DOT.sub(b"..", raw)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            protocol.write(body + b".\r\n")
            reply = await protocol.read_response(timeout=self._data_timeout)
        except (SMTPException, OSError, TimeoutError) as err:
            smtp.close()
            return Result(
                Outcome.UNKNOWN,
                0,
                clip_reply(f"no reply after the message was sent: {_why(err)}"),
            )
        outcome = outcome_of(reply.code)
        if outcome is Outcome.TEMPORARY:
            await self._reset(hop, conn)
        else:
            self._give_back(hop, conn)
        note = reply.message
        if rejected and outcome is Outcome.SENT:
            note += " — refused: " + "; ".join(f"{r} ({c} {m})" for r, c, m in rejected)
        return Result(outcome, reply.code, clip_reply(note), tuple(r for r, _, _ in rejected))

    async def _reset(self, hop: Hop, conn: _Conn) -> None:
        try:
            resp = await conn.smtp.rset()
            if 200 <= resp.code < 300:
                self._give_back(hop, conn)
                return
        except (SMTPException, OSError, TimeoutError):
            pass
        conn.smtp.close()


class _Stale(Exception):
    pass


def _why(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if text != type(err).__name__ else text
