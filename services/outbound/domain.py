"""Outbound's rules, free of I/O: the delivery states and how an SMTP outcome moves an
item, retry back-off with jitter, which route carries a mail, business hours, and the
checks on what administrators write (routes, DKIM selectors, auto-reply settings)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.hosts import valid_host


class State(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"


# waiting for their time: editable (cancel, reschedule)
WAITING = frozenset({State.SCHEDULED, State.RETRYING})
# the dispatcher has nothing more to do with them
FINAL = frozenset({State.SENT, State.FAILED, State.UNKNOWN, State.CANCELLED, State.BOUNCED})


class Outcome(StrEnum):
    SENT = "sent"  # 250 after the message
    TEMPORARY = "temporary"  # 4xx, or the connection failed before the message went
    PERMANENT = "permanent"  # 5xx
    UNKNOWN = "unknown"  # the message went, no reply came: it may have been delivered


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    code: int  # 0: no SMTP reply
    message: str
    rejected: tuple[str, ...] = ()  # recipients refused for good while others were accepted


def outcome_of(code: int) -> Outcome:
    """An SMTP reply code's meaning for the whole item."""
    if 200 <= code < 300:
        return Outcome.SENT
    if 500 <= code < 600:
        return Outcome.PERMANENT
    return Outcome.TEMPORARY


def backoff_s(attempt: int, *, base_s: float, cap_s: float, rand: float) -> float:
    """The wait before retry number `attempt` (1 = the first retry): exponential, capped,
    with "equal jitter" (half fixed, half random) so that items failed together do not
    come back together. `rand` is uniform in [0, 1)."""
    ceiling = min(cap_s, base_s * 2.0 ** max(attempt - 1, 0))
    return ceiling / 2 + rand * ceiling / 2


@dataclass(frozen=True)
class Move:
    state: State
    next_attempt_in_s: float | None = None  # retrying: when


def after_attempt(
    result: Result, attempts: int, max_attempts: int, *, base_s: float, cap_s: float, rand: float
) -> Move:
    """Where an item goes after attempt number `attempts` ended with `result`."""
    if result.outcome is Outcome.SENT:
        return Move(State.SENT)
    if result.outcome is Outcome.UNKNOWN:
        return Move(State.UNKNOWN)
    if result.outcome is Outcome.PERMANENT or attempts >= max_attempts:
        return Move(State.FAILED)
    return Move(State.RETRYING, backoff_s(attempts, base_s=base_s, cap_s=cap_s, rand=rand))


def clip_reply(message: str, limit: int = 500) -> str:
    text = " ".join(message.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- routes ------------------------------------------------------------------------------

SCOPES = ("inbox", "domain", "default")
SECURITY = ("tls", "starttls", "none")
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+[a-z0-9-]{2,63}$")


@dataclass(frozen=True)
class Route:
    id: str
    name: str
    scope: str
    inbox_id: str
    domain: str
    host: str
    port: int
    security: str
    username: str
    password: str
    verify_certificate: bool


RELAY = "relay"  # the platform's relay (settings), when the tenant has no route


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def choose_route(routes: Sequence[Route], inbox_id: str, recipients: Sequence[str]) -> Route | None:
    """The route that carries a mail: the one for the recipients' domain (a marketplace's
    masked-address relay), else the inbox's, else the tenant's default; None: the
    platform relay. Recipients that need different relays cannot share one mail."""
    by_domain = {r.domain: r for r in routes if r.scope == "domain"}
    chosen = {domain_of(a): by_domain.get(domain_of(a)) for a in recipients}
    special = {r.id: r for r in chosen.values() if r is not None}
    if special:
        if len(special) > 1 or any(r is None for r in chosen.values()):
            names = ", ".join(sorted(d for d in chosen))
            raise FailedPrecondition(
                f"the recipients' domains ({names}) go through different relays; send "
                "them separate mails",
                field="to",
            )
        return next(iter(special.values()))
    for r in routes:
        if r.scope == "inbox" and r.inbox_id == inbox_id:
            return r
    for r in routes:
        if r.scope == "default":
            return r
    return None


def check_route(
    *,
    name: str,
    scope: str,
    inbox_id: str,
    domain: str,
    host: str,
    port: int,
    security: str,
    username: str,
) -> tuple[str, str]:
    """Checks a route as written; returns (name, domain) cleaned."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise InvalidArgument("name is required (at most 100 characters)", field="name")
    if scope not in SCOPES:
        raise InvalidArgument("scope must be inbox, domain or default", field="scope")
    if scope == "inbox" and not inbox_id:
        raise InvalidArgument("an inbox route needs inbox_id", field="inbox_id")
    clean_domain = ""
    if scope == "domain":
        try:
            clean_domain = domain.strip().lower().encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidArgument("domain is not a mail domain", field="domain") from None
        if not _DOMAIN.match(clean_domain):
            raise InvalidArgument("domain is not a mail domain", field="domain")
    if not valid_host(host.strip()):
        raise InvalidArgument("host must be a host name or [address]", field="host")
    if not 1 <= port <= 65535:
        raise InvalidArgument("port must be between 1 and 65535", field="port")
    if security not in SECURITY:
        raise InvalidArgument("security must be tls, starttls or none", field="security")
    if any(c in username for c in "\r\n\0") or len(username) > 200:
        raise InvalidArgument(
            "username must be one line of at most 200 characters", field="username"
        )
    return name, clean_domain


# -- DKIM --------------------------------------------------------------------------------

_SELECTOR = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


def check_dkim_target(domain: str, selector: str) -> tuple[str, str]:
    try:
        d = domain.strip().lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise InvalidArgument("domain is not a mail domain", field="domain") from None
    if not _DOMAIN.match(d):
        raise InvalidArgument("domain is not a mail domain", field="domain")
    s = selector.strip().lower()
    if not _SELECTOR.match(s):
        raise InvalidArgument(
            "selector must be letters, digits and hyphens (e.g. sb2026)", field="selector"
        )
    return d, s


# -- business hours and automatic replies ------------------------------------------------

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@dataclass(frozen=True)
class Hours:
    weekday: int  # 1 Monday … 7 Sunday
    start: str  # "09:00"
    end: str  # "18:00"; "24:00" for the end of the day


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def check_hours(hours: Sequence[Hours]) -> list[Hours]:
    if len(hours) > 50:
        raise InvalidArgument("at most 50 business-hour ranges", field="hours")
    out = []
    for h in hours:
        if not 1 <= h.weekday <= 7:
            raise InvalidArgument("weekday must be 1 (Monday) to 7 (Sunday)", field="hours")
        if not _HHMM.match(h.start) or not _HHMM.match(h.end):
            raise InvalidArgument("hours are HH:MM, e.g. 09:00 and 18:00", field="hours")
        if _minutes(h.start) >= _minutes(h.end):
            raise InvalidArgument("a range must end after it starts", field="hours")
        out.append(h)
    return sorted(out, key=lambda h: (h.weekday, h.start))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {name!r}", field="time_zone") from None


def within_hours(at: datetime, hours: Sequence[Hours], tz: ZoneInfo) -> bool:
    local = at.astimezone(tz)
    minute = local.hour * 60 + local.minute
    day = local.isoweekday()
    return any(h.weekday == day and _minutes(h.start) <= minute < _minutes(h.end) for h in hours)


@dataclass(frozen=True)
class AutoReplyRule:
    enabled: bool
    mode: str  # always, outside_hours
    hours: tuple[Hours, ...]
    tz: ZoneInfo
    template_id: str
    period: timedelta


def auto_reply_due(
    rule: AutoReplyRule,
    *,
    now: datetime,
    automatic: bool,
    junk: bool,
    sender: str,
    own_addresses: frozenset[str],
    last_sent: datetime | None,
) -> str | None:
    """Why no automatic reply goes to this mail, or None when one does (OUT-4). Never to
    mail flagged as automatic (ING-7: auto-submitted, bulk, mailer-daemon), to spam, to
    ourselves, or twice to one sender within the period."""
    if not rule.enabled or not rule.template_id:
        return "off"
    if automatic:
        return "automatic mail"
    if junk:
        return "spam or blocked"
    if not sender or sender.lower() in own_addresses:
        return "no sender, or our own address"
    if rule.mode == "outside_hours" and within_hours(now, rule.hours, rule.tz):
        return "within business hours"
    if last_sent is not None and now - last_sent < rule.period:
        return "already answered in the period"
    return None
