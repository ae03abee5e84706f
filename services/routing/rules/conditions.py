"""Whether a rule's conditions hold for a mail, with a trace of every leaf and group."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from . import model, text
from .fields import CONTACT_FIELDS, FIELDS, MAIL_DETAIL_FIELDS, Kind
from .model import ConditionTrace, Facts, Group, Leaf

# in_hours(calendar_id, at) → whether `at` is inside the calendar's business hours, or
# None for an unknown calendar (then a condition on it does not hold)
InHours = Callable[[str, datetime], bool | None]


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> Any:
    return text.compile_regex(pattern)


@lru_cache(maxsize=4096)
def _fold(value: str) -> str:
    """Folded once per text: a mail's subject and body are compared with many rules."""
    return text.fold(value)


def _values(leaf: Leaf, facts: Facts) -> tuple[str, ...]:
    """The text values a text or text-list field has for this mail."""
    f = leaf.field
    t = facts.ticket
    if f == "sender_address":
        return (facts.sender_address,)
    if f == "sender_domain":
        return (facts.sender_address.rpartition("@")[2],)
    if f == "sender_name":
        return (facts.sender_name,)
    if f == "recipients":
        return facts.recipients
    if f == "subject":
        return (facts.subject,)
    if f == "body":
        return (facts.body,)
    if f == "header":
        found = (facts.headers or {}).get(leaf.name.lower(), ())
        return found or ("",)
    if f == "attachment_name":
        return tuple(a.name for a in facts.attachments or ())
    if f == "attachment_type":
        return tuple(a.type for a in facts.attachments or ())
    if f == "channel":
        return (facts.channel,)
    if f == "labels":
        return tuple(sorted(t.labels))
    if f == "category":
        return (t.category,)
    if f == "status":
        return (t.status,)
    if f == "sla_target":
        return (facts.sla_target,)
    if f == "language":
        return (facts.language,)
    if f == "contact_field":
        return ((facts.contact.custom if facts.contact else {}).get(leaf.name, ""),)
    raise AssertionError(f"not a text field: {f}")


def _text_holds(operator: str, value: Any, candidate: str) -> bool:
    if operator == "regex":
        return _regex(str(value)).search(candidate) is not None
    have = _fold(candidate)
    if operator == "in":
        return any(have == _fold(v) for v in value)
    want = _fold(str(value))
    if operator == "equals":
        return have == want
    if operator == "contains":
        return want in have
    if operator == "starts_with":
        return have.startswith(want)
    if operator == "ends_with":
        return have.endswith(want)
    raise AssertionError(operator)


def _compare(operator: str, have: float, value: Any) -> bool:
    if operator == "in":
        return have in {float(v) for v in value}
    want = float(value)
    return {
        "equals": have == want,
        "gt": have > want,
        "gte": have >= want,
        "lt": have < want,
        "lte": have <= want,
    }[operator]


def _contact_holds(leaf: Leaf, facts: Facts) -> bool:
    """Whether a contact field's condition can be compared at all: the sender has a
    contact, and for customer_value the contact has one."""
    if facts.contact is None:
        return False
    return leaf.field != "customer_value" or facts.contact.customer_value is not None


def _number(name: str, facts: Facts) -> float:
    if name == "attachment_count":
        return float(facts.attachment_count)
    if name == "customer_value":
        return float(facts.contact.customer_value or 0) if facts.contact else 0.0
    return float(facts.size)


def _rank(priority: str) -> float:
    return float(model.PRIORITIES.index(priority)) if priority in model.PRIORITIES else 1.0


def leaf_holds(leaf: Leaf, facts: Facts, in_hours: InHours) -> bool:
    kind = FIELDS[leaf.field]
    held: bool
    if leaf.field in CONTACT_FIELDS and not _contact_holds(leaf, facts):
        held = False  # no contact yet, or no customer value: the condition cannot hold
    elif kind in (Kind.TEXT, Kind.TEXT_LIST):
        held = any(_text_holds(leaf.operator, leaf.value, v) for v in _values(leaf, facts))
    elif kind is Kind.BOOL:
        have_flag = facts.contact.vip if leaf.field == "vip" and facts.contact else False
        held = (facts.has_attachments if leaf.field == "has_attachments" else have_flag) == (
            leaf.value
        )
    elif kind is Kind.NUMBER:
        held = _compare(leaf.operator, _number(leaf.field, facts), leaf.value)
    elif kind is Kind.ORDERED:
        value: Any = leaf.value
        value = tuple(_rank(v) for v in value) if leaf.operator == "in" else _rank(str(value))
        held = _compare(leaf.operator, _rank(facts.ticket.priority), value)
    elif kind is Kind.DATE:
        assert isinstance(leaf.value, datetime)
        if leaf.operator == "before":
            held = facts.received_at < leaf.value
        else:
            held = facts.received_at > leaf.value
    else:  # the business-hours calendar
        inside = in_hours(str(leaf.value), facts.received_at)
        if inside is None:
            return False  # an unknown calendar: neither inside nor outside
        held = inside if leaf.operator == "inside" else not inside
    return held != leaf.negate


def describe(leaf: Leaf) -> str:
    """A leaf as a person reads it: `subject contains "返品"`."""
    name = leaf.field.replace("_", " ")
    if leaf.field == "header":
        name = f"header {leaf.name}"
    elif leaf.field == "contact_field":
        name = f"contact field {leaf.name}"
    op = leaf.operator.replace("_", " ")
    value: Any = leaf.value
    if isinstance(value, tuple):
        shown = "[" + ", ".join(f'"{v}"' for v in value) + "]"
    elif isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, float):
        shown = f"{value:g}"
    elif isinstance(value, datetime):
        shown = value.isoformat()
    else:
        shown = f'"{value}"'
    if leaf.field == "business_hours":
        return f"arrived {op} business hours of calendar {shown}" + (
            " (negated)" if leaf.negate else ""
        )
    return ("not " if leaf.negate else "") + f"{name} {op} {shown}"


def group_holds(
    group: Group,
    facts: Facts,
    in_hours: InHours,
    path: str,
    trace: list[ConditionTrace] | None,
) -> bool:
    """Whether the group holds. With a `trace` (the dry run) every leaf and group is
    evaluated and traced by path; without one (intake) the group's compiled predicate
    stops at the first leaf that decides it."""
    if trace is None:
        return compiled(group)(facts, in_hours)
    at = len(trace)
    trace.append(ConditionTrace(path, "", False))  # placeholder, filled below
    results: list[bool] = []
    for i, c in enumerate(group.conditions):
        sub = f"{path}.conditions[{i}]"
        if isinstance(c, Group):
            results.append(group_holds(c, facts, in_hours, sub, trace))
        else:
            held = leaf_holds(c, facts, in_hours)
            trace.append(ConditionTrace(sub, describe(c), held))
            results.append(held)
    held = all(results) if group.match == "all" else any(results)
    if not group.conditions:
        held = True
    word = "all" if group.match == "all" else "any"
    trace[at] = ConditionTrace(path, f"{word} of {len(group.conditions)}", held)
    return held


# -- compiled predicates (intake's hot path) ----------------------------------------------

Predicate = Callable[[Facts, InHours], bool]
_COMPILED: dict[int, tuple[Group, Predicate]] = {}
_COMPILED_MAX = 50_000

_SINGLE: dict[str, Callable[[Facts], str]] = {
    "sender_address": lambda f: f.sender_address,
    "sender_domain": lambda f: f.sender_address.rpartition("@")[2],
    "sender_name": lambda f: f.sender_name,
    "subject": lambda f: f.subject,
    "body": lambda f: f.body,
    "channel": lambda f: f.channel,
    "category": lambda f: f.ticket.category,
    "status": lambda f: f.ticket.status,
    "sla_target": lambda f: f.sla_target,
    "language": lambda f: f.language,
}


def _text_matcher(operator: str, value: Any) -> Callable[[str], bool]:
    if operator == "regex":
        search = _regex(str(value)).search
        return lambda v: search(v) is not None
    if operator == "in":
        wanted = frozenset(_fold(v) for v in value)
        return lambda v: _fold(v) in wanted
    want = _fold(str(value))
    if operator == "equals":
        return lambda v: _fold(v) == want
    if operator == "contains":
        return lambda v: want in _fold(v)
    if operator == "starts_with":
        return lambda v: _fold(v).startswith(want)
    return lambda v: _fold(v).endswith(want)


def _compile_leaf(leaf: Leaf) -> Predicate:
    negate = leaf.negate
    if leaf.field in _SINGLE:
        get = _SINGLE[leaf.field]
        match = _text_matcher(leaf.operator, leaf.value)
        return lambda f, h: match(get(f)) != negate
    if leaf.field in CONTACT_FIELDS:
        return _compile_contact_leaf(leaf)
    if FIELDS[leaf.field] is Kind.TEXT_LIST:
        match = _text_matcher(leaf.operator, leaf.value)
        return lambda f, h: any(match(v) for v in _values(leaf, f)) != negate
    return lambda f, h: leaf_holds(leaf, f, h)


def _compile_contact_leaf(leaf: Leaf) -> Predicate:
    """A contact field's leaf: without a contact (or a customer value) it does not hold."""
    negate = leaf.negate
    if leaf.field == "contact_field":
        match, key = _text_matcher(leaf.operator, leaf.value), leaf.name
        return lambda f, h: (
            (f.contact is not None and match(f.contact.custom.get(key, ""))) != (negate)
        )
    if leaf.field == "vip":
        want = leaf.value
        return lambda f, h: (f.contact is not None and f.contact.vip == want) != negate
    op, value = leaf.operator, leaf.value
    return lambda f, h: (
        (
            f.contact is not None
            and f.contact.customer_value is not None
            and _compare(op, f.contact.customer_value, value)
        )
        != negate
    )


def _compile(c: Leaf | Group) -> Predicate:
    if isinstance(c, Leaf):
        return _compile_leaf(c)
    parts = tuple(_compile(x) for x in c.conditions)
    if not parts:
        return lambda f, h: True
    if c.match == "all":
        return lambda f, h: all(p(f, h) for p in parts)
    return lambda f, h: any(p(f, h) for p in parts)


def compiled(group: Group) -> Predicate:
    """The group as one predicate, compiled once per group object (rules are kept in
    memory, so each is compiled once after it is loaded)."""
    hit = _COMPILED.get(id(group))
    if hit is not None and hit[0] is group:
        return hit[1]
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    fn = _compile(group)
    _COMPILED[id(group)] = (group, fn)
    return fn


def reads_mail_details(group: Group, fields: frozenset[str] = MAIL_DETAIL_FIELDS) -> bool:
    """Whether a condition reads one of `fields` (by default what only the parsed mail
    has: headers, attachments)."""
    for c in group.conditions:
        if isinstance(c, Group):
            if reads_mail_details(c, fields):
                return True
        elif c.field in fields:
            return True
    return False


def reads_contact(group: Group) -> bool:
    """Whether a condition reads the sender's contact."""
    return reads_mail_details(group, CONTACT_FIELDS)


# -- gates: a leaf a rule cannot hold without, checked first (intake's hot path) ----------

_GATE_OPERATORS = frozenset({"equals", "contains", "starts_with", "ends_with"})


@dataclass(frozen=True, slots=True)
class Gate:
    """A text leaf on a one-value field that must hold for the rule's conditions to hold
    (in a top-level `all`, or in an `all` nested in one), its needle folded once; checked
    against the mail's field folded once per mail (`folded_field`), before the rule runs."""

    field: str
    check: Callable[[str], bool]  # on the folded field


def _gate_check(operator: str, needle: str) -> Callable[[str], bool]:
    if operator == "contains":
        return lambda have: needle in have
    if operator == "equals":
        return needle.__eq__
    if operator == "starts_with":
        return lambda have: have.startswith(needle)
    return lambda have: have.endswith(needle)


def _find_gate(group: Group) -> Gate | None:
    if group.match != "all" and len(group.conditions) != 1:
        return None
    for c in group.conditions:
        if isinstance(c, Group):
            found = _find_gate(c)
            if found is not None:
                return found
        elif (
            not c.negate
            and c.field in _SINGLE
            and c.operator in _GATE_OPERATORS
            and isinstance(c.value, str)
        ):
            return Gate(c.field, _gate_check(c.operator, _fold(c.value)))
    return None


_GATES: dict[int, tuple[Group, Gate | None]] = {}


def gate_of(group: Group) -> Gate | None:
    """The group's gate, if it has one, found once per group object."""
    hit = _GATES.get(id(group))
    if hit is not None and hit[0] is group:
        return hit[1]
    if len(_GATES) >= _COMPILED_MAX:
        _GATES.clear()
    found = _find_gate(group)
    _GATES[id(group)] = (group, found)
    return found


def folded_field(facts: Facts, field: str) -> str:
    """A one-value text field of the mail, folded (a gate's field: the caller keeps it for
    the rest of the mail's rules)."""
    return _fold(_SINGLE[field](facts))
