"""Evaluating rules for one mail (or a ticket change), in their order: which ran, which
conditions held, what they decided. The same code answers the dry run."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

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
    if not traced:
        return _run(prepared(rules, trigger), facts, trigger, in_hours, ran_before, decision)
    results: list[RuleResult] = []
    for rule in rules:
        if decision.stopped:
            break
        skipped = _skip(rule, trigger, ran_before, facts, in_hours)
        if skipped:
            results.append(RuleResult(rule.id, rule.name, False, skipped, (), ()))
            continue
        trace: list[ConditionTrace] = []
        held = conditions.group_holds(
            rule.definition.conditions, facts, in_hours, "conditions", trace
        )
        done: tuple[str, ...] = ()
        if held:
            facts, done = _fire(rule, decision, facts)
        results.append(RuleResult(rule.id, rule.name, held, "", tuple(trace), done))
    return Evaluation(decision, tuple(results))


def _fire(rule: Rule, decision: Decision, facts: Facts) -> tuple[Facts, tuple[str, ...]]:
    """The rule's actions applied to the decision and to the ticket later rules read."""
    done: list[str] = []
    ticket = facts.ticket
    for action in rule.definition.actions:
        ticket = actions.apply(action, decision, ticket)
        text = actions.describe(action)
        done.append(text)
        decision.trace.append((rule.id, rule.name, text))
    decision.fired.append(rule.id)
    if ticket is not facts.ticket:
        facts = replace(facts, ticket=ticket)
    return facts, tuple(done)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A rule ready for intake: its conditions as one predicate, and its gate."""

    rule: Rule
    holds: conditions.Predicate
    gate: conditions.Gate | None


_PREPARED: dict[int, tuple[Sequence[Rule], dict[str, tuple[Prepared, ...]]]] = {}
_PREPARED_MAX = 1024


def prepared(rules: Iterable[Rule], trigger: str) -> tuple[Prepared, ...]:
    """The enabled rules having `trigger`, in order, prepared. Worked out once per tuple
    of rules and trigger (a loaded rule list is a tuple that never changes), else each
    time (still cheap: predicates and gates are kept per condition group)."""
    if not isinstance(rules, tuple):
        return _prepare(rules, trigger)
    hit = _PREPARED.get(id(rules))
    if hit is None or hit[0] is not rules:
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        hit = (rules, {})
        _PREPARED[id(rules)] = hit
    found = hit[1].get(trigger)
    if found is None:
        found = hit[1][trigger] = _prepare(rules, trigger)
    return found


def _prepare(rules: Iterable[Rule], trigger: str) -> tuple[Prepared, ...]:
    return tuple(
        Prepared(
            r,
            conditions.compiled(r.definition.conditions),
            conditions.gate_of(r.definition.conditions),
        )
        for r in rules
        if r.definition.enabled and trigger in r.definition.triggers
    )


def _run(
    rules: tuple[Prepared, ...],
    facts: Facts,
    trigger: str,
    in_hours: InHours,
    ran_before: frozenset[str],
    decision: Decision,
) -> Evaluation:
    """`evaluate` without a trace (intake): a rule whose gate fails on the mail's folded
    field is passed over before anything else of it runs; each field is folded once."""
    texts: dict[str, str] = {}  # gate fields, folded
    results: list[RuleResult] = []
    for p in rules:
        gate = p.gate
        if gate is not None:
            have = texts.get(gate.field)
            if have is None:
                have = texts[gate.field] = conditions.folded_field(facts, gate.field)
            if not gate.check(have):
                continue
        rule = p.rule
        if _skip(rule, trigger, ran_before, facts, in_hours) or not p.holds(facts, in_hours):
            continue
        before = facts
        facts, done = _fire(rule, decision, facts)
        if facts is not before:
            texts = {}  # the ticket's fields changed
        results.append(RuleResult(rule.id, rule.name, True, "", (), done))
        if decision.stopped:
            break
    return Evaluation(decision, tuple(results))


_HOURS: dict[int, tuple[Sequence[Rule], bool]] = {}


def needs_hours(rules: Iterable[Rule]) -> bool:
    """Whether any enabled rule reads business hours (its option, or a condition on a
    calendar): if none does, the caller need not look up the tenant's calendars. Worked
    out once per tuple of rules."""
    if isinstance(rules, tuple):
        hit = _HOURS.get(id(rules))
        if hit is not None and hit[0] is rules:
            return hit[1]
    found = any(
        r.definition.enabled
        and (r.definition.business_hours is not None or _reads_calendar(r.definition.conditions))
        for r in rules
    )
    if isinstance(rules, tuple):
        if len(_HOURS) >= _PREPARED_MAX:
            _HOURS.clear()
        _HOURS[id(rules)] = (rules, found)
    return found


def _reads_calendar(group: model.Group) -> bool:
    return any(
        _reads_calendar(c) if isinstance(c, model.Group) else c.field == "business_hours"
        for c in group.conditions
    )


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
