"""SlaService: calendars, SLA policies and a ticket's SLA. Any operator of the tenant
reads; changing needs `manage_rules`. A change to a policy or calendar recomputes the
tenant's open tickets in the background (`SlaClocks.recompute_tenant`)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

from switchboard.v1 import routing_sla_pb2 as pb

from services.runtime import identity, log, permissions
from services.runtime.calendars import supported_countries
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid

from . import ical
from .sla import check_policy
from .sla_clocks import SlaClocks
from .sla_convert import (
    calendar_from_pb,
    calendar_pb,
    merged_holidays,
    policy_from_pb,
    policy_pb,
    public_holidays_pb,
    ticket_sla_pb,
)
from .sla_repo import SlaRepo


def _writer(doing: str) -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_RULES, doing)
    return ident


class SlaApi:
    def __init__(
        self,
        db: Database,
        repo: SlaRepo,
        clocks: SlaClocks,
        clock: Clock,
        ids: IdGenerator,
    ) -> None:
        self._db = db
        self._repo = repo
        self._clocks = clocks
        self._clock = clock
        self._ids = ids
        self._background: set[asyncio.Task[int]] = set()
        self._log = log.get("routing.sla.api")

    def _changed(self, tenant: str) -> None:
        """Policies or calendars changed: the tenant's open tickets are recomputed."""
        task = asyncio.create_task(self._clocks.recompute_tenant(tenant))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    # -- calendars -----------------------------------------------------------------------

    async def ListCalendars(
        self, request: pb.ListCalendarsRequest, context: Context
    ) -> pb.ListCalendarsResponse:
        ident = identity.require_tenant()  # an operator, or a service of the tenant (reporting)
        stored = await self._repo.calendars(self._repo.pool, ident.tenant_id)
        return pb.ListCalendarsResponse(calendars=[calendar_pb(c) for c in stored])

    async def GetCalendar(self, request: pb.GetCalendarRequest, context: Context) -> pb.Calendar:
        ident = identity.require_operator()
        cid = parse_uuid(request.calendar_id, "calendar_id")
        return calendar_pb(await self._repo.calendar(self._repo.pool, ident.tenant_id, cid))

    async def CreateCalendar(self, request: pb.Calendar, context: Context) -> pb.Calendar:
        ident = _writer("change calendars")
        name, cal = calendar_from_pb(request, create=True)
        stored = await self._repo.save_calendar(
            self._repo.pool,
            ident.tenant_id,
            self._ids.new_str(),
            name,
            cal,
            self._clock.now(),
            create=True,
        )
        return calendar_pb(stored)

    async def UpdateCalendar(self, request: pb.Calendar, context: Context) -> pb.Calendar:
        ident = _writer("change calendars")
        cid = parse_uuid(request.id, "id")
        await self._repo.calendar(self._repo.pool, ident.tenant_id, cid)  # NotFound first
        name, cal = calendar_from_pb(request, create=False)
        stored = await self._repo.save_calendar(
            self._repo.pool,
            ident.tenant_id,
            str(cid),
            name,
            cal,
            self._clock.now(),
            create=False,
            version=int(request.version),
        )
        self._changed(ident.tenant_id)
        return calendar_pb(stored)

    async def DeleteCalendar(
        self, request: pb.DeleteCalendarRequest, context: Context
    ) -> pb.DeleteCalendarResponse:
        ident = _writer("change calendars")
        cid = parse_uuid(request.calendar_id, "calendar_id")
        await self._repo.delete_calendar(self._repo.pool, ident.tenant_id, cid)
        return pb.DeleteCalendarResponse()

    async def ImportIcal(
        self, request: pb.ImportIcalRequest, context: Context
    ) -> pb.ImportIcalResponse:
        ident = _writer("change calendars")
        cid = parse_uuid(request.calendar_id, "calendar_id")
        await self._repo.calendar(self._repo.pool, ident.tenant_id, cid)  # NotFound first
        found = ical.holidays_of(request.ical)
        async with self._db.transaction() as conn:
            current = await self._repo.calendar(conn, ident.tenant_id, cid)
            old = () if request.replace else current.calendar.holidays
            holidays = merged_holidays(old, found)
            cal = dataclasses.replace(current.calendar, holidays=holidays)
            stored = await self._repo.save_calendar(
                conn,
                ident.tenant_id,
                str(cid),
                current.name,
                cal,
                self._clock.now(),
                create=False,
                version=current.version,
            )
        self._changed(ident.tenant_id)
        return pb.ImportIcalResponse(
            calendar=calendar_pb(stored), imported=len(holidays) - len(old)
        )

    async def ListPublicHolidays(
        self, request: pb.ListPublicHolidaysRequest, context: Context
    ) -> pb.ListPublicHolidaysResponse:
        identity.require_operator()
        if request.country not in supported_countries():
            raise InvalidArgument(
                f"no public holidays known for {request.country!r}", field="country"
            )
        if not 1900 <= request.year <= 2200:
            raise InvalidArgument("a year between 1900 and 2200", field="year")
        return pb.ListPublicHolidaysResponse(
            holidays=public_holidays_pb(request.country, request.year)
        )

    # -- policies ------------------------------------------------------------------------

    async def ListSlaPolicies(
        self, request: pb.ListSlaPoliciesRequest, context: Context
    ) -> pb.ListSlaPoliciesResponse:
        ident = identity.require_tenant()  # an operator, or a service of the tenant (reporting)
        stored = await self._repo.policies(self._repo.pool, ident.tenant_id)
        return pb.ListSlaPoliciesResponse(policies=[policy_pb(p) for p in stored])

    async def GetSlaPolicy(self, request: pb.GetSlaPolicyRequest, context: Context) -> pb.SlaPolicy:
        ident = identity.require_operator()
        pid = parse_uuid(request.policy_id, "policy_id")
        return policy_pb(await self._repo.policy(self._repo.pool, ident.tenant_id, pid))

    async def _save_policy(
        self, ident: Identity, request: pb.SlaPolicy, pid: str, *, create: bool
    ) -> pb.SlaPolicy:
        p = policy_from_pb(request, pid)
        check_policy(p)
        async with self._db.transaction() as conn:
            if p.calendar_id:
                try:
                    await self._repo.calendar(conn, ident.tenant_id, uuid.UUID(p.calendar_id))
                except NotFound:
                    raise InvalidArgument("no such calendar", field="calendar_id") from None
            stored = await self._repo.save_policy(
                conn,
                ident.tenant_id,
                p,
                self._clock.now(),
                create=create,
                version=int(request.version),
            )
        self._changed(ident.tenant_id)
        return policy_pb(stored)

    async def CreateSlaPolicy(self, request: pb.SlaPolicy, context: Context) -> pb.SlaPolicy:
        ident = _writer("change SLA policies")
        return await self._save_policy(ident, request, self._ids.new_str(), create=True)

    async def UpdateSlaPolicy(self, request: pb.SlaPolicy, context: Context) -> pb.SlaPolicy:
        ident = _writer("change SLA policies")
        pid = parse_uuid(request.id, "id")
        await self._repo.policy(self._repo.pool, ident.tenant_id, pid)  # NotFound first
        return await self._save_policy(ident, request, str(pid), create=False)

    async def DeleteSlaPolicy(
        self, request: pb.DeleteSlaPolicyRequest, context: Context
    ) -> pb.DeleteSlaPolicyResponse:
        ident = _writer("change SLA policies")
        pid = parse_uuid(request.policy_id, "policy_id")
        async with self._db.transaction() as conn:
            await self._repo.delete_policy(conn, ident.tenant_id, pid)
        self._changed(ident.tenant_id)
        return pb.DeleteSlaPolicyResponse()

    # -- a ticket's SLA ------------------------------------------------------------------

    async def GetTicketSla(self, request: pb.GetTicketSlaRequest, context: Context) -> pb.TicketSla:
        ident = identity.require_tenant()
        tid = str(parse_uuid(request.ticket_id, "ticket_id"))
        found = await self._clocks.ticket_sla(self._repo.pool, ident.tenant_id, tid)
        if found is None:
            return pb.TicketSla(ticket_id=tid, state="none")
        policy, sla = found
        return ticket_sla_pb(tid, policy, sla)
