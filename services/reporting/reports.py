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
from . import survey_comments as sc
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
    if req.report == ratings.REPORT:  # never the rollups: reporting's ratings table
        source = ratings.SOURCE
    else:
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
        inboxes, scope = await self._scope(viewer, req.inbox_id)
        # the tenant's zone: its day rollups answer when the report is in it
        day_zone = await self._days.ready_zone(
            viewer.tenant_id, await self._peers.tenant_zone(viewer.tenant_id)
        )
        q = query_of(req, viewer.time_zone, self._clock.now(), scope, day_zone)
        return await self.compute(
            viewer.tenant_id, q, inboxes, req.inbox_id, with_comments=req.with_comments
        )

    async def _scope(
        self, viewer: Identity, inbox_id: str
    ) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...] | None]:
        """The inboxes counted (id, name) and the filter (None: all the tenant's); an
        inbox the viewer may not see (or that does not exist) is NOT_FOUND."""
        visible = await self._peers.visible_inboxes(viewer)
        if inbox_id:
            wanted = str(parse_uuid(inbox_id, "inbox_id"))
            named = [i for i in visible if i[0] == wanted]
            if not named or not viewer.sees_inbox(wanted):
                raise NotFound("no such inbox", field="inbox_id")
            return tuple(named), (wanted,)
        return tuple(visible), None if viewer.inboxes is None else tuple(i for i, _ in visible)

    async def comments(
        self, viewer: Identity, req: pb.ListSurveyCommentsRequest
    ) -> pb.SurveyComments:
        """The surveys' comments in the viewer's inboxes, newest first (see_reports)."""
        require_permission(viewer, permissions.SEE_REPORTS, "see reports")
        zone = periods.zone_of(req.time_zone or viewer.time_zone or "UTC")
        r = periods.report_range(getattr(req, "from"), req.to, "", zone, self._clock.now())
        operator = parse_uuid(req.operator_id, "operator_id") if req.operator_id else None
        limit = req.limit or sc.PAGE_DEFAULT
        if not 1 <= limit <= sc.PAGE_MAX:
            raise InvalidArgument(f"limit is 1 to {sc.PAGE_MAX}", field="limit")
        after = sc.read_cursor(req.cursor) if req.cursor else None
        inboxes, scope = await self._scope(viewer, req.inbox_id)
        names = await self._peers.operator_names(viewer.tenant_id)
        want = sc.Page(r.start, r.end, scope, operator, after, limit + 1)
        async with self._pool.acquire() as conn:
            found = await sc.page(conn, viewer.tenant_id, want)
        inbox_names = dict(inboxes)
        return pb.SurveyComments(
            comments=[
                pb.SurveyComment(
                    survey_id=str(c.survey_id),
                    ticket_id=str(c.ticket_id),
                    ticket_number=c.ticket_number,
                    inbox_id=c.inbox_id,
                    inbox_name=inbox_names.get(c.inbox_id, ""),
                    rating=c.rating,
                    comment=c.comment,
                    operator_id=c.operator_id,
                    operator_name=sc.operator_name(c, names),
                    answered_at=local_iso(c.answered_at, zone),
                )
                for c in found[:limit]
            ],
            next_cursor=sc.cursor_of(found[limit - 1]) if len(found) > limit else "",
        )

    async def compute(
        self,
        tenant: str,
        q: Query,
        inboxes: tuple[tuple[str, str], ...],
        inbox_id: str = "",
        *,
        with_comments: bool = False,
    ) -> Report:
        names: dict[str, str] = {}
        texts: dict[str, tuple[str, str]] = {}
        comments: list[sc.Comment] = []
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
                found += await ratings_store.question_cells(conn, tenant, q)
                texts = await ratings_store.question_texts(conn, tenant, q)
                if with_comments:  # the CSV's: the chart and its JSON never show them
                    newest = sc.Page(q.range.start, q.range.end, q.inbox_ids, limit=sc.CSV_MAX)
                    comments = await sc.page(conn, tenant, newest)
        ctx = report_build.Context()
        if q.report == "response_times":
            ids = sorted({i for i, _ in inboxes} | {c.inbox_id for c in found})
            ctx = report_build.Context(thresholds=await self._peers.thresholds(tenant, ids))
        elif q.report == "operators":
            ctx = report_build.Context(operator_names=await self._peers.operator_names(tenant))
        elif q.report == ratings.REPORT:
            ctx = report_build.Context(
                operator_names=names, inbox_names=dict(inboxes), question_texts=texts
            )
        tables = report_build.BUILDERS[q.report](q, found, ctx)
        if q.report == ratings.REPORT and with_comments:  # the CSV's last section
            tables += (sc.table(q, comments, names, dict(inboxes)),)
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
