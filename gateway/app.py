"""The gateway's composition root: settings, `Deps`, the middlewares, the route modules,
the lifecycle and `main`. No handler lives here (tests/unit/test_gateway_modules.py):
routes are in the `routes_*` modules, which read requests with request.py and answer
with responses.py (docs/development.md, "Adding a route")."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware

from services.runtime import log
from services.runtime import settings as rt_settings
from services.runtime.metrics import Metrics, http_middleware

from . import (
    routes_accounts,
    routes_approvals,
    routes_assignment,
    routes_campaigns,
    routes_channels,
    routes_chat,
    routes_compose,
    routes_contact_lists,
    routes_contacts,
    routes_exports,
    routes_ingestion,
    routes_line,
    routes_live_reports,
    routes_locks,
    routes_lookup,
    routes_meta,
    routes_notices,
    routes_notifications,
    routes_operations,
    routes_outbound,
    routes_reports,
    routes_rules,
    routes_segments,
    routes_sla,
    routes_suppressions,
    routes_surveys,
    routes_tickets,
    routes_unsubscribe,
    routes_webhooks,
    static,
)
from .access import request_id_middleware, security_headers
from .deps import DEPS, Deps, GatewaySettings
from .errors import error_middleware
from .responses import json_middleware

__all__ = ["DEPS", "Deps", "GatewaySettings", "build_app", "main"]

# every module that adds routes, in registration order (static last: its catch-all)
ROUTE_MODULES = (
    routes_meta,
    routes_accounts,
    routes_operations,
    routes_notices,
    routes_tickets,
    routes_locks,
    routes_contacts,
    routes_contact_lists,
    routes_lookup,
    routes_segments,
    routes_ingestion,
    routes_channels,
    routes_compose,
    routes_outbound,
    routes_approvals,
    routes_assignment,
    routes_sla,
    routes_webhooks,  # before routes_rules: /rules/webhook-* before /rules/{rule_id}
    routes_rules,
    routes_live_reports,  # rlive: /reports/live-* before rreports' /reports/{report}
    routes_reports,
    routes_exports,
    routes_surveys,
    routes_campaigns,
    routes_suppressions,
    routes_unsubscribe,
    routes_notifications,
    routes_line,
    routes_chat,
    static,
)


def middlewares(deps: Deps) -> list[Middleware]:
    """Every request passes these, outermost first."""
    return [
        http_middleware(deps.metrics),  # first: it sees every request's final status
        request_id_middleware(deps.ids),
        error_middleware(deps.ids),
        deps.access.middleware(),  # the caller, the access rules, the operation log
        json_middleware,  # JSON answers serialised and masked (responses.py)
    ]


def build_app(settings: GatewaySettings, metrics: Metrics | None = None) -> web.Application:
    deps = Deps(settings, metrics or Metrics("gateway"))
    app = web.Application(middlewares=middlewares(deps), client_max_size=1024 * 1024)
    app[DEPS] = deps
    app.on_response_prepare.append(security_headers(settings.hsts))
    for module in ROUTE_MODULES:
        module.add_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        deps.bus.on_state(deps.live.bus_state)
        await deps.bus.connect()
        await deps.live.start(deps.bus.nc)
        yield
        await deps.live.stop()
        await deps.access.drain()
        await deps.bus.drain()
        for ch in deps.channels.values():
            await ch.close()
        await deps.redis.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


async def main() -> int:
    settings = rt_settings.load(GatewaySettings)
    log.configure("gateway", settings.effective_log_format, settings.log_level)
    logger = log.get("gateway")
    metrics = Metrics("gateway")
    app = build_app(settings, metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    metrics_at = settings.metrics_address("gateway")  # its own port, not the public one
    if metrics_at is not None:
        try:
            port = await metrics.serve(*metrics_at)
        except OSError as exc:
            logger.error("cannot serve metrics", error=str(exc))
            await runner.cleanup()
            return 2
        logger.info("metrics listening", host=metrics_at[0], port=port)
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    logger.info("http listening", host=settings.http_host, port=settings.http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    await runner.shutdown()
    await runner.cleanup()
    await metrics.close()
    logger.info("stopped")
    return 0
