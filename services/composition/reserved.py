"""Reserved words (予約語, CMP-2): `{{name}}` or `{{name:format}}` in templates, subjects and
signatures, rendered from a fixed vocabulary — free of I/O.

Rendering is substitution and formatting only: the text between `{{` and `}}` is looked up
by name in `WORDS`; nothing is evaluated, no attribute is followed, no code runs. A word
that is not in the vocabulary, or whose value is missing for this ticket, is left in the
text exactly as written and reported (`Problem`), never silently emptied; the pre-send
check then blocks the send until it is filled in.

Dates are in the tenant's time zone (or the operator's), in the operator's language:
`{{today}}` is `2026年12月4日（金）` in Japanese and `Friday, December 4, 2026` in English;
`{{now:%Y年%m月%d日 %H:%M}}` takes a format of the directives in `DIRECTIVES` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"^[a-z]+(?:\.[a-z_]+)?$")
MAX_FORMAT = 100

WEEKDAYS_JA = "月火水木金土日"
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Person:
    name: str = ""
    address: str = ""
    company: str = ""


@dataclass(frozen=True)
class Original:
    """The mail being answered."""

    subject: str = ""
    sender: Person = field(default_factory=Person)
    date: datetime | None = None


@dataclass(frozen=True)
class Context:
    """Everything a word can stand for; what is unknown stays empty and is reported."""

    now: datetime
    time_zone: str = "UTC"
    language: str = "ja"
    operator: Person = field(default_factory=Person)
    customer: Person = field(default_factory=Person)
    ticket_number: int = 0
    ticket_subject: str = ""
    inbox_name: str = ""
    inbox_address: str = ""
    original: Original = field(default_factory=Original)

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.time_zone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


@dataclass(frozen=True)
class Problem:
    word: str  # as written between the braces
    reason: str  # "unknown" | "empty" | "bad_format"
    message: str


@dataclass(frozen=True)
class Rendered:
    text: str
    problems: tuple[Problem, ...]
    used: tuple[str, ...]  # the words that were filled in


# -- dates -------------------------------------------------------------------------------

# strftime directives a format may use; anything else after % is refused (no locale
# surprises, no platform-specific crashes, no way to reach anything but the date).
DIRECTIVES = frozenset("YymdHIMSpaAbBjeF%")


def _format_date(value: datetime, fmt: str, language: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(fmt) or fmt[i + 1] not in DIRECTIVES:
            raise ValueError(f"unsupported date directive in {fmt!r}")
        d = fmt[i + 1]
        i += 2
        if d == "a":
            out.append(
                WEEKDAYS_JA[value.weekday()]
                if language == "ja"
                else WEEKDAYS_EN[value.weekday()][:3]
            )
        elif d == "A":
            out.append(
                WEEKDAYS_JA[value.weekday()] + "曜日"
                if language == "ja"
                else WEEKDAYS_EN[value.weekday()]
            )
        elif d == "b":
            out.append(f"{value.month}月" if language == "ja" else MONTHS_EN[value.month - 1][:3])
        elif d == "B":
            out.append(f"{value.month}月" if language == "ja" else MONTHS_EN[value.month - 1])
        elif d == "e":
            out.append(str(value.day))
        elif d == "p":
            out.append(
                ("午前" if value.hour < 12 else "午後")
                if language == "ja"
                else ("AM" if value.hour < 12 else "PM")
            )
        elif d == "%":
            out.append("%")
        else:
            out.append(value.strftime("%" + d))
    return "".join(out)


def _long_date(value: datetime, language: str) -> str:
    if language == "ja":
        return f"{value.year}年{value.month}月{value.day}日（{WEEKDAYS_JA[value.weekday()]}）"
    return f"{WEEKDAYS_EN[value.weekday()]}, {MONTHS_EN[value.month - 1]} {value.day}, {value.year}"


def _long_datetime(value: datetime, language: str) -> str:
    return f"{_long_date(value, language)} {value:%H:%M}"


# -- the vocabulary ----------------------------------------------------------------------

Word = Callable[[Context], str | datetime | None]
WORDS: dict[str, tuple[Word, str]] = {
    "today": (lambda c: c.now, "today's date"),
    "now": (lambda c: c.now, "the date and time now"),
    "customer.name": (lambda c: c.customer.name, "the customer's name"),
    "customer.address": (lambda c: c.customer.address, "the customer's mail address"),
    "customer.company": (lambda c: c.customer.company, "the customer's company"),
    "operator.name": (lambda c: c.operator.name, "your name"),
    "operator.address": (lambda c: c.operator.address, "your mail address"),
    "ticket.number": (lambda c: str(c.ticket_number or ""), "the ticket number"),
    "ticket.subject": (lambda c: c.ticket_subject, "the ticket's subject"),
    "inbox.name": (lambda c: c.inbox_name, "the inbox's name"),
    "inbox.address": (lambda c: c.inbox_address, "the inbox's address"),
    "original.subject": (lambda c: c.original.subject, "the subject of the mail answered"),
    "original.from": (
        lambda c: c.original.sender.name or c.original.sender.address,
        "who wrote the mail answered",
    ),
    "original.date": (lambda c: c.original.date, "when the mail answered was written"),
}
DATE_WORDS = frozenset({"today", "now", "original.date"})


def _value(word: str, fmt: str | None, ctx: Context) -> str:
    """The text for one word; ValueError with the reason when it cannot be filled in."""
    getter, _ = WORDS[word]
    raw = getter(ctx)
    if raw is None or raw == "":
        raise LookupError("empty")
    if isinstance(raw, datetime):
        local = raw.astimezone(ctx.zone())
        if fmt is not None:
            return _format_date(local, fmt, ctx.language)
        if word == "today":
            return _long_date(local, ctx.language)
        return _long_datetime(local, ctx.language)
    if fmt is not None:
        raise ValueError("only dates take a format")
    return str(raw)


def render(text: str, ctx: Context, clean: Callable[[str], str] = str) -> Rendered:
    """`text` with its words filled in; `clean` is applied to each value filled in (the
    Subject header's safety for a customer's name or subject)."""
    problems: list[Problem] = []
    used: list[str] = []

    def one(m: re.Match[str]) -> str:
        inner = m.group(1)
        name, sep, fmt = inner.strip().partition(":")
        name = name.strip()
        if not _NAME.match(name) or name not in WORDS:
            problems.append(Problem(inner, "unknown", f"{{{{{inner}}}}} is not a reserved word"))
            return m.group(0)
        if sep and (len(fmt) > MAX_FORMAT or name not in DATE_WORDS):
            problems.append(
                Problem(inner, "bad_format", f"{{{{{inner}}}}}: only dates take a format")
            )
            return m.group(0)
        try:
            value = _value(name, fmt if sep else None, ctx)
        except LookupError:
            problems.append(
                Problem(inner, "empty", f"{{{{{name}}}}} ({WORDS[name][1]}) is not known here")
            )
            return m.group(0)
        except ValueError as err:
            problems.append(Problem(inner, "bad_format", f"{{{{{inner}}}}}: {err}"))
            return m.group(0)
        used.append(name)
        return clean(value)

    out = PLACEHOLDER.sub(one, text)
    return Rendered(out, tuple(problems), tuple(dict.fromkeys(used)))


def leftovers(text: str) -> list[str]:
    """The `{{…}}` still in a text (an unfilled word, or one typed by hand)."""
    return [m.group(0) for m in PLACEHOLDER.finditer(text)]
