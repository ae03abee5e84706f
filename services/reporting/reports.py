"""Running a report (RPT-1…4, RPT-6): the request validated into a Query (every bad
parameter an INVALID_ARGUMENT naming it), the viewer's inboxes, the store's cells, the
tables — and the Report as the API's message. Used by the gRPC servicer and, in process, by
the aggregate CSV export."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import asyncpg
from switchboard.v1 import reporting_pb2 as pb

from services.runtime import permissions
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.identity import Identity, require_permission
from services.runtime.ids import parse_uuid

from . import day_rollups, periods, ratings, ratings_store, report_build, report_store
from .periods import local_iso
from .report_model import BASES, REPORTS, TOP_DEFAULT, TOP_MAX, Query, Report, Value
from .report_peers import ReportPeers


def query_of(
    req: pb.GetReportRequest,
    viewer_zone: str,
    now: datetime,
    inbox_ids: tuple[str, ...] | None,
    day_zone: str = "",
) -> Query:
    """The validated query (I/O-free): report, zone, range and periods, basis, top;
    `day_zone` the zone the tenant's day rollups are ready in ("" none)."""
    if req.report not in REPORTS:
        raise InvalidArgument(f"unknown report; one of {', '.join(REPORTS)}", field="report")
    zone = periods.zone_of(req.time_zone or viewer_zone or "UTC")
    basis = req.basis or "wall"
    if basis not in BASES:
        raise InvalidArgument("basis is wall or business", field="basis")
    top = req.top or TOP_DEFAULT
    if not 1 <= top <= TOP_MAX:
        raise InvalidArgument(f"top is 1 to {TOP_MAX}", field="top")
    r = periods.report_range(getattr(req, "from"), req.to, req.granularity, zone, now)
    bounds = periods.periods(r)
    days = zone if day_zone and zone.key == day_zone else None
    source = periods.FACTS if req.from_facts else periods.source_for(bounds, days)
    return Query(req.report, r, tuple(bounds), basis, inbox_ids, source, top)


class Reports:
    def __init__(self, pool: asyncpg.Pool, peers: ReportPeers, clock: Clock) -> None:
        self._pool = pool
        self._peers = peers
        self._clock = clock
        self._days = day_rollups.DayZones(pool)

    async def run(self, viewer: Identity, req: pb.GetReportRequest) -> Report:
        """The report as `viewer` may see it: needs see_reports; an inbox they may not see
        (or that does not exist) is NOT_FOUND."""
        require_permission(viewer, permissions.SEE_REPORTS, "see reports")
        query_of(req, viewer.time_zone, self._clock.now(), None)  # bad parameters first
        visible = await self._peers.visible_inboxes(viewer)
        if req.inbox_id:
            wanted = str(parse_uuid(req.inbox_id, "inbox_id"))
            named = [i for i in visible if i[0] == wanted]
            if not named or not viewer.sees_inbox(wanted):
                raise NotFound("no such inbox", field="inbox_id")
            inboxes = tuple(named)
            scope: tuple[str, ...] | None = (wanted,)
        else:
            inboxes = tuple(visible)
            scope = None if viewer.inboxes is None else tuple(i for i, _ in visible)
        # the tenant's zone: its day rollups answer when the report is in it
        day_zone = await self._days.ready_zone(
            viewer.tenant_id, await self._peers.tenant_zone(viewer.tenant_id)
        )
        q = query_of(req, viewer.time_zone, self._clock.now(), scope, day_zone)
        return await self.compute(viewer.tenant_id, q, inboxes, req.inbox_id)

    async def compute(
        self,
        tenant: str,
        q: Query,
        inboxes: tuple[tuple[str, str], ...],
        inbox_id: str = "",
    ) -> Report:
        names: dict[str, str] = {}
        if q.report == ratings.REPORT:  # the resolvers' names, asked before the connection
            names = dict(await self._peers.operator_names(tenant))
        async with (
            self._pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            # one snapshot: the day rows still in the zone they were ready in
            if q.source == periods.DAY and not await day_rollups.ready_for(
                conn, tenant, q.range.zone.key
            ):
                q = replace(q, source=periods.source_for(list(q.periods)))
            found = [
                c
                for want in report_build.WANTS[q.report]
                for c in await report_store.cells(conn, tenant, q, want)
            ]
            if q.report == ratings.REPORT:
                found += await ratings_store.cells(conn, tenant, q)
                names.update(await ratings_store.names_missing(conn, tenant, found, names))
        ctx = report_build.Context()
        if q.report == "response_times":
            ids = sorted({i for i, _ in inboxes} | {c.inbox_id for c in found})
            ctx = report_build.Context(thresholds=await self._peers.thresholds(tenant, ids))
        elif q.report == "operators":
            ctx = report_build.Context(operator_names=await self._peers.operator_names(tenant))
        elif q.report == ratings.REPORT:
            ctx = report_build.Context(operator_names=names, inbox_names=dict(inboxes))
        tables = report_build.BUILDERS[q.report](q, found, ctx)
        return Report(q.report, q, inboxes, inbox_id, tables)


def _value(v: Value) -> pb.ReportValue:
    if v is None:
        return pb.ReportValue()
    if isinstance(v, str):
        return pb.ReportValue(text=v)
    if isinstance(v, int):
        return pb.ReportValue(count=v)
    return pb.ReportValue(number=v)


def report_pb(r: Report) -> pb.Report:
    q = r.query
    return pb.Report(
        report=r.report,
        to=local_iso(q.range.end, q.range.zone),
        granularity=q.range.granularity,
        time_zone=q.range.zone.key,
        basis=q.basis,
        inbox_id=r.inbox_id,
        inboxes=[pb.ReportInbox(id=i, name=n) for i, n in r.inboxes],
        source=q.source,
        tables=[
            pb.ReportTable(
                name=t.name,
                columns=t.columns,
                rows=[pb.ReportRow(values=[_value(v) for v in row]) for row in t.rows],
            )
            for t in r.tables
        ],
        **{"from": local_iso(q.range.start, q.range.zone)},
    )
