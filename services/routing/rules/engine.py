"""Evaluating rules for one mail (or a ticket change), in their order: which ran, which
conditions held, what they decided. The same code answers the dry run."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from . import actions, conditions, model
from .conditions import InHours
from .model import ConditionTrace, Decision, Evaluation, Facts, Rule, RuleResult


def applies_to(rule: Rule, inbox_id: str) -> bool:
    """A tenant-wide rule applies to every inbox, an inbox's rule to its own."""
    return not rule.definition.inbox_id or rule.definition.inbox_id == inbox_id


def _skip(
    rule: Rule, trigger: str, ran_before: frozenset[str], facts: Facts, in_hours: InHours
) -> str:
    d = rule.definition
    if not d.enabled:
        return "disabled"
    if trigger not in d.triggers:
        return "trigger"
    if d.once_per_ticket and rule.id in ran_before:
        return "once_per_ticket"
    if d.business_hours is not None:
        inside = in_hours(d.business_hours.calendar_id, facts.received_at)
        if inside is None:
            return "unknown_calendar"
        if d.business_hours.when == "inside" and not inside:
            return "outside_business_hours"
        if d.business_hours.when == "outside" and inside:
            return "inside_business_hours"
    return ""


def evaluate(
    rules: Iterable[Rule],
    facts: Facts,
    trigger: str,
    in_hours: InHours,
    *,
    ran_before: frozenset[str] = frozenset(),
    depth: int = 0,
    traced: bool = True,
) -> Evaluation:
    """Run `rules` (already in order and for this mail's inbox) against `facts`. A rule
    that matches applies its actions to the decision and to the ticket state later rules
    read; `stop` ends the run. `ran_before`: the once-per-ticket rules that already ran on
    this ticket. `depth`: how many rule-made changes led here (ticket_changed); at
    `model.MAX_DEPTH` nothing runs, so rules that trigger each other end. `traced`: every
    condition evaluated and traced (the dry run); intake stops at the first that decides."""
    decision = Decision()
    if depth >= model.MAX_DEPTH:
        return Evaluation(decision, (), depth_limited=True)
    results: list[RuleResult] = []
    for rule in rules:
        if decision.stopped:
            break
        skipped = _skip(rule, trigger, ran_before, facts, in_hours)
        trace: list[ConditionTrace] | None = [] if traced else None
        if skipped:
            if traced:
                results.append(RuleResult(rule.id, rule.name, False, skipped, (), ()))
            continue
        held = conditions.group_holds(
            rule.definition.conditions, facts, in_hours, "conditions", trace
        )
        if not held and not traced:
            continue  # intake keeps only what ran
        done: list[str] = []
        if held:
            ticket = facts.ticket
            for action in rule.definition.actions:
                ticket = actions.apply(action, decision, ticket)
                text = actions.describe(action)
                done.append(text)
                decision.trace.append((rule.id, rule.name, text))
            facts = replace(facts, ticket=ticket)
            decision.fired.append(rule.id)
        results.append(RuleResult(rule.id, rule.name, held, "", tuple(trace or ()), tuple(done)))
    return Evaluation(decision, tuple(results))


def needs_mail_details(rules: Iterable[Rule]) -> bool:
    """Whether any enabled rule reads headers or attachment names/types."""
    return any(
        r.definition.enabled and conditions.reads_mail_details(r.definition.conditions)
        for r in rules
    )


def needs_contact(rules: Iterable[Rule]) -> bool:
    """Whether any enabled rule reads the sender's contact (custom fields, value, VIP)."""
    return any(
        r.definition.enabled and conditions.reads_contact(r.definition.conditions) for r in rules
    )
