"""A report's range and its periods in the viewer's time zone (I/O-free).

The range comes as the viewer wrote it: `YYYY-MM-DD` (from: that day's first instant;
to: through that day) or an ISO 8601 date-time (read in the zone without an offset; `to`
exclusive). Periods are the calendar's in the zone — hour, day, ISO week (Monday), month —
each computed from local wall-clock boundaries and turned into UTC instants, so a day in
America/New_York is 23 or 25 hours long at the DST changes and a day in Asia/Tokyo starts
at 15:00 UTC. The first and last periods are cut to the range.

Which stored buckets can answer: when the zone is the one the tenant's day rollups are
kept in (report_zones) and every boundary is a local midnight there, the day rollups; when
every boundary is a whole UTC hour, the hourly rollups; on a quarter hour (zones at
:30/:45 offsets), the 15-minute rollups; otherwise the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.runtime.errors import InvalidArgument

GRANULARITIES = ("hour", "day", "week", "month")
MAX_DAYS = 1830  # about five years
HOUR_MAX_DAYS = 92
DEFAULT_DAYS = 30
FIRST_YEAR, LAST_YEAR = 1900, 2200  # the calendar arithmetic stays far from year 1 and 9999

DAY, HOUR, QUARTER, FACTS = "rollups_day", "rollups_hour", "rollups_15m", "facts"


@dataclass(frozen=True, slots=True)
class Period:
    label: str  # 2026-11-01T13:00 | 2026-11-01 | 2026-W44 | 2026-11
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive


@dataclass(frozen=True, slots=True)
class Range:
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    zone: ZoneInfo
    granularity: str


def zone_of(name: str) -> ZoneInfo:
    """An IANA zone, or INVALID_ARGUMENT naming `tz`."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        raise InvalidArgument(f"unknown time zone {name[:64]!r}", field="tz")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(f"unknown time zone {name[:64]!r}", field="tz") from None


def _local(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local calendar day (fold 0: the earlier of an ambiguous
    time; a midnight skipped by a DST jump maps to the jump's instant), in UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def parse_bound(text: str, field: str, zone: tzinfo, *, end: bool) -> datetime:
    """`from`/`to` as a UTC instant."""
    value = text.strip()
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(
                f"{field} must be YYYY-MM-DD or a date-time", field=field
            ) from None
        try:
            return _local(day + timedelta(days=1) if end else day, zone)
        except OverflowError:
            raise InvalidArgument(f"{field} is out of range", field=field) from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidArgument(f"{field} must be YYYY-MM-DD or a date-time", field=field) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{field} is out of range", field=field) from None


def report_range(
    from_text: str, to_text: str, granularity: str, zone: ZoneInfo, now: datetime
) -> Range:
    """The validated range: `to` after `from`, at most MAX_DAYS, hourly at most
    HOUR_MAX_DAYS. Defaults: the last DEFAULT_DAYS days through today."""
    granularity = granularity or "day"
    if granularity not in GRANULARITIES:
        raise InvalidArgument("granularity is hour, day, week or month", field="granularity")
    today = now.astimezone(zone).date()
    if to_text:
        end = parse_bound(to_text, "to", zone, end=True)
    else:
        end = _local(today + timedelta(days=1), zone)
    if from_text:
        start = parse_bound(from_text, "from", zone, end=False)
    else:
        start = _local(end.astimezone(zone).date() - timedelta(days=DEFAULT_DAYS), zone)
    if start.year < FIRST_YEAR:
        raise InvalidArgument(f"from is before {FIRST_YEAR}", field="from")
    if end.year > LAST_YEAR:
        raise InvalidArgument(f"to is after {LAST_YEAR}", field="to")
    if end <= start:
        raise InvalidArgument("to must be after from", field="to")
    if end - start > timedelta(days=MAX_DAYS):
        raise InvalidArgument(f"the range is at most {MAX_DAYS} days", field="to")
    if granularity == "hour" and end - start > timedelta(days=HOUR_MAX_DAYS):
        raise InvalidArgument(
            f"hour granularity covers at most {HOUR_MAX_DAYS} days", field="granularity"
        )
    return Range(start, end, zone, granularity)


def _next_start(day: date, granularity: str) -> date:
    if granularity == "day":
        return day + timedelta(days=1)
    if granularity == "week":
        return day + timedelta(days=7)
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _first_day(day: date, granularity: str) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _label(day: date, granularity: str) -> str:
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity == "month":
        return f"{day.year}-{day.month:02d}"
    return day.isoformat()


def periods(r: Range) -> list[Period]:
    """The periods of the range in its zone, the first and last cut to the range."""
    if r.granularity == "hour":
        return _hours(r)
    out: list[Period] = []
    day = _first_day(r.start.astimezone(r.zone).date(), r.granularity)
    start = _local(day, r.zone)
    while start < r.end:
        following = _next_start(day, r.granularity)
        end = _local(following, r.zone)
        if end > r.start:
            out.append(Period(_label(day, r.granularity), max(start, r.start), min(end, r.end)))
        day, start = following, end
    return out


def _hours(r: Range) -> list[Period]:
    """Local clock hours: from the local hour the range starts in, an hour at a time in
    UTC (a DST change of a whole hour repeats or skips a local hour, never shifts them)."""
    local = r.start.astimezone(r.zone)
    start = (
        local
        - timedelta(minutes=local.minute, seconds=local.second, microseconds=local.microsecond)
    ).astimezone(UTC)
    out: list[Period] = []
    while start < r.end:
        end = start + timedelta(hours=1)
        label = start.astimezone(r.zone).strftime("%Y-%m-%dT%H:%M")
        out.append(Period(label, max(start, r.start), min(end, r.end)))
        start = end
    return out


def source_for(bounds: list[Period], day_zone: tzinfo | None = None) -> str:
    """The coarsest stored buckets the boundaries allow; `day_zone`: the zone the day
    rollups are ready in, when it is the report's."""
    edges = [p.start for p in bounds] + [p.end for p in bounds]
    if day_zone is not None and all(e.astimezone(day_zone).time() == time(0) for e in edges):
        return DAY
    if all(e.minute == 0 and e.second == 0 and e.microsecond == 0 for e in edges):
        return HOUR
    if all(e.minute % 15 == 0 and e.second == 0 and e.microsecond == 0 for e in edges):
        return QUARTER
    return FACTS


def local_iso(moment: datetime, zone: tzinfo) -> str:
    """An instant as ISO 8601 in the zone's offset at that instant (seconds precision)."""
    return moment.astimezone(zone).isoformat(timespec="seconds")


def local_day(moment: datetime, zone: tzinfo) -> date:
    """The local calendar day an instant falls in."""
    return moment.astimezone(zone).date()


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The first instant of a local day, in UTC."""
    return _local(day, zone)
