"""Routing rules routes (issue 18, RTE-1): the tenant's rules in their order, each one's
versions, creating, editing, deleting and reordering them, and the dry run of a saved or
unsaved rule against a ticket picked by number. The routing service validates and
decides everything (400 naming the field, 409 on a stale version); documented in
openapi.yaml. Edits are in the operation log like every state-changing request."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from google.protobuf import json_format
from switchboard.v1 import routing_pb2, routing_pb2_grpc

from .errors import ApiError
from .request import deps, json_body, metadata
from .responses import json_response, no_content
from .views import iso

R = routing_pb2
DEFINITION_FIELDS = (
    "name",
    "inbox_id",
    "enabled",
    "triggers",
    "conditions",
    "actions",
    "once_per_ticket",
    "business_hours",
    "no_first_reply_minutes",
)


def _stub(request: web.Request) -> routing_pb2_grpc.RoutingServiceStub:
    return deps(request).routing


def _definition(body: dict[str, Any], prefix: str = "") -> routing_pb2.RuleDefinition:
    """The rule's fields as the service takes them (the schema checked their shapes; the
    service checks what they mean)."""
    raw = {k: body[k] for k in DEFINITION_FIELDS if body.get(k) is not None}
    try:
        return json_format.ParseDict(raw, R.RuleDefinition())
    except (json_format.ParseError, ValueError, TypeError) as err:
        raise ApiError(
            400, "invalid_argument", f"not a rule: {err}", f"{prefix}conditions"
        ) from None


def _condition(node: dict[str, Any]) -> dict[str, Any]:
    if "field" in node:
        out = {"field": node["field"], "operator": node.get("operator", "")}
        if node.get("name"):
            out["name"] = node["name"]
        out["value"] = node.get("value")
        out["negate"] = bool(node.get("negate", False))
        return out
    return {
        "match": node.get("match", "all"),
        "conditions": [_condition(c) for c in node.get("conditions", [])],
    }


def _definition_view(pb: routing_pb2.RuleDefinition) -> dict[str, Any]:
    raw = json_format.MessageToDict(pb, preserving_proto_field_name=True)
    return {
        "name": pb.name,
        "inbox_id": pb.inbox_id or None,
        "enabled": pb.enabled if pb.HasField("enabled") else True,
        "triggers": list(pb.triggers),
        "conditions": _condition(raw.get("conditions", {})),
        "actions": [
            {
                "type": a.type,
                **({"value": a.value} if a.value else {}),
                **({"to": list(a.to)} if a.to else {}),
                **({"level": a.level} if a.level else {}),
            }
            for a in pb.actions
        ],
        "once_per_ticket": pb.once_per_ticket,
        "business_hours": (
            {"calendar_id": pb.business_hours.calendar_id, "when": pb.business_hours.when}
            if pb.HasField("business_hours")
            else None
        ),
        "no_first_reply_minutes": (
            pb.no_first_reply_minutes if pb.HasField("no_first_reply_minutes") else None
        ),
    }


def rule_view(pb: routing_pb2.Rule) -> dict[str, Any]:
    return {
        "id": pb.id,
        **_definition_view(pb.definition),
        "position": pb.position,
        "version": pb.version,
        "created_at": iso(pb.created_at),
        "updated_at": iso(pb.updated_at),
        "updated_by": pb.updated_by or None,
    }


def _rules(resp: routing_pb2.ListRulesResponse) -> web.Response:
    return json_response({"rules": [rule_view(r) for r in resp.rules]}, customer_data=False)


async def list_rules(request: web.Request) -> web.Response:
    req = R.ListRulesRequest(inbox_id=request.query.get("inbox_id", ""))
    return _rules(await _stub(request).ListRules(req, metadata=metadata(request), timeout=15))


async def create_rule(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = R.CreateRuleRequest(definition=_definition(body))
    if body.get("position") is not None:
        req.position = body["position"]
    resp = await _stub(request).CreateRule(req, metadata=metadata(request), timeout=15)
    return json_response(rule_view(resp), status=201, customer_data=False)


async def get_rule(request: web.Request) -> web.Response:
    req = R.GetRuleRequest(rule_id=request.match_info["rule_id"])
    resp = await _stub(request).GetRule(req, metadata=metadata(request), timeout=15)
    return json_response(rule_view(resp), customer_data=False)


async def rule_versions(request: web.Request) -> web.Response:
    req = R.GetRuleRequest(rule_id=request.match_info["rule_id"])
    resp = await _stub(request).ListRuleVersions(req, metadata=metadata(request), timeout=15)
    return json_response({"versions": [rule_view(r) for r in resp.rules]}, customer_data=False)


async def update_rule(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = R.UpdateRuleRequest(
        rule_id=request.match_info["rule_id"],
        definition=_definition(body),
        version=body["version"],
    )
    resp = await _stub(request).UpdateRule(req, metadata=metadata(request), timeout=15)
    return json_response(rule_view(resp), customer_data=False)


async def delete_rule(request: web.Request) -> web.Response:
    req = R.DeleteRuleRequest(rule_id=request.match_info["rule_id"])
    await _stub(request).DeleteRule(req, metadata=metadata(request), timeout=15)
    return no_content()


async def reorder_rules(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = R.ReorderRulesRequest(rule_ids=body["rule_ids"])
    return _rules(await _stub(request).ReorderRules(req, metadata=metadata(request), timeout=15))


async def dry_run(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = R.DryRunRuleRequest(
        ticket_number=body["ticket_number"],
        rule_id=body.get("rule_id") or "",
        trigger=body.get("trigger") or "",
    )
    if body.get("rule") is not None:
        req.rule.CopyFrom(_definition(body["rule"], "rule."))
    resp = await _stub(request).DryRunRule(req, metadata=metadata(request), timeout=30)
    return json_response(
        {
            "ticket": {"id": resp.ticket_id, "number": resp.ticket_number, "subject": resp.subject},
            "message_id": resp.message_id,
            "results": [
                {
                    "rule_id": r.rule_id,
                    "rule_name": r.rule_name,
                    "matched": r.matched,
                    "skipped": r.skipped,
                    "conditions": [
                        {"path": c.path, "description": c.description, "held": c.held}
                        for c in r.conditions
                    ],
                    "actions": list(r.actions),
                }
                for r in resp.results
            ],
        }
    )


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/rules", list_rules)
    r.add_post("/api/v1/rules", create_rule)
    r.add_put("/api/v1/rules/order", reorder_rules)
    r.add_post("/api/v1/rules/dry-run", dry_run)
    r.add_get("/api/v1/rules/{rule_id}", get_rule)
    r.add_put("/api/v1/rules/{rule_id}", update_rule)
    r.add_delete("/api/v1/rules/{rule_id}", delete_rule)
    r.add_get("/api/v1/rules/{rule_id}/versions", rule_versions)
