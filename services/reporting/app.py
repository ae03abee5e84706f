"""reporting's composition root (issue 19): its own database of facts and rollups, kept
from every service's events (never reading another service's tables), the reports and
live figures it answers over gRPC, and the export jobs it runs.

Each part is wired by one module (`wire(...)` of facts, reports, live, exports)."""

from __future__ import annotations

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime


class ReportingSettings(rt_settings.ServiceSettings):
    pass


async def main() -> int:
    settings = rt_settings.load(ReportingSettings)
    rt = ServiceRuntime("reporting", settings)
    await rt.open_database()
    await rt.open_bus()
    rt.grpc_server()
    return await rt.serve()
