"""SlaService messages ↔ the SLA domain: checked on the way in (INVALID_ARGUMENT naming
the field: `slots[1].end`), plain on the way out."""

from __future__ import annotations

from datetime import date, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import routing_sla_pb2 as pb

from services.runtime.calendars import Calendar, Holiday, make_slot, public_holidays
from services.runtime.errors import InvalidArgument
from services.runtime.ids import parse_uuid

from .sla import Policy, TicketSla
from .sla_records import StoredCalendar, StoredPolicy, holidays_data, slots_data

MAX_SLOTS = 200
MAX_HOLIDAYS = 2000
DEFAULT_PUBLIC_HOLIDAYS = "JP"


def _ts(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def _name(value: str, field: str = "name") -> str:
    name = value.strip()
    if not name or len(name) > 100 or any(c in name for c in "\r\n\x00"):
        raise InvalidArgument("a name of 1–100 characters on one line", field=field)
    return name


def holiday_of(h: pb.CalendarHoliday, field: str) -> Holiday:
    try:
        day = date.fromisoformat(h.date)
    except ValueError:
        raise InvalidArgument(
            f"{h.date!r} is not a date YYYY-MM-DD", field=f"{field}.date"
        ) from None
    if len(h.name) > 200 or any(c in h.name for c in "\r\n\x00"):
        raise InvalidArgument("a name of up to 200 characters on one line", field=f"{field}.name")
    return Holiday(day, h.name.strip(), h.yearly)


def calendar_from_pb(given: pb.Calendar, *, create: bool) -> tuple[str, Calendar]:
    """The calendar's name and the calendar, checked; nothing is kept of a bad one."""
    name = _name(given.name)
    if len(given.slots) > MAX_SLOTS:
        raise InvalidArgument(f"at most {MAX_SLOTS} slots", field="slots")
    if len(given.holidays) > MAX_HOLIDAYS:
        raise InvalidArgument(f"at most {MAX_HOLIDAYS} holidays", field="holidays")
    slots = [
        make_slot(s.weekday, s.start, s.end, s.crosses_midnight, field=f"slots[{i}]")
        for i, s in enumerate(given.slots)
    ]
    holidays = [holiday_of(h, f"holidays[{i}]") for i, h in enumerate(given.holidays)]
    country = given.public_holidays
    if create and not given.HasField("public_holidays"):
        country = DEFAULT_PUBLIC_HOLIDAYS
    return name, Calendar.checked(given.time_zone, slots, holidays, country)


def merged_holidays(old: tuple[Holiday, ...], new: list[Holiday]) -> tuple[Holiday, ...]:
    """`old` and then the days of `new` it does not have yet."""
    seen = {(h.day, h.yearly) for h in old}
    out = list(old)
    for h in new:
        if (h.day, h.yearly) not in seen:
            seen.add((h.day, h.yearly))
            out.append(h)
    return tuple(out)


def calendar_pb(sc: StoredCalendar) -> pb.Calendar:
    cal = sc.calendar
    return pb.Calendar(
        id=sc.id,
        name=sc.name,
        time_zone=cal.time_zone,
        public_holidays=cal.public_holidays,
        slots=[pb.CalendarSlot(**s) for s in slots_data(cal.slots)],
        holidays=[pb.CalendarHoliday(**h) for h in holidays_data(cal.holidays)],
        version=sc.version,
        created_at=_ts(sc.created_at),
        updated_at=_ts(sc.updated_at),
    )


def public_holidays_pb(country: str, year: int) -> list[pb.CalendarHoliday]:
    return [
        pb.CalendarHoliday(date=day.isoformat(), name=name)
        for day, name in public_holidays(country, year)
    ]


def _opt(given: pb.SlaPolicy, field: str) -> int | None:
    return int(getattr(given, field)) if given.HasField(field) else None


def policy_from_pb(given: pb.SlaPolicy, policy_id: str) -> Policy:
    calendar_id = str(parse_uuid(given.calendar_id, "calendar_id")) if given.calendar_id else ""
    for i, inbox in enumerate(given.inbox_ids):
        parse_uuid(inbox, f"inbox_ids[{i}]")
    for i, category in enumerate(given.categories):
        if not category.strip() or len(category) > 100:
            raise InvalidArgument("a category of 1–100 characters", field=f"categories[{i}]")
    return Policy(
        id=policy_id,
        name=_name(given.name),
        position=given.position,
        enabled=given.enabled,
        inbox_ids=tuple(dict.fromkeys(given.inbox_ids)),
        categories=tuple(dict.fromkeys(given.categories)),
        priorities=tuple(dict.fromkeys(given.priorities)),
        calendar_id=calendar_id,
        first_response_minutes=_opt(given, "first_response_minutes"),
        next_response_minutes=_opt(given, "next_response_minutes"),
        resolution_minutes=_opt(given, "resolution_minutes"),
        pause_statuses=tuple(dict.fromkeys(given.pause_statuses)),
        warn_before_minutes=_opt(given, "warn_before_minutes"),
        warn_at_percent=_opt(given, "warn_at_percent"),
    )


def policy_pb(sp: StoredPolicy) -> pb.SlaPolicy:
    p = sp.policy
    return pb.SlaPolicy(
        id=p.id,
        name=p.name,
        position=p.position,
        enabled=p.enabled,
        inbox_ids=p.inbox_ids,
        categories=p.categories,
        priorities=p.priorities,
        calendar_id=p.calendar_id,
        first_response_minutes=p.first_response_minutes,
        next_response_minutes=p.next_response_minutes,
        resolution_minutes=p.resolution_minutes,
        pause_statuses=p.pause_statuses,
        warn_before_minutes=p.warn_before_minutes,
        warn_at_percent=p.warn_at_percent,
        version=sp.version,
        created_at=_ts(sp.created_at),
        updated_at=_ts(sp.updated_at),
    )


def ticket_sla_pb(ticket_id: str, policy: Policy | None, sla: TicketSla) -> pb.TicketSla:
    out = pb.TicketSla(
        ticket_id=ticket_id,
        policy_id=policy.id if policy else "",
        policy_name=policy.name if policy else "",
        calendar_id=policy.calendar_id if policy else "",
        state=sla.state.value,
        paused=sla.paused,
    )
    if sla.next_due_at is not None:
        out.next_due_at.FromDatetime(sla.next_due_at)
    for c in sla.targets:
        t = out.targets.add(kind=c.kind.value, state=c.state.value)
        t.started_at.FromDatetime(c.started_at)
        if c.due_at is not None:
            t.due_at.FromDatetime(c.due_at)
        if c.warning_at is not None:
            t.warning_at.FromDatetime(c.warning_at)
        if c.met_at is not None:
            t.met_at.FromDatetime(c.met_at)
        if c.remaining is not None:
            t.remaining_seconds = int(c.remaining.total_seconds())
    return out
