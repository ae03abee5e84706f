"""The inbox's calendar, for business time (issue 19): the calendar of the first enabled
SLA policy (by position) that applies to the inbox with no category or priority condition
— the inbox's own hours, whatever a ticket's category or priority — asked from routing's
SlaService and kept per tenant for `ttl_s`; around the clock when no such policy has a
calendar (or routing has none for the tenant)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from switchboard.v1 import routing_sla_pb2 as pb
from switchboard.v1 import routing_sla_pb2_grpc

from services.runtime.calendars import ALWAYS, Calendar, Holiday, make_slot
from services.runtime.grpc_client import call_peer
from services.runtime.identity import Identity

from .facts import Hours


def calendar_of(c: pb.Calendar) -> Calendar:
    """routing's calendar (already checked by routing) as the business-time code's."""
    slots = tuple(
        make_slot(s.weekday, s.start, s.end, s.crosses_midnight, field=f"slots[{i}]")
        for i, s in enumerate(c.slots)
    )
    holidays = tuple(Holiday(date.fromisoformat(h.date), h.name, h.yearly) for h in c.holidays)
    return Calendar(c.time_zone, slots, holidays, c.public_holidays)


def inbox_calendar_ids(policies: list[pb.SlaPolicy]) -> tuple[dict[str, str], str]:
    """Per inbox named by a policy, the calendar id of its first fitting policy; and the
    calendar of the first fitting policy naming no inbox (every other inbox's)."""
    named: dict[str, str] = {}
    default = ""
    for p in sorted(policies, key=lambda p: (p.position, p.id)):
        if not p.enabled or p.categories or p.priorities:
            continue
        if not p.inbox_ids:
            if not default:
                default = p.calendar_id or "-"
            continue
        for inbox in p.inbox_ids:
            named.setdefault(inbox, p.calendar_id or "-")
    return named, default


class TenantHours:
    def __init__(self, named: dict[str, str], default: str, calendars: dict[str, Calendar]):
        self._named = named
        self._default = default
        self._calendars = calendars

    def of(self, inbox_id: str) -> Hours:
        cid = self._named.get(inbox_id, self._default)
        return self._calendars.get(cid, ALWAYS)


class InboxHours:
    """`await of(tenant, inbox_id)`: that inbox's calendar (or ALWAYS)."""

    def __init__(
        self,
        stub: routing_sla_pb2_grpc.SlaServiceStub,
        ttl_s: float = 60.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = stub
        self._ttl = ttl_s
        self._now = now
        self._cache: dict[str, tuple[float, TenantHours]] = {}

    async def tenant(self, tenant: str) -> TenantHours:
        hit = self._cache.get(tenant)
        if hit is not None and self._now() - hit[0] < self._ttl:
            return hit[1]
        md = Identity(tenant_id=tenant, display_name="reporting").metadata()
        policies = await call_peer(
            "routing", self._stub.ListSlaPolicies, pb.ListSlaPoliciesRequest(), md
        )
        named, default = inbox_calendar_ids(list(policies.policies))
        calendars: dict[str, Calendar] = {}
        if (set(named.values()) | {default}) - {"", "-"}:
            found = await call_peer(
                "routing", self._stub.ListCalendars, pb.ListCalendarsRequest(), md
            )
            calendars = {c.id: calendar_of(c) for c in found.calendars}
        hours = TenantHours(named, default, calendars)
        self._cache[tenant] = (self._now(), hours)
        return hours

    async def of(self, tenant: str, inbox_id: str) -> Hours:
        return (await self.tenant(tenant)).of(inbox_id)
