"""Holidays from an iCalendar text (RTE-4), free of I/O: every whole-day VEVENT closes
each day from DTSTART up to DTEND (exclusive; one day without DTEND); `RRULE:FREQ=YEARLY`
makes it a yearly holiday; SUMMARY is its name. An event with a time of day is refused:
only whole days are holidays."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar

from services.runtime.calendars import Holiday
from services.runtime.errors import InvalidArgument

MAX_DAYS_PER_EVENT = 366
MAX_HOLIDAYS = 2000


def holidays_of(text: str) -> list[Holiday]:
    """The holidays an iCalendar text names, in its order (INVALID_ARGUMENT `ical`)."""
    try:
        cal = icalendar.Calendar.from_ical(text)
    except (ValueError, KeyError, IndexError, TypeError) as err:
        raise InvalidArgument(f"not an iCalendar text: {err}", field="ical") from None
    out: list[Holiday] = []
    for n, event in enumerate(cal.walk("VEVENT")):
        start = event.get("DTSTART")
        first = getattr(start, "dt", None)
        if first is None:
            raise InvalidArgument(f"event {n + 1} has no DTSTART", field="ical")
        if isinstance(first, datetime) or not isinstance(first, date):
            raise InvalidArgument(
                f"event {n + 1} has a time of day: only whole days are holidays", field="ical"
            )
        end = getattr(event.get("DTEND"), "dt", None)
        last = end if isinstance(end, date) and not isinstance(end, datetime) else None
        days = max(1, (last - first).days) if last is not None else 1
        if days > MAX_DAYS_PER_EVENT:
            raise InvalidArgument(f"event {n + 1} lasts more than a year", field="ical")
        rule = event.get("RRULE")
        yearly = bool(rule) and [str(f).upper() for f in rule.get("FREQ", [])] == ["YEARLY"]
        if rule and not yearly:
            raise InvalidArgument(
                f"event {n + 1} repeats other than yearly: not a holiday", field="ical"
            )
        name = str(event.get("SUMMARY", "")).strip()[:200]
        out.extend(Holiday(first + timedelta(days=i), name, yearly) for i in range(days))
        if len(out) > MAX_HOLIDAYS:
            raise InvalidArgument(f"more than {MAX_HOLIDAYS} holidays", field="ical")
    return out
