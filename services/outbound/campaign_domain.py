"""Campaigns' rules (issue 20, OUT-6), free of I/O: the campaign's state machine, the
checks of what an operator writes, the reserved words of the subject and body and their
rendering per recipient, the sending window in each recipient's time zone (DST-safe,
with zoneinfo), and the per-domain throttle's arithmetic.

Reserved words: `{{customer.name}}`, `{{customer.address}}`, `{{customer.company}}`,
`{{custom.<key>}}`, `{{inbox.name}}`, `{{today}}` (the recipient's date in their zone),
`{{unsubscribe.url}}`. A word may carry a fallback after `|` — `{{customer.name|お客様}}` —
used when the recipient has no value; without one, a missing value renders as nothing
(the mail still goes: one contact without a company must not hold up the campaign).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.runtime.errors import FailedPrecondition, InvalidArgument

STATES = ("draft", "scheduled", "running", "paused", "cancelled", "completed")
RECIPIENT_STATES = (
    "pending",
    "queued",
    "sent",
    "failed",
    "bounced",
    "replied",
    "unsubscribed",
    "suppressed",
    "cancelled",
)
TOTALS = ("queued", "sent", "failed", "bounced", "replied", "unsubscribed", "suppressed")
# action -> the states it may start from, and where it leads
_MOVES: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({"draft", "scheduled"}), "scheduled"),
    "unschedule": (frozenset({"scheduled"}), "draft"),
    "start": (frozenset({"scheduled"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "cancel": (frozenset({"draft", "scheduled", "running", "paused"}), "cancelled"),
    "complete": (frozenset({"running"}), "completed"),
}
EDITABLE = frozenset({"draft", "scheduled"})  # PATCH and DELETE only before it runs
NAME_MAX = 200
SUBJECT_MAX = 500
BODY_MAX = 100_000
THROTTLE_MAX = 100_000
MAX_AHEAD = timedelta(days=366)

_WORD = re.compile(r"\{\{\s*([^{}|]*?)\s*(?:\|([^{}]*))?\}\}")
_CUSTOM = re.compile(r"^custom\.[a-z][a-z0-9_]{0,39}$")
FIXED_WORDS = frozenset(
    {
        "customer.name",
        "customer.address",
        "customer.company",
        "inbox.name",
        "today",
        "unsubscribe.url",
    }
)
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")


def move(state: str, action: str) -> str:
    """The state `action` leads to from `state`; 409 (FailedPrecondition) otherwise."""
    allowed, to = _MOVES[action]
    if state not in allowed:
        raise FailedPrecondition(f"a {state} campaign cannot {action}", field="state")
    return to


def editable(state: str) -> None:
    if state not in EDITABLE:
        raise FailedPrecondition(f"a {state} campaign cannot be changed or deleted", field="state")


# -- reserved words ----------------------------------------------------------------------


def words_of(text: str) -> list[str]:
    return [m.group(1) for m in _WORD.finditer(text)]


def check_words(text: str, field: str) -> None:
    """400 naming the first word that is not a reserved word."""
    for word in words_of(text):
        if word not in FIXED_WORDS and not _CUSTOM.match(word):
            raise InvalidArgument(f"unknown reserved word {{{{{word}}}}}", field=field)


@dataclass(frozen=True, slots=True)
class Person:
    """What a recipient's mail is rendered with."""

    address: str
    name: str = ""
    custom: Mapping[str, str] | None = None
    time_zone: str = ""


def render(text: str, person: Person, *, inbox_name: str, today: date, unsubscribe_url: str) -> str:
    custom = person.custom or {}

    def value(m: re.Match[str]) -> str:
        word, fallback = m.group(1), (m.group(2) or "").strip()
        found = {
            "customer.name": person.name,
            "customer.address": person.address,
            "customer.company": custom.get("company", ""),
            "inbox.name": inbox_name,
            "today": today.isoformat(),
            "unsubscribe.url": unsubscribe_url,
        }.get(word)
        if found is None:
            found = (
                custom.get(word.removeprefix("custom."), "") if word.startswith("custom.") else ""
            )
        return found or fallback

    return _WORD.sub(value, text)


# -- what an operator writes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Window:
    start: int  # minutes of the local day, 0–1439
    end: int  # 1–1440; before `start`: the window crosses midnight
    days: tuple[int, ...]  # ISO weekdays (1 = Monday) the window opens on

    def text(self) -> tuple[str, str]:
        return _hhmm(self.start), _hhmm(self.end)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_window(start: str, end: str, days: Sequence[int]) -> Window:
    parsed = []
    for value, field in ((start, "window.start"), (end, "window.end")):
        m = _HHMM.match(value.strip())
        minutes = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
        if not m or minutes > 1440:
            raise InvalidArgument(f"{field} must be a time HH:MM", field=field)
        parsed.append(minutes)
    if parsed[0] == 1440:
        raise InvalidArgument("window.start must be before 24:00", field="window.start")
    if parsed[0] == parsed[1]:
        raise InvalidArgument("the window must not be empty", field="window.end")
    if not days or any(d not in range(1, 8) for d in days):
        raise InvalidArgument("window.days are weekdays 1 (Monday) to 7", field="window.days")
    return Window(parsed[0], parsed[1], tuple(sorted(set(days))))


def check_text(name: str, subject: str, body: str) -> None:
    if not name.strip() or len(name) > NAME_MAX:
        raise InvalidArgument(f"name is required (at most {NAME_MAX} characters)", field="name")
    if not subject.strip() or len(subject) > SUBJECT_MAX or "\n" in subject:
        raise InvalidArgument(
            f"subject is required (one line, at most {SUBJECT_MAX} characters)", field="subject"
        )
    if not body.strip() or len(body) > BODY_MAX:
        raise InvalidArgument(f"body is required (at most {BODY_MAX} characters)", field="body")
    check_words(subject, "subject")
    check_words(body, "body")


def check_throttle(value: int | None) -> None:
    if value is not None and not 1 <= value <= THROTTLE_MAX:
        raise InvalidArgument(
            f"throttle_per_domain_per_minute is 1 to {THROTTLE_MAX}",
            field="throttle_per_domain_per_minute",
        )


def check_schedule(at: datetime, now: datetime) -> datetime:
    """`scheduled_at`: now or later (a moment in the past means now), within a year."""
    if at > now + MAX_AHEAD:
        raise InvalidArgument("scheduled_at is at most a year ahead", field="scheduled_at")
    return max(at, now)


def check_language(value: str) -> None:
    if value not in ("", "ja", "en"):
        raise InvalidArgument("language is ja, en or empty", field="language")


# -- the sending window ------------------------------------------------------------------


def zone(name: str, fallback: str = "UTC") -> ZoneInfo:
    """The recipient's zone, else the fallback (the tenant's), else UTC."""
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _at(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The moment of a local wall time (a time skipped by a DST change: just after it;
    one that happens twice: its first)."""
    naive = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
    return naive.replace(tzinfo=tz).astimezone(UTC)


def next_open(now: datetime, tz: ZoneInfo, window: Window | None) -> datetime:
    """The first moment at or after `now` inside the window, in the zone `tz` (`now`
    itself when the window is open, or when there is no window)."""
    if window is None:
        return now
    local_today = now.astimezone(tz).date()
    # a window crossing midnight may have opened yesterday
    for offset in range(-1, 9):
        day = local_today + timedelta(days=offset)
        if day.isoweekday() not in window.days:
            continue
        start = _at(day, window.start, tz)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = _at(end_day, window.end, tz)
        if end <= now:
            continue
        return max(start, now)
    return now  # unreachable with at least one day


def is_open(now: datetime, tz: ZoneInfo, window: Window | None) -> bool:
    return next_open(now, tz, window) <= now


def local_date(now: datetime, tz: ZoneInfo) -> date:
    return now.astimezone(tz).date()


# -- the per-domain throttle -------------------------------------------------------------


def period_of(now: datetime, period_s: float) -> datetime:
    """The start of the throttle period `now` falls in (a calendar minute by default)."""
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - epoch % period_s, UTC)


def allowance(limit: int | None, used: int, wanted: int) -> int:
    """How many of `wanted` may go in this period when `used` went already."""
    if limit is None:
        return wanted
    return max(0, min(wanted, limit - used))


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()
