"""reporting's composition root (issue 19): its own database of facts and rollups, kept
from every service's events (never reading another service's tables), the reports and
live figures it answers over gRPC, and the export jobs it runs.

Each part is wired by one module (`wire(...)` of facts, reports, live, exports)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from . import exports_wiring, facts_wiring, live_wiring, reports_wiring


class ReportingSettings(rt_settings.ServiceSettings):
    # facts and rollups (rfacts): how long an inbox's calendar is kept before asking
    # routing again; how often the roller looks for facts to fold (it is also woken)
    calendar_ttl_s: float = 60.0
    roll_every_s: float = 1.0
    # exports (rexport): where the files are written (a volume in Kubernetes), how many
    # rows / bytes of mail are asked of the owners per batch (one checkpoint each), and
    # a pause between batches to spare the owners' databases
    export_dir: Path = Path("/var/lib/switchboard/exports")
    export_batch_rows: int = Field(default=5000, ge=1, le=10_000)
    export_batch_bytes: int = Field(default=2 * 1024 * 1024, ge=1, le=64 * 1024 * 1024)
    export_pause_s: float = Field(default=0.0, ge=0, le=60)


async def main() -> int:
    settings = rt_settings.load(ReportingSettings)
    rt = ServiceRuntime("reporting", settings)
    db = await rt.open_database()
    await rt.open_bus()
    server = rt.grpc_server()
    await facts_wiring.wire(
        rt, calendar_ttl_s=settings.calendar_ttl_s, roll_every_s=settings.roll_every_s
    )
    await live_wiring.wire(rt, db, server)  # rlive: RPT-5, RPT-7
    reports_wiring.wire(rt, db, server)  # rreports: RPT-1…4, RPT-6
    exports_wiring.wire(rt, settings)  # rexport: exports (DAT-1)
    return await rt.serve()
