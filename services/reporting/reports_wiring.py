"""Wiring of the reports (issue 19 §3: RPT-1…4, RPT-6) into reporting's process: the
ReportingService API over reporting's rollups and facts. `wire` returns the Reports runner
(the aggregate CSV export uses it in process)."""

from __future__ import annotations

from switchboard.v1 import reporting_pb2, reporting_pb2_grpc

from services.runtime import identity
from services.runtime.db import Database
from services.runtime.grpc_server import Context, GrpcServer
from services.runtime.service import ServiceRuntime

from .report_peers import ReportPeers
from .reports import Reports, report_pb


class ReportingApi(reporting_pb2_grpc.ReportingServiceServicer):
    def __init__(self, reports: Reports) -> None:
        self._reports = reports

    async def GetReport(
        self, request: reporting_pb2.GetReportRequest, context: Context
    ) -> reporting_pb2.Report:
        viewer = identity.require_operator()
        return report_pb(await self._reports.run(viewer, request))

    async def ListSurveyComments(
        self, request: reporting_pb2.ListSurveyCommentsRequest, context: Context
    ) -> reporting_pb2.SurveyComments:
        return await self._reports.comments(identity.require_operator(), request)


def wire(rt: ServiceRuntime, db: Database, server: GrpcServer) -> Reports:
    reports = Reports(db.pool, ReportPeers(rt.channel("accounts"), rt.channel("tickets")), rt.clock)
    server.add(
        reporting_pb2_grpc.add_ReportingServiceServicer_to_server,
        ReportingApi(reports),
        reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name,
    )
    return reports
