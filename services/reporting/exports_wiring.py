"""Exports' part of reporting (issue 19, DAT-1): the export worker in the background and
ExportsService on the gRPC server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.v1 import reporting_exports_pb2, reporting_exports_pb2_grpc

from services.runtime.service import ServiceRuntime

from .export_files import ExportFiles
from .exports_api import ExportsApi
from .exports_repo import ExportsRepo
from .exports_worker import ExportWorker, WorkerSettings
from .report_peers import ReportPeers
from .reports import Reports

if TYPE_CHECKING:
    from .app import ReportingSettings


def wire(rt: ServiceRuntime, settings: ReportingSettings) -> ExportWorker:
    """Needs the database opened and the gRPC server made."""
    if rt.db is None or rt.grpc is None:
        raise RuntimeError("exports need reporting's database and gRPC server")
    export_dir = settings.export_dir
    export_dir.mkdir(parents=True, exist_ok=True)
    repo = ExportsRepo(rt.db.pool)
    # report_csv runs the reports as the chart does (rreports), in process
    reports = Reports(
        rt.db.pool, ReportPeers(rt.channel("accounts"), rt.channel("tickets")), rt.clock
    )
    files = ExportFiles(export_dir)
    worker = ExportWorker(
        repo,
        files,
        rt.channel("tickets"),
        rt.channel("ingestion"),
        rt.clock,
        WorkerSettings(
            settings.export_batch_rows, settings.export_batch_bytes, settings.export_pause_s
        ),
        reports,
    )
    rt.add_background(worker.name, worker.start, worker.stop)
    rt.grpc.add(
        reporting_exports_pb2_grpc.add_ExportsServiceServicer_to_server,
        ExportsApi(repo, files, worker, rt.channel("accounts"), rt.clock, rt.ids, reports),
        reporting_exports_pb2.DESCRIPTOR.services_by_name["ExportsService"].full_name,
    )
    return worker
