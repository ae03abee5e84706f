"""The frozen records routing's SLA storage returns, and their rows' conversion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.runtime.calendars import WEEKDAYS, Calendar, Holiday, Slot, format_hhmm

from .sla import Happened, Happening, Policy


@dataclass(frozen=True, slots=True)
class StoredCalendar:
    id: str
    name: str
    calendar: Calendar
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy: Policy
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SlaTicket:
    """What routing knows of a ticket (from tickets' events) and its SLA as last saved."""

    ticket_id: str
    inbox_id: str
    category: str
    priority: str
    status: str
    created_at: datetime
    opened_by_operator: bool
    policy_id: str
    state: str
    next_due_at: datetime | None
    pending_until: datetime | None = None  # a pending ticket's date (rule timers)


@dataclass(frozen=True, slots=True)
class DueTimer:
    tenant_id: str
    ticket_id: str
    target: str
    which: str
    started_at: datetime
    fire_at: datetime
    due_at: datetime
    inbox_id: str
    policy_id: str


def slots_data(slots: tuple[Slot, ...]) -> list[dict[str, Any]]:
    return [
        {
            "weekday": WEEKDAYS[s.weekday],
            "start": format_hhmm(s.start),
            "end": format_hhmm(s.end),
            "crosses_midnight": s.crosses_midnight,
        }
        for s in slots
    ]


def holidays_data(holidays: tuple[Holiday, ...]) -> list[dict[str, Any]]:
    return [{"date": h.day.isoformat(), "name": h.name, "yearly": h.yearly} for h in holidays]


def calendar_of(row: Mapping[str, Any]) -> StoredCalendar:
    slots = tuple(
        Slot(
            WEEKDAYS.index(s["weekday"]),
            _minutes(s["start"]),
            _minutes(s["end"]),
            s["crosses_midnight"],
        )
        for s in row["slots"]
    )
    holidays = tuple(
        Holiday(date.fromisoformat(h["date"]), h["name"], h["yearly"]) for h in row["holidays"]
    )
    cal = Calendar(row["time_zone"], slots, holidays, row["public_holidays"])
    return StoredCalendar(
        str(row["id"]), row["name"], cal, row["version"], row["created_at"], row["updated_at"]
    )


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def policy_of(row: Mapping[str, Any]) -> StoredPolicy:
    p = Policy(
        id=str(row["id"]),
        name=row["name"],
        position=row["position"],
        enabled=row["enabled"],
        inbox_ids=tuple(row["inbox_ids"]),
        categories=tuple(row["categories"]),
        priorities=tuple(row["priorities"]),
        calendar_id=str(row["calendar_id"] or ""),
        first_response_minutes=row["first_response_minutes"],
        next_response_minutes=row["next_response_minutes"],
        resolution_minutes=row["resolution_minutes"],
        pause_statuses=tuple(row["pause_statuses"]),
        warn_before_minutes=row["warn_before_minutes"],
        warn_at_percent=row["warn_at_percent"],
    )
    return StoredPolicy(p, row["version"], row["created_at"], row["updated_at"])


def ticket_of(row: Mapping[str, Any]) -> SlaTicket:
    return SlaTicket(
        ticket_id=str(row["ticket_id"]),
        inbox_id=row["inbox_id"],
        category=row["category"],
        priority=row["priority"],
        status=row["status"],
        created_at=row["created_at"],
        opened_by_operator=row["opened_by_operator"],
        policy_id=str(row["policy_id"] or ""),
        state=row["state"],
        next_due_at=row["next_due_at"],
        pending_until=row["pending_until"],
    )


def happening_of(row: Mapping[str, Any]) -> Happening:
    return Happening(row["at"], Happened(row["what"]), row["status"])


def timer_of(row: Mapping[str, Any]) -> DueTimer:
    return DueTimer(
        str(row["tenant_id"]),
        str(row["ticket_id"]),
        row["target"],
        row["which"],
        row["started_at"],
        row["fire_at"],
        row["due_at"],
        row["inbox_id"],
        str(row["policy_id"] or ""),
    )
