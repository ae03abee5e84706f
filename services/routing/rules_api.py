"""RoutingService: the routing rules of the caller's tenant (RTE-1) — listed, read,
created, edited (a new version each time, the old ones kept), deleted, reordered — and
their dry run against a stored ticket. Every method needs manage_rules."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC
from typing import Any

from google.protobuf import json_format
from switchboard.v1 import routing_pb2

from services.runtime import identity, permissions
from services.runtime.clock import Clock
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid

from . import rules_facts
from .peers import Peers
from .rule_store import RuleCache, RuleStore, StoredRule
from .rules import engine, model, validate
from .rules.model import RuleDef
from .rules_intake import HoursOf


@dataclass
class RulesDeps:
    store: RuleStore
    cache: RuleCache
    peers: Peers
    clock: Clock
    ids: IdGenerator
    hours_of: HoursOf
    # the ids of the tenant's business-hours calendars, read now (not cached)
    calendar_ids: Callable[[str], Awaitable[set[str]]] | None = None


def definition_of(pb: routing_pb2.RuleDefinition, prefix: str = "") -> RuleDef:
    """The rule as given, validated (INVALID_ARGUMENT naming the field, with `prefix`)."""
    raw: dict[str, Any] = json_format.MessageToDict(pb, preserving_proto_field_name=True)
    try:
        return validate.parse(raw)
    except InvalidArgument as err:
        raise InvalidArgument(err.message, field=f"{prefix}{err.field or ''}") from None


def definition_pb(definition: RuleDef) -> routing_pb2.RuleDefinition:
    raw = validate.to_json(definition)
    for optional in ("business_hours", "no_first_reply_minutes"):
        if raw[optional] is None:
            del raw[optional]
    return json_format.ParseDict(raw, routing_pb2.RuleDefinition())


def rule_pb(s: StoredRule) -> routing_pb2.Rule:
    pb = routing_pb2.Rule(
        id=s.rule.id,
        position=s.rule.position,
        version=s.rule.version,
        definition=definition_pb(s.rule.definition),
        updated_by=s.updated_by,
    )
    pb.created_at.FromDatetime(s.created_at.astimezone(UTC))
    pb.updated_at.FromDatetime(s.updated_at.astimezone(UTC))
    return pb


def _admin() -> Identity:
    ident = identity.require_tenant()
    identity.require_permission(ident, permissions.MANAGE_RULES, "manage routing rules")
    return ident


class RoutingApi:
    def __init__(self, deps: RulesDeps) -> None:
        self._d = deps

    async def _checked(self, ident: Identity, pb: routing_pb2.RuleDefinition) -> RuleDef:
        """Validated, and the inboxes and operators it names exist in the tenant."""
        definition = definition_of(pb)
        md = Identity(tenant_id=ident.tenant_id, correlation_id=ident.correlation_id).metadata()
        needs_inboxes = bool(definition.inbox_id) or any(
            a.type == "move_to_inbox" for a in definition.actions
        )
        inboxes = await self._d.peers.inbox_ids(md) if needs_inboxes else set()
        if definition.inbox_id and definition.inbox_id not in inboxes:
            raise InvalidArgument("no such inbox in this tenant", field="inbox_id")
        operators: set[str] | None = None
        named = [
            (i, j, to.removeprefix("operator:"))
            for i, a in enumerate(definition.actions)
            for j, to in enumerate(a.to)
            if to.startswith("operator:")
        ]
        if named:
            operators = await self._d.peers.operator_ids(md)
            for i, j, op in named:
                if op not in operators:
                    raise InvalidArgument(
                        "no such active operator in this tenant", field=f"actions[{i}].to[{j}]"
                    )
        for i, a in enumerate(definition.actions):
            if a.type == model.AUTO_REPLY and not await self._d.peers.template_exists(
                ident.metadata(), a.value
            ):
                raise InvalidArgument("no such template", field=f"actions[{i}].value")
            if a.type == "move_to_inbox" and a.value not in inboxes:
                raise InvalidArgument("no such inbox in this tenant", field=f"actions[{i}].value")
            if a.type == "assign":
                if operators is None:
                    operators = await self._d.peers.operator_ids(md)
                if a.value not in operators:
                    raise InvalidArgument(
                        "no such active operator in this tenant", field=f"actions[{i}].value"
                    )
        calendar_refs = validate.calendar_refs(definition)
        if calendar_refs and self._d.calendar_ids is not None:
            calendars = await self._d.calendar_ids(ident.tenant_id)
            for field, calendar_id in calendar_refs:
                if calendar_id not in calendars:
                    raise InvalidArgument("no such calendar in this tenant", field=field)
        return definition

    def _changed(self, tenant: str) -> None:
        self._d.cache.forget(tenant)

    async def ListRules(
        self, request: routing_pb2.ListRulesRequest, context: Context
    ) -> routing_pb2.ListRulesResponse:
        ident = _admin()
        inbox = str(parse_uuid(request.inbox_id, "inbox_id")) if request.inbox_id else ""
        found = await self._d.store.rules(self._d.store.pool, ident.tenant_id)
        return routing_pb2.ListRulesResponse(
            rules=[rule_pb(s) for s in found if not inbox or engine.applies_to(s.rule, inbox)]
        )

    async def GetRule(
        self, request: routing_pb2.GetRuleRequest, context: Context
    ) -> routing_pb2.Rule:
        ident = _admin()
        rid = parse_uuid(request.rule_id, "rule_id")
        return rule_pb(await self._d.store.rule(self._d.store.pool, ident.tenant_id, rid))

    async def ListRuleVersions(
        self, request: routing_pb2.GetRuleRequest, context: Context
    ) -> routing_pb2.ListRulesResponse:
        ident = _admin()
        rid = parse_uuid(request.rule_id, "rule_id")
        found = await self._d.store.versions(self._d.store.pool, ident.tenant_id, rid)
        return routing_pb2.ListRulesResponse(rules=[rule_pb(s) for s in found])

    async def CreateRule(
        self, request: routing_pb2.CreateRuleRequest, context: Context
    ) -> routing_pb2.Rule:
        ident = _admin()
        definition = await self._checked(ident, request.definition)
        position = request.position if request.HasField("position") else None
        if position is not None and position < 0:
            raise InvalidArgument("must be 0 or more", field="position")
        s = await self._d.store.create(
            ident.tenant_id,
            self._d.ids.new_str(),
            definition,
            position,
            self._d.clock.now(),
            ident.operator_id,
        )
        self._d.cache.saved(ident.tenant_id, definition)
        return rule_pb(s)

    async def UpdateRule(
        self, request: routing_pb2.UpdateRuleRequest, context: Context
    ) -> routing_pb2.Rule:
        ident = _admin()
        rid = parse_uuid(request.rule_id, "rule_id")
        await self._d.store.rule(self._d.store.pool, ident.tenant_id, rid)  # 404 first
        definition = await self._checked(ident, request.definition)
        if request.version < 1:
            raise InvalidArgument("the version edited is required", field="version")
        s = await self._d.store.update(
            ident.tenant_id,
            rid,
            definition,
            request.version,
            self._d.clock.now(),
            ident.operator_id,
        )
        self._d.cache.saved(ident.tenant_id, definition)
        return rule_pb(s)

    async def DeleteRule(
        self, request: routing_pb2.DeleteRuleRequest, context: Context
    ) -> routing_pb2.DeleteRuleResponse:
        ident = _admin()
        rid = parse_uuid(request.rule_id, "rule_id")
        await self._d.store.delete(ident.tenant_id, rid, self._d.clock.now(), ident.operator_id)
        self._changed(ident.tenant_id)
        return routing_pb2.DeleteRuleResponse()

    async def ReorderRules(
        self, request: routing_pb2.ReorderRulesRequest, context: Context
    ) -> routing_pb2.ListRulesResponse:
        ident = _admin()
        ids: list[uuid.UUID] = []
        for i, raw in enumerate(request.rule_ids):
            ids.append(parse_uuid(raw, f"rule_ids[{i}]"))
        found = await self._d.store.reorder(ident.tenant_id, ids)
        self._changed(ident.tenant_id)
        return routing_pb2.ListRulesResponse(rules=[rule_pb(s) for s in found])

    async def DryRunRule(
        self, request: routing_pb2.DryRunRuleRequest, context: Context
    ) -> routing_pb2.DryRunRuleResponse:
        ident = _admin()
        if request.trigger and request.trigger not in model.TRIGGERS:
            raise InvalidArgument(f"one of {', '.join(model.TRIGGERS)}", field="trigger")
        if request.ticket_number < 1:
            raise InvalidArgument("a ticket number (1 or more)", field="ticket_number")
        if request.rule_id:
            rid = parse_uuid(request.rule_id, "rule_id")
            rule = (await self._d.store.rule(self._d.store.pool, ident.tenant_id, rid)).rule
        elif request.HasField("rule"):
            rule = model.Rule("", 0, 0, definition_of(request.rule, "rule."))
        else:
            raise InvalidArgument("a saved rule's id or an unsaved rule", field="rule_id")
        # a dry run shows the conditions of a disabled rule too, for the trigger asked
        # (by default the rule's first)
        trigger = request.trigger or rule.definition.triggers[0]
        rule = replace(rule, definition=replace(rule.definition, enabled=True))
        found = await self._d.peers.ticket_by_number(ident.metadata(), request.ticket_number)
        ticket = found.ticket
        mails = rules_facts.customer_mails(found)
        if not mails:
            raise NotFound("the ticket has no mail to evaluate", field="ticket_number")
        latest = mails[-1]
        system = Identity(tenant_id=ident.tenant_id, correlation_id=ident.correlation_id)
        details = await self._d.peers.mail_details(system.metadata(), latest.id)
        facts = rules_facts.facts_of(
            latest.mail,
            channel=latest.channel,
            received_at=latest.received_at.ToDatetime(tzinfo=UTC),
            envelope_recipients=[],
            ticket=rules_facts.ticket_state(ticket),
            details=details,
            contact=found.contact if found.HasField("contact") else None,
            language=ticket.language,
        )
        ran = await self._d.store.ran_on(self._d.store.pool, ident.tenant_id, ticket.id)
        in_hours = await self._d.hours_of(ident.tenant_id)
        evaluation = engine.evaluate([rule], facts, trigger, in_hours, ran_before=ran)
        resp = routing_pb2.DryRunRuleResponse(
            ticket_id=ticket.id,
            ticket_number=ticket.number,
            subject=ticket.subject,
            message_id=latest.id,
        )
        for r in evaluation.results:
            resp.results.add(
                rule_id=r.rule_id,
                rule_name=r.rule_name,
                matched=r.matched,
                skipped=r.skipped,
                conditions=[
                    routing_pb2.ConditionResult(path=c.path, description=c.description, held=c.held)
                    for c in r.conditions
                ],
                actions=list(r.actions),
            )
        return resp
