"""Segments (issue 20, OUT-6): saved queries over contacts and their live count — the HTTP
routes (gateway/openapi.yaml). Tickets checks and compiles the conditions."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from switchboard.v1 import tickets_pb2

from . import views
from .request import deps, json_body, metadata
from .responses import json_response, no_content


def segment_json(s: tickets_pb2.Segment) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "match": s.match,
        "conditions": [
            {"field": c.field, "op": c.op, "value": json.loads(c.value_json or "null")}
            for c in s.conditions
        ],
        "created_at": views.iso(s.created_at),
        "updated_at": views.iso(s.updated_at),
    }


def _conditions(body: dict[str, Any]) -> list[tickets_pb2.SegmentCondition]:
    return [
        tickets_pb2.SegmentCondition(
            field=c["field"], op=c["op"], value_json=json.dumps(c.get("value"))
        )
        for c in body.get("conditions", [])
    ]


def _input(body: dict[str, Any], segment_id: str = "") -> tickets_pb2.SegmentInput:
    req = tickets_pb2.SegmentInput(segment_id=segment_id)
    if "name" in body:
        req.name = body["name"]
    if "match" in body:
        req.match = body["match"]
    if "conditions" in body:
        req.set_conditions = True
        req.conditions.extend(_conditions(body))
    return req


async def list_segments(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.ListSegments(
        tickets_pb2.ListSegmentsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"segments": [segment_json(s) for s in resp.segments]})


async def create_segment(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.CreateSegment(
        _input(body), metadata=metadata(request), timeout=10
    )
    return json_response(segment_json(resp), status=201)


async def get_segment(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetSegment(
        tickets_pb2.SegmentRef(segment_id=request.match_info["segment_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(segment_json(resp))


async def update_segment(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.UpdateSegment(
        _input(body, request.match_info["segment_id"]), metadata=metadata(request), timeout=10
    )
    return json_response(segment_json(resp))


async def delete_segment(request: web.Request) -> web.Response:
    await deps(request).tickets.DeleteSegment(
        tickets_pb2.SegmentRef(segment_id=request.match_info["segment_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def count_conditions(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.CountSegment(
        tickets_pb2.CountSegmentRequest(
            match=body.get("match", "all"), conditions=_conditions(body)
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response({"count": resp.count}, customer_data=False)


async def count_segment(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.CountSegment(
        tickets_pb2.CountSegmentRequest(segment_id=request.match_info["segment_id"]),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(
        {"count": resp.count, "counted_at": views.iso(resp.counted_at)}, customer_data=False
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/segments", list_segments)
    app.router.add_post("/api/v1/segments", create_segment)
    app.router.add_post("/api/v1/segments/count", count_conditions)
    app.router.add_get("/api/v1/segments/{segment_id}", get_segment)
    app.router.add_patch("/api/v1/segments/{segment_id}", update_segment)
    app.router.add_delete("/api/v1/segments/{segment_id}", delete_segment)
    app.router.add_get("/api/v1/segments/{segment_id}/count", count_segment)
