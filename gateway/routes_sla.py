"""SLA routes of issue 18 (RTE-4): business-hours calendars (holidays, iCal import, a
country's public holidays), SLA policies, and a ticket's SLA. Routing's SlaService checks
and keeps everything; a ticket's SLA is shown to whoever may see the ticket (tickets
answers that first). Documented in openapi.yaml."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import routing_sla_pb2, routing_sla_pb2_grpc, tickets_pb2

from .request import deps, json_body, metadata, query_int
from .responses import json_response, no_content
from .views import iso

S = routing_sla_pb2


def _stub(request: web.Request) -> routing_sla_pb2_grpc.SlaServiceStub:
    return deps(request).sla


# -- JSON shapes -------------------------------------------------------------------------


def calendar(c: routing_sla_pb2.Calendar) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "time_zone": c.time_zone,
        "public_holidays": c.public_holidays,
        "slots": [
            {
                "weekday": s.weekday,
                "start": s.start,
                "end": s.end,
                "crosses_midnight": s.crosses_midnight,
            }
            for s in c.slots
        ],
        "holidays": [holiday(h) for h in c.holidays],
        "version": c.version,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def holiday(h: routing_sla_pb2.CalendarHoliday) -> dict[str, Any]:
    return {"date": h.date, "name": h.name, "yearly": h.yearly}


def calendar_write(body: dict[str, Any], calendar_id: str = "") -> routing_sla_pb2.Calendar:
    out = S.Calendar(
        id=calendar_id,
        name=body["name"],
        time_zone=body["time_zone"],
        slots=[
            S.CalendarSlot(
                weekday=s["weekday"],
                start=s["start"],
                end=s["end"],
                crosses_midnight=bool(s.get("crosses_midnight", False)),
            )
            for s in body["slots"]
        ],
        holidays=[
            S.CalendarHoliday(
                date=h["date"], name=h.get("name") or "", yearly=bool(h.get("yearly", False))
            )
            for h in body.get("holidays") or []
        ],
        version=int(body.get("version") or 0),
    )
    if body.get("public_holidays") is not None:
        out.public_holidays = body["public_holidays"]
    return out


def policy(p: routing_sla_pb2.SlaPolicy) -> dict[str, Any]:
    warning: dict[str, int] | None = None
    if p.HasField("warn_before_minutes"):
        warning = {"before_minutes": p.warn_before_minutes}
    elif p.HasField("warn_at_percent"):
        warning = {"at_percent": p.warn_at_percent}
    return {
        "id": p.id,
        "name": p.name,
        "position": p.position,
        "enabled": p.enabled,
        "inbox_ids": list(p.inbox_ids),
        "categories": list(p.categories),
        "priorities": list(p.priorities),
        "calendar_id": p.calendar_id or None,
        **{f: getattr(p, f) if p.HasField(f) else None for f in TARGETS},
        "pause_statuses": list(p.pause_statuses),
        "warning": warning,
        "version": p.version,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


TARGETS = ("first_response_minutes", "next_response_minutes", "resolution_minutes")


def policy_write(body: dict[str, Any], policy_id: str = "") -> routing_sla_pb2.SlaPolicy:
    pause = body.get("pause_statuses")
    out = S.SlaPolicy(
        id=policy_id,
        name=body["name"],
        position=int(body.get("position") or 0),
        enabled=bool(body.get("enabled", True)),
        inbox_ids=body.get("inbox_ids") or [],
        categories=body.get("categories") or [],
        priorities=body.get("priorities") or [],
        calendar_id=body.get("calendar_id") or "",
        pause_statuses=["pending"] if pause is None else pause,
        version=int(body.get("version") or 0),
    )
    for field in TARGETS:
        if body.get(field) is not None:
            setattr(out, field, body[field])
    warning = body.get("warning") or {}
    if warning.get("before_minutes") is not None:
        out.warn_before_minutes = warning["before_minutes"]
    if warning.get("at_percent") is not None:
        out.warn_at_percent = warning["at_percent"]
    return out


def ticket_sla(t: routing_sla_pb2.TicketSla) -> dict[str, Any]:
    return {
        "ticket_id": t.ticket_id,
        "policy": {"id": t.policy_id, "name": t.policy_name} if t.policy_id else None,
        "calendar_id": t.calendar_id or None,
        "state": t.state,
        "paused": t.paused,
        "next_due_at": iso(t.next_due_at),
        "targets": [
            {
                "kind": c.kind,
                "state": c.state,
                "started_at": iso(c.started_at),
                "due_at": iso(c.due_at),
                "warning_at": iso(c.warning_at),
                "met_at": iso(c.met_at),
                "remaining_minutes": (
                    c.remaining_seconds // 60 if c.HasField("remaining_seconds") else None
                ),
            }
            for c in t.targets
        ],
    }


# -- calendars ---------------------------------------------------------------------------


async def list_calendars(request: web.Request) -> web.Response:
    resp = await _stub(request).ListCalendars(
        S.ListCalendarsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"calendars": [calendar(c) for c in resp.calendars]}, customer_data=False)


async def create_calendar(request: web.Request) -> web.Response:
    write = calendar_write(await json_body(request))
    resp = await _stub(request).CreateCalendar(write, metadata=metadata(request), timeout=15)
    return json_response(calendar(resp), status=201, customer_data=False)


async def get_calendar(request: web.Request) -> web.Response:
    resp = await _stub(request).GetCalendar(
        S.GetCalendarRequest(calendar_id=request.match_info["calendar_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(calendar(resp), customer_data=False)


async def update_calendar(request: web.Request) -> web.Response:
    write = calendar_write(await json_body(request), request.match_info["calendar_id"])
    resp = await _stub(request).UpdateCalendar(write, metadata=metadata(request), timeout=15)
    return json_response(calendar(resp), customer_data=False)


async def delete_calendar(request: web.Request) -> web.Response:
    await _stub(request).DeleteCalendar(
        S.DeleteCalendarRequest(calendar_id=request.match_info["calendar_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def import_ical(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).ImportIcal(
        S.ImportIcalRequest(
            calendar_id=request.match_info["calendar_id"],
            ical=body["ical"],
            replace=bool(body.get("replace", False)),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(
        {"calendar": calendar(resp.calendar), "imported": resp.imported}, customer_data=False
    )


async def public_holidays(request: web.Request) -> web.Response:
    country = request.query.get("country", "JP")
    year = query_int(request, "year", default=0, low=1900, high=2200)
    resp = await _stub(request).ListPublicHolidays(
        S.ListPublicHolidaysRequest(country=country, year=year),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {"country": country, "year": year, "holidays": [holiday(h) for h in resp.holidays]},
        customer_data=False,
    )


# -- policies ----------------------------------------------------------------------------


async def list_policies(request: web.Request) -> web.Response:
    resp = await _stub(request).ListSlaPolicies(
        S.ListSlaPoliciesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"policies": [policy(p) for p in resp.policies]}, customer_data=False)


async def create_policy(request: web.Request) -> web.Response:
    write = policy_write(await json_body(request))
    resp = await _stub(request).CreateSlaPolicy(write, metadata=metadata(request), timeout=15)
    return json_response(policy(resp), status=201, customer_data=False)


async def get_policy(request: web.Request) -> web.Response:
    resp = await _stub(request).GetSlaPolicy(
        S.GetSlaPolicyRequest(policy_id=request.match_info["policy_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(policy(resp), customer_data=False)


async def update_policy(request: web.Request) -> web.Response:
    write = policy_write(await json_body(request), request.match_info["policy_id"])
    resp = await _stub(request).UpdateSlaPolicy(write, metadata=metadata(request), timeout=15)
    return json_response(policy(resp), customer_data=False)


async def delete_policy(request: web.Request) -> web.Response:
    await _stub(request).DeleteSlaPolicy(
        S.DeleteSlaPolicyRequest(policy_id=request.match_info["policy_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


# -- a ticket's SLA ----------------------------------------------------------------------


async def get_ticket_sla(request: web.Request) -> web.Response:
    ticket_id = request.match_info["ticket_id"]
    md = metadata(request)
    # tickets answers whether the caller may see it (404 otherwise), routing the SLA
    await deps(request).tickets.GetTicket(
        tickets_pb2.GetTicketRequest(ticket_id=ticket_id), metadata=md, timeout=10
    )
    resp = await _stub(request).GetTicketSla(
        S.GetTicketSlaRequest(ticket_id=ticket_id), metadata=md, timeout=10
    )
    return json_response(ticket_sla(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/calendars", list_calendars)
    r.add_post("/api/v1/calendars", create_calendar)
    r.add_get("/api/v1/calendars/{calendar_id}", get_calendar)
    r.add_put("/api/v1/calendars/{calendar_id}", update_calendar)
    r.add_delete("/api/v1/calendars/{calendar_id}", delete_calendar)
    r.add_post("/api/v1/calendars/{calendar_id}/ical", import_ical)
    r.add_get("/api/v1/public-holidays", public_holidays)
    r.add_get("/api/v1/sla-policies", list_policies)
    r.add_post("/api/v1/sla-policies", create_policy)
    r.add_get("/api/v1/sla-policies/{policy_id}", get_policy)
    r.add_put("/api/v1/sla-policies/{policy_id}", update_policy)
    r.add_delete("/api/v1/sla-policies/{policy_id}", delete_policy)
    r.add_get("/api/v1/tickets/{ticket_id}/sla", get_ticket_sla)
