"""reporting's composition root (issue 19): its own database of facts and rollups, kept
from every service's events (never reading another service's tables), the reports and
live figures it answers over gRPC, and the export jobs it runs.

Each part is wired by one module (`wire(...)` of facts, reports, live, exports)."""

from __future__ import annotations

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from . import facts_wiring


class ReportingSettings(rt_settings.ServiceSettings):
    # facts and rollups (rfacts): how long an inbox's calendar is kept before asking
    # routing again; how often the roller looks for facts to fold (it is also woken)
    calendar_ttl_s: float = 60.0
    roll_every_s: float = 1.0


async def main() -> int:
    settings = rt_settings.load(ReportingSettings)
    rt = ServiceRuntime("reporting", settings)
    await rt.open_database()
    await rt.open_bus()
    rt.grpc_server()
    await facts_wiring.wire(
        rt, calendar_ttl_s=settings.calendar_ttl_s, roll_every_s=settings.roll_every_s
    )
    return await rt.serve()
