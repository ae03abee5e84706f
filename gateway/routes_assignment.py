"""Assignment routes (issue 18, RTE-2): the caller's presence, every operator's presence
for supervisors, each inbox's assignment strategy and each operator's routing profile.
Documented in openapi.yaml; routing's AssignmentService does the work."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import routing_assign_pb2 as pb

from .access import UNCHANGED
from .request import deps, json_body, metadata
from .responses import json_response
from .views import iso

PRESENCE = {
    "online": pb.PRESENCE_STATUS_ONLINE,
    "away": pb.PRESENCE_STATUS_AWAY,
    "offline": pb.PRESENCE_STATUS_OFFLINE,
}
PRESENCE_NAME = {v: k for k, v in PRESENCE.items()}
STRATEGY = {
    "manual": pb.ASSIGN_STRATEGY_MANUAL,
    "round_robin": pb.ASSIGN_STRATEGY_ROUND_ROBIN,
    "least_loaded": pb.ASSIGN_STRATEGY_LEAST_LOADED,
}
STRATEGY_NAME = {v: k for k, v in STRATEGY.items()}


def _limit(msg: Any, name: str) -> int | None:
    return int(getattr(msg, name).value) if msg.HasField(name) else None


def _set_limit(msg: Any, name: str, value: int | None) -> None:
    if value is not None:
        getattr(msg, name).value = value


def _stamp(msg: Any, name: str) -> str | None:
    return iso(getattr(msg, name)) if msg.HasField(name) else None


def presence_json(p: pb.OperatorPresence) -> dict[str, Any]:
    return {
        "operator_id": p.operator_id,
        "status": PRESENCE_NAME.get(p.status, "offline"),
        "effective": PRESENCE_NAME.get(p.effective, "offline"),
        "expires_at": _stamp(p, "expires_at"),
        "updated_at": _stamp(p, "updated_at"),
        "load": p.load,
        "capacity": _limit(p, "capacity"),
    }


def assignment_json(a: pb.InboxAssignment) -> dict[str, Any]:
    return {
        "inbox_id": a.inbox_id,
        "strategy": STRATEGY_NAME.get(a.strategy, "manual"),
        "capacity": _limit(a, "capacity"),
        "channel_capacity": dict(a.channel_capacity),
        "tiers": [
            {"operator_ids": list(t.operator_ids), "widen_after_minutes": t.widen_after_minutes}
            for t in a.tiers
        ],
        "reassign_after_minutes": _limit(a, "reassign_after_minutes"),
        "max_new_per_hour": _limit(a, "max_new_per_hour"),
        "updated_at": _stamp(a, "updated_at"),
    }


def routing_json(r: pb.OperatorRouting) -> dict[str, Any]:
    return {
        "operator_id": r.operator_id,
        "capacity": _limit(r, "capacity"),
        "channel_capacity": dict(r.channel_capacity),
        "skills": [{"name": s.name, "level": s.level} for s in r.skills],
        "languages": list(r.languages),
        "updated_at": _stamp(r, "updated_at"),
    }


async def set_my_presence(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).assignment.SetPresence(
        pb.SetPresenceRequest(status=PRESENCE[body["status"]]),
        metadata=metadata(request),
        timeout=10,
    )
    if not resp.changed:
        request[UNCHANGED] = True  # a heartbeat: not in the operation log
    return json_response(presence_json(resp))


async def get_my_presence(request: web.Request) -> web.Response:
    resp = await deps(request).assignment.GetMyPresence(
        pb.GetMyPresenceRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(presence_json(resp))


async def list_presence(request: web.Request) -> web.Response:
    resp = await deps(request).assignment.ListPresence(
        pb.ListPresenceRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"operators": [presence_json(p) for p in resp.operators]})


async def get_inbox_assignment(request: web.Request) -> web.Response:
    resp = await deps(request).assignment.GetInboxAssignment(
        pb.GetInboxAssignmentRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(assignment_json(resp))


async def set_inbox_assignment(request: web.Request) -> web.Response:
    """The whole document: a field left out takes its default."""
    body = await json_body(request)
    req = pb.InboxAssignment(
        inbox_id=request.match_info["inbox_id"],
        strategy=STRATEGY[body.get("strategy", "manual")],
        channel_capacity=body.get("channel_capacity", {}),
        tiers=[
            pb.AssignTier(
                operator_ids=t["operator_ids"], widen_after_minutes=t.get("widen_after_minutes", 0)
            )
            for t in body.get("tiers", [])
        ],
    )
    for name in ("capacity", "reassign_after_minutes", "max_new_per_hour"):
        _set_limit(req, name, body.get(name))
    resp = await deps(request).assignment.SetInboxAssignment(
        req, metadata=metadata(request), timeout=10
    )
    return json_response(assignment_json(resp))


async def get_operator_routing(request: web.Request) -> web.Response:
    resp = await deps(request).assignment.GetOperatorRouting(
        pb.GetOperatorRoutingRequest(operator_id=request.match_info["operator_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(routing_json(resp))


async def set_operator_routing(request: web.Request) -> web.Response:
    """The whole document: a field left out takes its default."""
    body = await json_body(request)
    req = pb.OperatorRouting(
        operator_id=request.match_info["operator_id"],
        channel_capacity=body.get("channel_capacity", {}),
        skills=[pb.OperatorSkill(name=s["name"], level=s["level"]) for s in body.get("skills", [])],
        languages=body.get("languages", []),
    )
    _set_limit(req, "capacity", body.get("capacity"))
    resp = await deps(request).assignment.SetOperatorRouting(
        req, metadata=metadata(request), timeout=10
    )
    return json_response(routing_json(resp))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/me/presence", get_my_presence)
    r.add_put("/api/v1/me/presence", set_my_presence)
    r.add_get("/api/v1/presence", list_presence)
    r.add_get("/api/v1/inboxes/{inbox_id}/assignment", get_inbox_assignment)
    r.add_put("/api/v1/inboxes/{inbox_id}/assignment", set_inbox_assignment)
    r.add_get("/api/v1/operators/{operator_id}/routing", get_operator_routing)
    r.add_put("/api/v1/operators/{operator_id}/routing", set_operator_routing)
