"""The segments part of TicketsService (issue 20, OUT-6): saved queries over the tenant's
contacts and their live count (manage_outreach). A bad condition is INVALID_ARGUMENT
naming `conditions[i].field|op|value`, and nothing is stored."""

from __future__ import annotations

from collections.abc import Sequence

from switchboard.v1 import tickets_pb2

from services.runtime import log
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import outreach_repo, segment_repo, segment_rules
from .api_outreach import require_outreach
from .deps import Deps
from .segment_rules import Query


def _raw(conditions: Sequence[tickets_pb2.SegmentCondition]) -> list[tuple[str, str, str]]:
    return [(c.field, c.op, c.value_json) for c in conditions]


class SegmentsApi:
    _deps: Deps

    async def _checked(
        self, tenant_id: str, match: str, conditions: Sequence[tickets_pb2.SegmentCondition]
    ) -> Query:
        defs = await outreach_repo.fields(self._deps.db.pool, tenant_id)
        return segment_rules.check(match, _raw(conditions), defs)

    async def ListSegments(
        self, request: tickets_pb2.ListSegmentsRequest, context: Context
    ) -> tickets_pb2.ListSegmentsResponse:
        ident = require_outreach()
        return tickets_pb2.ListSegmentsResponse(
            segments=await segment_repo.segments(self._deps.db.pool, ident.tenant_id)
        )

    async def CreateSegment(
        self, request: tickets_pb2.SegmentInput, context: Context
    ) -> tickets_pb2.Segment:
        ident = require_outreach()
        name = segment_rules.clean_name(request.name)
        match = request.match if request.HasField("match") else "all"
        query = await self._checked(ident.tenant_id, match, request.conditions)
        d = self._deps
        async with d.db.transaction() as conn:
            out = await segment_repo.create(
                conn, ident.tenant_id, d.ids.new(), name, query, d.clock.now()
            )
        log.get("tickets.outreach").info("segment created", segment_id=out.id)
        return out

    async def GetSegment(
        self, request: tickets_pb2.SegmentRef, context: Context
    ) -> tickets_pb2.Segment:
        ident = require_outreach()
        segment_id = parse_uuid(request.segment_id, "segment_id")
        return segment_repo.segment_pb(
            await segment_repo.row(self._deps.db.pool, ident.tenant_id, segment_id)
        )

    async def UpdateSegment(
        self, request: tickets_pb2.SegmentInput, context: Context
    ) -> tickets_pb2.Segment:
        ident = require_outreach()
        segment_id = parse_uuid(request.segment_id, "segment_id")
        d = self._deps
        async with d.db.transaction() as conn:
            current = await segment_repo.row(conn, ident.tenant_id, segment_id)
            name = segment_rules.clean_name(
                request.name if request.HasField("name") else current["name"]
            )
            match = request.match if request.HasField("match") else current["match"]
            if request.set_conditions:
                query = await self._checked(ident.tenant_id, match, request.conditions)
            else:
                saved = segment_repo.query_of(current)
                query = Query(match, saved.conditions)
                if match not in ("all", "any"):
                    query = segment_rules.check(match, [], [])  # refuses the match
            return await segment_repo.update(
                conn, ident.tenant_id, segment_id, name, query, d.clock.now()
            )

    async def DeleteSegment(
        self, request: tickets_pb2.SegmentRef, context: Context
    ) -> tickets_pb2.DeleteOutreachResponse:
        ident = require_outreach()
        segment_id = parse_uuid(request.segment_id, "segment_id")
        async with self._deps.db.transaction() as conn:
            await segment_repo.delete(conn, ident.tenant_id, segment_id)
        return tickets_pb2.DeleteOutreachResponse()

    async def CountSegment(
        self, request: tickets_pb2.CountSegmentRequest, context: Context
    ) -> tickets_pb2.SegmentCount:
        ident = require_outreach()
        d = self._deps
        if request.segment_id:
            segment_id = parse_uuid(request.segment_id, "segment_id")
            where, args = await segment_repo.compiled(d, ident.tenant_id, segment_id, first_arg=2)
        else:
            query = await self._checked(ident.tenant_id, request.match, request.conditions)
            where, args = await segment_repo.compile_query(d, ident.tenant_id, query, first_arg=2)
        out = tickets_pb2.SegmentCount(
            count=await outreach_repo.count_audience(d.db.pool, ident.tenant_id, where, args)
        )
        out.counted_at.FromDatetime(d.clock.now())
        return out
