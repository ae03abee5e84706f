"""OutboundService administration (manage_inboxes): SMTP routes with their passwords
sealed at rest, DKIM keys per domain, and each inbox's automatic replies."""

from __future__ import annotations

import json
import uuid

import asyncpg
from switchboard.v1 import common_pb2, outbound_pb2, outbound_pb2_grpc

from services.runtime import identity, log, permissions
from services.runtime.errors import AlreadyExists, InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import domain, signing
from .api import Deps, SendsApi
from .records import AutoReplySettings, DkimKey, Route, auto_reply_of, dkim_key_of, route_of
from .smtp import Hop


def _admin() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_INBOXES, "manage sending")
    return ident


def route_pb(row: Route) -> outbound_pb2.SmtpRoute:
    out = outbound_pb2.SmtpRoute(
        id=str(row.id),
        name=row.name,
        scope=row.scope,
        inbox_id=str(row.inbox_id or ""),
        domain=row.domain or "",
        host=row.host,
        port=row.port,
        security=row.security,
        username=row.username,
        has_password=row.password_sealed is not None,
        verify_certificate=row.verify_certificate,
    )
    out.updated_at.FromDatetime(row.updated_at)
    return out


def dkim_pb(row: DkimKey) -> outbound_pb2.DkimKey:
    out = outbound_pb2.DkimKey(
        domain=row.domain,
        selector=row.selector,
        dns_name=signing.dns_name(row.domain, row.selector),
        dns_txt=signing.dns_txt(row.public_key_b64),
    )
    out.created_at.FromDatetime(row.created_at)
    return out


def auto_reply_pb(inbox_id: str, row: AutoReplySettings | None) -> outbound_pb2.AutoReplySettings:
    if row is None:
        return outbound_pb2.AutoReplySettings(
            inbox_id=inbox_id, enabled=False, mode="outside_hours", time_zone="UTC", period_hours=24
        )
    hours = json.loads(row.hours) if isinstance(row.hours, str) else row.hours
    return outbound_pb2.AutoReplySettings(
        inbox_id=inbox_id,
        enabled=row.enabled,
        mode=row.mode,
        hours=[outbound_pb2.BusinessHours(**h) for h in hours],
        time_zone=row.time_zone,
        template_id=str(row.template_id or ""),
        period_hours=row.period_hours,
        form_template_id=str(row.form_template_id or ""),
    )


class OutboundApi(SendsApi, outbound_pb2_grpc.OutboundServiceServicer):
    def __init__(self, deps: Deps) -> None:
        super().__init__(deps)
        self._admin_log = log.get("outbound.admin")

    async def _known_inbox(self, ident: Identity, raw_id: str) -> uuid.UUID:
        inbox_id = parse_uuid(raw_id, "inbox_id")
        inboxes = await self._d.peers.inboxes(Identity(tenant_id=ident.tenant_id).metadata())
        if str(inbox_id) not in {i.id for i in inboxes}:
            raise NotFound("no such inbox", field="inbox_id")
        return inbox_id

    # -- routes --------------------------------------------------------------------------

    async def ListSmtpRoutes(
        self, request: outbound_pb2.ListSmtpRoutesRequest, context: Context
    ) -> outbound_pb2.ListSmtpRoutesResponse:
        ident = _admin()
        rows = await self._d.repo.routes(ident.tenant_id)
        return outbound_pb2.ListSmtpRoutesResponse(routes=[route_pb(r) for r in rows])

    async def PutSmtpRoute(
        self, request: outbound_pb2.SmtpRouteWrite, context: Context
    ) -> outbound_pb2.SmtpRoute:
        ident = _admin()
        d = self._d
        name, clean_domain = domain.check_route(
            name=request.name,
            scope=request.scope,
            inbox_id=request.inbox_id,
            domain=request.domain,
            host=request.host,
            port=request.port,
            security=request.security,
            username=request.username,
        )
        # where the host leads (issue 16): checked when saved and tried, and again at
        # every connection
        await d.dispatcher.smtp.policy.check_host(request.host.strip(), "host")
        inbox_id = (
            await self._known_inbox(ident, request.inbox_id) if request.scope == "inbox" else None
        )
        if request.HasField("password") and len(request.password) > 500:
            raise InvalidArgument("password is too long", field="password")
        tenant = uuid.UUID(ident.tenant_id)
        route_id = parse_uuid(request.route_id, "route_id") if request.route_id else d.ids.new()
        now = d.clock.now()
        sealed: bytes | None = None
        keep_password = not request.HasField("password")
        if not keep_password and request.password:
            sealed = d.box.seal(request.password, str(route_id))
        try:
            if request.route_id:
                row = await d.repo.pool.fetchrow(
                    "UPDATE smtp_routes SET name = $3, scope = $4, inbox_id = $5, domain = $6, "
                    "host = $7, port = $8, security = $9, username = $10, "
                    "password_sealed = CASE WHEN $11 THEN password_sealed ELSE $12 END, "
                    "verify_certificate = $13, updated_at = $14 "
                    "WHERE tenant_id = $1 AND id = $2 RETURNING *",
                    tenant,
                    route_id,
                    name,
                    request.scope,
                    inbox_id,
                    clean_domain or None,
                    request.host.strip(),
                    request.port,
                    request.security,
                    request.username,
                    keep_password,
                    sealed,
                    request.verify_certificate,
                    now,
                )
                if row is None:
                    raise NotFound("no such route", field="route_id")
                route = route_of(row)
            else:
                row = await d.repo.pool.fetchrow(
                    "INSERT INTO smtp_routes (tenant_id, id, name, scope, inbox_id, domain, host, "
                    "port, security, username, password_sealed, verify_certificate, created_at, "
                    "updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$13) "
                    "RETURNING *",
                    tenant,
                    route_id,
                    name,
                    request.scope,
                    inbox_id,
                    clean_domain or None,
                    request.host.strip(),
                    request.port,
                    request.security,
                    request.username,
                    sealed,
                    request.verify_certificate,
                    now,
                )
                route = route_of(row)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(
                "a route for this inbox, domain or default exists already: change that one",
                field="scope",
            ) from None
        d.routes.forget(ident.tenant_id)
        self._admin_log.info(
            "smtp route saved", route_id=str(route_id), scope=request.scope, host=route.host
        )
        return route_pb(route)

    async def TestSmtpRoute(
        self, request: outbound_pb2.TestSmtpRouteRequest, context: Context
    ) -> common_pb2.ConnectionTestResult:
        ident = _admin()
        d = self._d
        stored: Hop | None = None
        if request.route_id:
            wanted = str(parse_uuid(request.route_id, "route_id"))
            d.routes.forget(ident.tenant_id)
            route = next((r for r in await d.routes.of(ident.tenant_id) if r.id == wanted), None)
            if route is None:
                raise NotFound("no such route", field="route_id")
            stored = Hop.of(route)
        if stored is not None and not request.HasField("settings"):
            hop = stored
        else:
            st = request.settings
            name, _ = domain.check_route(
                name=st.name or "test",
                scope=st.scope,
                inbox_id=st.inbox_id,
                domain=st.domain,
                host=st.host,
                port=st.port,
                security=st.security,
                username=st.username,
            )
            if len(st.password) > 500:
                raise InvalidArgument("password is too long", field="password")
            await d.dispatcher.smtp.policy.check_host(st.host.strip(), "host")
            # edited settings of a stored route: its password unless another is given
            keep = stored is not None and not st.HasField("password")
            hop = Hop(
                name,
                st.host.strip(),
                st.port,
                st.security,
                st.username,
                stored.password if keep and stored is not None else st.password,
                st.verify_certificate,
            )
        ok, step, detail, elapsed_ms = await d.dispatcher.smtp.probe(hop)
        self._admin_log.info(
            "smtp route tested",
            route_id=request.route_id,
            host=hop.host,
            port=hop.port,
            ok=ok,
            step=step,
        )
        return common_pb2.ConnectionTestResult(
            ok=ok, step=step, detail=detail, elapsed_ms=elapsed_ms
        )

    async def DeleteSmtpRoute(
        self, request: outbound_pb2.DeleteSmtpRouteRequest, context: Context
    ) -> outbound_pb2.DeleteSmtpRouteResponse:
        ident = _admin()
        status = await self._d.repo.pool.execute(
            "DELETE FROM smtp_routes WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(ident.tenant_id),
            parse_uuid(request.route_id, "route_id"),
        )
        if status != "DELETE 1":
            raise NotFound("no such route", field="route_id")
        self._d.routes.forget(ident.tenant_id)
        return outbound_pb2.DeleteSmtpRouteResponse()

    # -- DKIM ----------------------------------------------------------------------------

    async def ListDkimKeys(
        self, request: outbound_pb2.ListDkimKeysRequest, context: Context
    ) -> outbound_pb2.ListDkimKeysResponse:
        ident = _admin()
        rows = await self._d.repo.dkim_keys(ident.tenant_id)
        return outbound_pb2.ListDkimKeysResponse(keys=[dkim_pb(r) for r in rows])

    async def PutDkimKey(
        self, request: outbound_pb2.PutDkimKeyRequest, context: Context
    ) -> outbound_pb2.DkimKey:
        ident = _admin()
        d = self._d
        dom, selector = domain.check_dkim_target(request.domain, request.selector)
        pem = request.private_key_pem.strip() or signing.generate_pem()
        if len(pem) > 20_000:
            raise InvalidArgument("private_key_pem is too long", field="private_key_pem")
        public = signing.public_key_b64(pem)
        sealed = d.box.seal(pem, f"{ident.tenant_id}:{dom}")
        row = await d.repo.pool.fetchrow(
            "INSERT INTO dkim_keys (tenant_id, domain, selector, private_key_sealed, "
            "public_key_b64, created_at) VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (tenant_id, "
            "domain) DO UPDATE SET selector = excluded.selector, private_key_sealed = "
            "excluded.private_key_sealed, public_key_b64 = excluded.public_key_b64, "
            "created_at = excluded.created_at RETURNING *",
            uuid.UUID(ident.tenant_id),
            dom,
            selector,
            sealed,
            public,
            d.clock.now(),
        )
        self._admin_log.info("dkim key saved", domain=dom, selector=selector)
        return dkim_pb(dkim_key_of(row))

    async def DeleteDkimKey(
        self, request: outbound_pb2.DeleteDkimKeyRequest, context: Context
    ) -> outbound_pb2.DeleteDkimKeyResponse:
        ident = _admin()
        status = await self._d.repo.pool.execute(
            "DELETE FROM dkim_keys WHERE tenant_id = $1 AND domain = $2",
            uuid.UUID(ident.tenant_id),
            request.domain.strip().lower(),
        )
        if status != "DELETE 1":
            raise NotFound("no DKIM key for this domain", field="domain")
        return outbound_pb2.DeleteDkimKeyResponse()

    # -- automatic replies ---------------------------------------------------------------

    async def GetAutoReply(
        self, request: outbound_pb2.GetAutoReplyRequest, context: Context
    ) -> outbound_pb2.AutoReplySettings:
        ident = _admin()
        inbox_id = await self._known_inbox(ident, request.inbox_id)
        row = await self._d.repo.auto_reply(ident.tenant_id, inbox_id)
        return auto_reply_pb(str(inbox_id), row)

    async def SetAutoReply(
        self, request: outbound_pb2.AutoReplySettings, context: Context
    ) -> outbound_pb2.AutoReplySettings:
        ident = _admin()
        d = self._d
        inbox_id = await self._known_inbox(ident, request.inbox_id)
        mode = request.mode or "outside_hours"
        if mode not in ("always", "outside_hours"):
            raise InvalidArgument("mode must be always or outside_hours", field="mode")
        hours = domain.check_hours([domain.Hours(h.weekday, h.start, h.end) for h in request.hours])
        tz = request.time_zone or "UTC"
        domain.zone(tz)
        period = request.period_hours or 24
        if not 1 <= period <= 24 * 30:
            raise InvalidArgument("period_hours must be between 1 and 720", field="period_hours")
        md = ident.metadata()
        template_ids: list[uuid.UUID | None] = []
        for field, raw in (
            ("template_id", request.template_id),
            ("form_template_id", request.form_template_id),
        ):
            if not raw:
                template_ids.append(None)
                continue
            template_ids.append(parse_uuid(raw, field))
            await d.peers.get_template(md, raw, field)
        if request.enabled and template_ids[0] is None and template_ids[1] is None:
            raise InvalidArgument(
                "an automatic reply needs a template (template_id or form_template_id)",
                field="template_id",
            )
        row = await d.repo.pool.fetchrow(
            "INSERT INTO auto_reply_settings (tenant_id, inbox_id, enabled, mode, hours, "
            "time_zone, template_id, period_hours, form_template_id, updated_at) VALUES "
            "($1,$2,$3,$4,$5::jsonb,$6,$7,$8,$9,$10) ON CONFLICT (tenant_id, inbox_id) DO UPDATE "
            "SET enabled = excluded.enabled, mode = excluded.mode, hours = excluded.hours, "
            "time_zone = excluded.time_zone, template_id = excluded.template_id, "
            "period_hours = excluded.period_hours, form_template_id = "
            "excluded.form_template_id, updated_at = excluded.updated_at RETURNING *",
            uuid.UUID(ident.tenant_id),
            inbox_id,
            request.enabled,
            mode,
            json.dumps([{"weekday": h.weekday, "start": h.start, "end": h.end} for h in hours]),
            tz,
            template_ids[0],
            period,
            template_ids[1],
            d.clock.now(),
        )
        self._admin_log.info(
            "auto-reply saved", inbox_id=str(inbox_id), enabled=request.enabled, mode=mode
        )
        return auto_reply_pb(str(inbox_id), auto_reply_of(row))
