"""Business-hours calendars (RTE-4), free of I/O: an IANA time zone, weekly opening slots
(several per weekday; one may cross midnight), holidays (dated or yearly) and, built in,
a country's public holidays (the `holidays` package, Japanese by default).

A calendar answers whether it is open at an instant, and business-time arithmetic: the
instant after a number of open minutes, the open minutes between two instants. Times
in and out are timezone-aware; the maths runs on UTC instants, so a day on which the
clocks change has its true length (a 09:00–17:00 slot is 8 hours either way; an all-day
slot on the day New York springs forward is 23 hours).

Slots and holidays are read in the calendar's zone. A slot that crosses midnight runs
from `start` on its weekday to `end` on the next day; its part after midnight is closed
when that next day is a holiday, and a slot whose own day is a holiday does not open.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib

from services.runtime.errors import FailedPrecondition, InvalidArgument

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
# How far ahead an answer is looked for: a calendar whose holidays close every day for
# ten years never opens.
HORIZON_DAYS = 3660
_HHMM = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")


@dataclass(frozen=True, slots=True)
class Slot:
    """Open from `start` to `end` (minutes after midnight) on `weekday` (0 = Monday).
    Without `crosses_midnight`, 0 ≤ start < end ≤ 1440; with it, it ends at `end` on the
    next day and 0 < end ≤ start < 1440."""

    weekday: int
    start: int
    end: int
    crosses_midnight: bool = False


@dataclass(frozen=True, slots=True)
class Holiday:
    """A whole day closed; `yearly` repeats its month and day every year."""

    day: date
    name: str
    yearly: bool = False


def zone_of(name: str, *, field: str = "time_zone") -> ZoneInfo:
    """The IANA zone `name`; an unknown one is refused naming `field`."""
    if not name or name != name.strip() or "\x00" in name:
        raise InvalidArgument(f"unknown time zone {name!r}", field=field)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {name!r}", field=field) from None


def supported_countries() -> frozenset[str]:
    return frozenset(holidays_lib.list_supported_countries())


@lru_cache(maxsize=256)
def public_holidays(country: str, year: int) -> tuple[tuple[date, str], ...]:
    """A country's public holidays of a year, by date, with their names (Japanese for
    JP: 元日, 成人の日, 振替休日 …)."""
    if not country:
        return ()
    language = "ja" if country == "JP" else None
    found = holidays_lib.country_holidays(country, years=year, language=language)
    return tuple(sorted((day, str(name)) for day, name in found.items()))


def parse_hhmm(text: str, *, field: str) -> int:
    """ "HH:MM" → minutes after midnight (00:00 … 24:00)."""
    m = _HHMM.match(text)
    minutes = int(m.group(1)) * 60 + int(m.group(2)) if m else -1
    if not m or minutes > DAY_MINUTES:
        raise InvalidArgument(f"{text!r} is not a time of day HH:MM", field=field)
    return minutes


def format_hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def make_slot(weekday: str, start: str, end: str, crosses_midnight: bool, *, field: str) -> Slot:
    """A slot from its wire form, checked; `field` is its path (`slots[2]`)."""
    if weekday not in WEEKDAYS:
        raise InvalidArgument(
            f"weekday must be one of {', '.join(WEEKDAYS)}", field=f"{field}.weekday"
        )
    s = parse_hhmm(start, field=f"{field}.start")
    e = parse_hhmm(end, field=f"{field}.end")
    if s == DAY_MINUTES:
        raise InvalidArgument("a slot cannot start at 24:00", field=f"{field}.start")
    if crosses_midnight:
        if e > s or e == 0 or e == DAY_MINUTES:
            raise InvalidArgument(
                "a slot crossing midnight ends on the next day, at or before its start "
                "(and after 00:00)",
                field=f"{field}.end",
            )
    elif e <= s:
        raise InvalidArgument(
            "the slot ends before it starts; mark crosses_midnight to end on the next day",
            field=f"{field}.end",
        )
    return Slot(WEEKDAYS.index(weekday), s, e, crosses_midnight)


class AroundTheClock:
    """No calendar: every minute counts."""

    def is_open(self, at: datetime) -> bool:
        return True

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        return start.astimezone(UTC) + amount

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        return max(b.astimezone(UTC) - a.astimezone(UTC), timedelta(0))


ALWAYS = AroundTheClock()


@dataclass(frozen=True)
class Calendar:
    time_zone: str
    slots: tuple[Slot, ...]
    holidays: tuple[Holiday, ...] = ()
    public_holidays: str = ""  # an ISO country code, "" for none

    @staticmethod
    def checked(
        time_zone: str,
        slots: Sequence[Slot],
        holidays: Sequence[Holiday] = (),
        public_holidays: str = "",
    ) -> Calendar:
        """A calendar from parts already parsed; refuses an unknown zone or country and a
        calendar without slots."""
        zone_of(time_zone)
        if not slots:
            raise InvalidArgument("a calendar needs at least one opening slot", field="slots")
        if public_holidays and public_holidays not in supported_countries():
            raise InvalidArgument(
                f"no public holidays known for {public_holidays!r}", field="public_holidays"
            )
        return Calendar(time_zone, tuple(slots), tuple(holidays), public_holidays)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_holiday(self, day: date) -> bool:
        for h in self.holidays:
            if h.day == day or (h.yearly and (h.day.month, h.day.day) == (day.month, day.day)):
                return True
        if self.public_holidays:
            return any(d == day for d, _ in public_holidays(self.public_holidays, day.year))
        return False

    # -- the open intervals, as UTC instants -------------------------------------------

    def _at(self, day: date, minutes: int) -> datetime:
        """`minutes` after the local midnight starting `day` on the wall clock (24:00 is
        the next midnight), as a UTC instant."""
        naive = datetime.combine(day, time(0)) + timedelta(minutes=minutes)
        return naive.replace(tzinfo=self.zone).astimezone(UTC)

    def _day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open intervals that lie on `day` (its own slots and the tails of the
        previous day's slots crossing midnight), sorted by start, not merged."""
        out: list[tuple[datetime, datetime]] = []
        if self.is_holiday(day):
            return out
        yesterday = day - timedelta(days=1)
        yesterday_open = not self.is_holiday(yesterday)
        for slot in self.slots:
            if slot.crosses_midnight and slot.weekday == yesterday.weekday() and yesterday_open:
                out.append((self._at(day, 0), self._at(day, slot.end)))
            if slot.weekday == day.weekday():
                end = DAY_MINUTES if slot.crosses_midnight else slot.end
                out.append((self._at(day, slot.start), self._at(day, end)))
        out.sort()
        return out

    def intervals_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals from `start` on, merged, the first clipped to `start`; ends
        after HORIZON_DAYS."""
        start = start.astimezone(UTC)
        local_day = start.astimezone(self.zone).date() - timedelta(days=1)
        pending: tuple[datetime, datetime] | None = None
        for offset in range(HORIZON_DAYS):
            for a, b in self._day_intervals(local_day + timedelta(days=offset)):
                if b <= start:
                    continue
                a = max(a, start)
                if pending is not None and a <= pending[1]:
                    pending = (pending[0], max(pending[1], b))
                    continue
                if pending is not None:
                    yield pending
                pending = (a, b)
        if pending is not None:
            yield pending

    # -- the answers -------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        local_day = at.astimezone(self.zone).date()
        for day in (local_day - timedelta(days=1), local_day, local_day + timedelta(days=1)):
            for a, b in self._day_intervals(day):
                if a <= at < b:
                    return True
        return False

    def add_business_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` of open time has passed since `start` (`start`
        itself when amount is zero)."""
        start = start.astimezone(UTC)  # UTC arithmetic: a local time would add wall time
        if amount <= timedelta(0):
            return start
        left = amount
        for a, b in self.intervals_from(start):
            if b - a >= left:
                return a + left
            left -= b - a
        raise FailedPrecondition(
            "the calendar does not open again within ten years", field="calendar_id"
        )

    def business_time_between(self, a: datetime, b: datetime) -> timedelta:
        """The open time in [a, b) (zero when b ≤ a)."""
        total = timedelta(0)
        if b <= a:
            return total
        for s, e in self.intervals_from(a):
            if s >= b:
                break
            total += min(e, b) - s
        return total

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        return self.add_business_time(start, timedelta(minutes=minutes))

    def business_minutes_between(self, a: datetime, b: datetime) -> float:
        return self.business_time_between(a, b) / timedelta(minutes=1)


InHours = Callable[[str, datetime], bool | None]


def in_hours_of(calendars: Mapping[str, Calendar]) -> InHours:
    """The rules engine's `in_hours(calendar_id, at)` over a tenant's calendars (by id,
    as `SlaRepo.calendars` lists them): whether that calendar is open at `at`, None for
    a calendar the tenant does not have."""

    def in_hours(calendar_id: str, at: datetime) -> bool | None:
        cal = calendars.get(calendar_id)
        return None if cal is None else cal.is_open(at)

    return in_hours
