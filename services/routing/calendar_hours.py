"""The rules' business-hours lookup (RTE-1 "arrival inside/outside business hours") over
the SLA calendars (RTE-4): `of(tenant)` gives the engine its `in_hours(calendar_id, at)`
over that tenant's calendars only — another tenant's calendar id is unknown (None), so
its condition does not hold. Read from the calendar tables with a short per-tenant cache,
so a mail costs no database read; a calendar edit is seen within `ttl_s`."""

from __future__ import annotations

import time
from collections.abc import Callable

from services.runtime.calendars import InHours, in_hours_of

from .sla_repo import Conn, SlaRepo


class CalendarHours:
    def __init__(
        self,
        repo: SlaRepo,
        conn: Conn,
        ttl_s: float = 5.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._conn = conn
        self._ttl = ttl_s
        self._now = now
        self._cache: dict[str, tuple[float, InHours]] = {}

    async def of(self, tenant: str) -> InHours:
        hit = self._cache.get(tenant)
        if hit is not None and self._now() - hit[0] < self._ttl:
            return hit[1]
        stored = await self._repo.calendars(self._conn, tenant)
        in_hours = in_hours_of({c.id: c.calendar for c in stored})
        self._cache[tenant] = (self._now(), in_hours)
        return in_hours
