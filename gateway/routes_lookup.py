"""Customer data from the tenant's own system (issue 21, DAT-3, RTE-3): the lookup's
configuration and "try it" (manage_inboxes), and the data beside a ticket or a contact
(any operator who sees it). The tickets service decides everything (docs/lookup.md); a
failure of the tenant's system is a 200 answer with `ok: false` and the reason."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import tickets_lookup_pb2 as L
from switchboard.v1 import tickets_lookup_pb2_grpc

from .request import bad, deps, json_body, metadata
from .responses import json_response
from .views import iso

# a lookup takes at most 10 s (its timeout); the call allows for the database around it
CALL_TIMEOUT_S = 20


def _stub(request: web.Request) -> tickets_lookup_pb2_grpc.CustomerLookupServiceStub:
    return deps(request).lookup


def config_view(c: L.LookupConfig) -> dict[str, Any]:
    return {
        "configured": c.configured,
        "enabled": c.enabled,
        "url_template": c.url_template,
        "header_name": c.header_name,
        "secret_hint": c.secret_hint or None,
        "timeout_ms": c.timeout_ms,
        "cache_ttl_s": c.cache_ttl_s,
        "fields": [
            {"pointer": f.pointer, "label_ja": f.label_ja, "label_en": f.label_en, "type": f.type}
            for f in c.fields
        ],
        "value_pointer": c.value_pointer or None,
        "allow_hosts": list(c.allow_hosts),
        "updated_at": iso(c.updated_at),
    }


def result_view(r: L.LookupResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "configured": r.configured,
        "ok": r.ok,
        "error": r.error or None,
        "error_detail": r.error_detail or None,
        "http_status": r.http_status or None,
        "elapsed_ms": r.elapsed_ms,
        "cached": r.cached,
        "fetched_at": iso(r.fetched_at),
        "contact_id": r.contact_id or None,
        "customer_value": r.customer_value if r.has_customer_value else None,
        "fields": [
            {
                "pointer": v.pointer,
                "label_ja": v.label_ja,
                "label_en": v.label_en,
                "type": v.type,
                "value": v.value if v.found else None,
            }
            for v in r.fields
        ],
    }
    if r.body:
        out["body"] = r.body
    return out


def _put_request(body: dict[str, Any]) -> L.PutLookupConfigRequest:
    """A body its schema accepted (CustomerLookupUpdate) as the service's request."""
    config = L.LookupConfig(
        enabled=body.get("enabled", True),
        url_template=body["url_template"],
        header_name=body.get("header_name", ""),
        timeout_ms=body.get("timeout_ms", 0),
        cache_ttl_s=body.get("cache_ttl_s", 300),
        fields=[
            L.LookupField(
                pointer=f["pointer"],
                label_ja=f.get("label_ja", ""),
                label_en=f.get("label_en", ""),
                type=f.get("type", "text"),
            )
            for f in body.get("fields", [])
        ],
        value_pointer=body.get("value_pointer") or "",
        allow_hosts=body.get("allow_hosts", []),
    )
    return L.PutLookupConfigRequest(
        config=config, secret=body.get("secret") or "", clear_secret=body.get("clear_secret", False)
    )


async def get_config(request: web.Request) -> web.Response:
    resp = await _stub(request).GetLookupConfig(
        L.GetLookupConfigRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(config_view(resp), customer_data=False)


async def put_config(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).PutLookupConfig(
        _put_request(body), metadata=metadata(request), timeout=10
    )
    return json_response(config_view(resp), customer_data=False)


async def try_lookup(request: web.Request) -> web.Response:
    body = await json_body(request)
    given = [k for k in ("email", "phone", "contact_id") if body.get(k)]
    if len(given) != 1:
        raise bad("give one of email, phone or contact_id", "email")
    req = L.TryLookupRequest(**{given[0]: body[given[0]]})
    if body.get("config") is not None:
        req.config.CopyFrom(_put_request(body["config"]))
    resp = await _stub(request).TryLookup(req, metadata=metadata(request), timeout=CALL_TIMEOUT_S)
    return json_response(result_view(resp))


async def ticket_data(request: web.Request) -> web.Response:
    resp = await _stub(request).TicketCustomerData(
        L.TicketCustomerDataRequest(ticket_id=request.match_info["ticket_id"]),
        metadata=metadata(request),
        timeout=CALL_TIMEOUT_S,
    )
    return json_response(result_view(resp))


async def contact_data(request: web.Request) -> web.Response:
    resp = await _stub(request).ContactCustomerData(
        L.ContactCustomerDataRequest(contact_id=request.match_info["contact_id"]),
        metadata=metadata(request),
        timeout=CALL_TIMEOUT_S,
    )
    return json_response(result_view(resp))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/customer-lookup", get_config)
    r.add_put("/api/v1/customer-lookup", put_config)
    r.add_post("/api/v1/customer-lookup/try", try_lookup)
    r.add_get("/api/v1/tickets/{ticket_id}/customer-data", ticket_data)
    r.add_get("/api/v1/contacts/{contact_id}/customer-data", contact_data)
