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
from typing import Any

import aiosmtplib
from aiosmtplib.errors import SMTPException, SMTPResponseException

from services.runtime import log
from services.runtime.hosts import ConnectPolicy, HostRefused

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
    # an operator's route: where it leads is checked (ConnectPolicy); the platform's relay,
    # a deployment setting, is not
    checked: bool = True

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
        policy: ConnectPolicy | None = None,
    ) -> None:
        self._policy = policy or ConnectPolicy()
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

    @property
    def policy(self) -> ConnectPolicy:
        """Where operators' routes may lead (issue 16)."""
        return self._policy

    def _limit(self, hop: Hop) -> asyncio.Semaphore:
        key = hop.key()
        if key not in self._limits:
            self._limits[key] = asyncio.Semaphore(self._per_route)
        return self._limits[key]

    async def _client(self, hop: Hop, *, start_tls: bool) -> aiosmtplib.SMTP:
        """An unconnected client for `hop`; an operator's route on a TCP connection made
        already to a checked address of its host (HostRefused otherwise), so that no
        second lookup of the name can lead elsewhere (issue 16)."""
        tls_context = None
        if hop.security != "none" and not hop.verify_certificate:
            tls_context = ssl.create_default_context()
            tls_context.check_hostname = False
            tls_context.verify_mode = ssl.CERT_NONE
        host = hop.host.strip("[]")
        options: dict[str, Any] = {
            "hostname": host,
            "local_hostname": self._helo,
            "timeout": self._timeout,
            "use_tls": hop.security == "tls",
            "start_tls": start_tls and hop.security == "starttls",
            "validate_certs": hop.verify_certificate,
            "tls_context": tls_context,
        }
        if hop.checked:
            options["sock"] = await self._policy.connect(hop.host, hop.port, self._timeout)
        else:
            options["port"] = hop.port
        return aiosmtplib.SMTP(**options)

    async def _connect(self, hop: Hop) -> _Conn:
        smtp = await self._client(hop, start_tls=True)
        await smtp.connect()
        if hop.username:
            await smtp.login(hop.username, hop.password)
        return _Conn(smtp)

    async def probe(self, hop: Hop, timeout_s: float = 20.0) -> tuple[bool, str, str, int]:
        """A connection test of a route: connect, the greeting and EHLO, STARTTLS or TLS,
        AUTH when it has a user name, QUIT — on a connection of its own, nothing sent.
        (ok, the step that failed or "ok", what happened in our words, milliseconds): a
        verdict, never a word the server sent (issue 16), never the password."""
        started = time.monotonic()
        smtp: aiosmtplib.SMTP | None = None
        step = "connect"
        where = f"{hop.host}:{hop.port}"

        async def steps() -> None:
            nonlocal smtp, step
            smtp = await self._client(hop, start_tls=False)
            step = "tls" if hop.security == "tls" else "greeting"
            await smtp.connect()
            step = "greeting"
            await smtp.ehlo()
            if hop.security == "starttls":
                step = "tls"
                await smtp.starttls()
            if hop.username:
                step = "auth"
                await smtp.login(hop.username, hop.password)

        try:
            await asyncio.wait_for(steps(), timeout_s)
            tls = {"tls": " with TLS", "starttls": " with STARTTLS"}.get(hop.security, "")
            auth = f", logged in as {hop.username}" if hop.username else ""
            ok, step, detail = True, "ok", f"connected to {where}{tls}{auth}"
        except HostRefused as exc:
            ok, step, detail = False, exc.step, exc.message
        except TimeoutError:
            ok, step, detail = False, "timeout", f"no answer from {where} within {timeout_s:g} s"
        except aiosmtplib.SMTPAuthenticationError as exc:
            ok, step, detail = False, "auth", f"login refused ({exc.code})"
        except (aiosmtplib.SMTPException, OSError, ValueError):
            ok, detail = False, _PROBE_VERDICTS[step].format(where=where, user=hop.username)
        finally:
            if smtp is not None and smtp.is_connected:
                await self._quit(_Conn(smtp))
        return ok, step, detail, int((time.monotonic() - started) * 1000)

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
            except HostRefused as err:
                # a route leading to a refused range is wrong until an administrator
                # changes it; a name that does not resolve or answer may come back
                outcome = Outcome.PERMANENT if err.step == "address" else Outcome.TEMPORARY
                return Result(outcome, 0, clip_reply(f"connection failed: {err.message}"))
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


# A failed probe's answer per step: fixed words, with only what the administrator entered.
_PROBE_VERDICTS = {
    "connect": "nothing answered at {where}",
    "tls": "TLS with {where} failed (certificate, protocol or STARTTLS)",
    "greeting": "{where} did not answer as an SMTP server",
    "auth": "the server refused to log in {user} (no AUTH offered, or an error)",
}


def _why(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if text != type(err).__name__ else text
