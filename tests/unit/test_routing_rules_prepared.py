"""Intake's prepared rules (services/routing/rules/engine.py `prepared`, conditions.py
gates): the same decision as the dry run's traced evaluation for any rule list — gates
passed over only when the rule could not hold, a gate on a ticket field re-read after an
earlier rule changed it, disabled rules and other triggers left out, stop honoured."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.rules import conditions, engine, model, validate
from services.routing.rules.model import Facts, Rule

AT = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)
WORDS = ["返品", "交換", "REFUND", "ｒｅｆｕｎｄ", "注文", "urgent", "vip", "こんにちは"]
LEAVES = st.builds(
    lambda field, op, word, negate: {
        "field": field,
        "operator": op,
        "value": [word, "other"] if op == "in" else word,
        "negate": negate,
    },
    st.sampled_from(["subject", "body", "sender_name", "category", "labels"]),
    st.sampled_from(["contains", "equals", "starts_with", "ends_with", "in"]),
    st.sampled_from(WORDS),
    st.booleans(),
)
GROUPS = st.recursive(
    LEAVES,
    lambda inner: st.builds(
        lambda match, conds: {"match": match, "conditions": conds},
        st.sampled_from(["all", "any"]),
        st.lists(inner, max_size=3),
    ),
    max_leaves=5,
)
ACTIONS = st.sampled_from(
    [
        {"type": "add_label", "value": "vip"},
        {"type": "set_category", "value": "返品"},
        {"type": "set_category", "value": "urgent"},
        {"type": "set_priority", "value": "high"},
        {"type": "stop"},
    ]
)


def _rule(i: int, group: dict[str, Any], actions: list[dict[str, Any]], **kw: Any) -> Rule:
    if "field" in group:
        group = {"match": "all", "conditions": [group]}
    raw = {"name": f"r{i}", "triggers": ["new_ticket"], "conditions": group, "actions": actions}
    raw.update(kw)
    return Rule(str(i), i, 1, validate.parse(raw))


RULES = st.lists(
    st.tuples(GROUPS, st.lists(ACTIONS, min_size=1, max_size=2), st.booleans(), st.booleans()),
    max_size=8,
).map(
    lambda drawn: tuple(
        _rule(
            i,
            g,
            a,
            enabled=enabled,
            triggers=["new_ticket"] if new else ["customer_reply"],
        )
        for i, (g, a, enabled, new) in enumerate(drawn)
    )
)


def _facts(subject: str, body: str) -> Facts:
    return Facts(
        "taro@example.jp", "山田 vip", ("s@shop.example",), subject, body, "smtp", AT, False, 10
    )


def _decision(ev: model.Evaluation) -> model.Decision:
    return ev.decision  # every field: the actions taken, their trace, the rules fired


@settings(max_examples=300, deadline=None)
@given(RULES, st.sampled_from(WORDS), st.sampled_from(WORDS))
def test_prepared_rules_decide_as_the_dry_run(
    rules: tuple[Rule, ...], subject: str, body: str
) -> None:
    f = _facts(f"件名 {subject}", f"{body} 本文")
    traced = engine.evaluate(rules, f, model.NEW_TICKET, lambda c, a: None)
    fast = engine.evaluate(rules, f, model.NEW_TICKET, lambda c, a: None, traced=False)
    assert _decision(fast) == _decision(traced)
    again = engine.evaluate(list(rules), f, model.NEW_TICKET, lambda c, a: None, traced=False)
    assert _decision(again) == _decision(traced)  # a list: prepared each time, same answer


def test_a_gate_is_a_leaf_the_rule_cannot_hold_without() -> None:
    gated = _rule(
        0,
        {
            "match": "all",
            "conditions": [
                {
                    "match": "all",
                    "conditions": [
                        {"field": "subject", "operator": "contains", "value": "ＲＥＴＵＲＮ"}
                    ],
                },
                {"field": "body", "operator": "regex", "value": "x+"},
            ],
        },
        [{"type": "add_label", "value": "x"}],
    )
    gate = conditions.gate_of(gated.definition.conditions)
    assert gate is not None and gate.field == "subject"
    assert gate.check("please return it") and not gate.check("返品")
    any_of = _rule(
        1,
        {
            "match": "any",
            "conditions": [
                {"field": "subject", "operator": "contains", "value": "a"},
                {"field": "body", "operator": "contains", "value": "b"},
            ],
        },
        [{"type": "add_label", "value": "x"}],
    )
    negated = _rule(
        2,
        {"field": "subject", "operator": "contains", "value": "a", "negate": True},
        [{"type": "add_label", "value": "x"}],
    )
    assert conditions.gate_of(any_of.definition.conditions) is None
    assert conditions.gate_of(negated.definition.conditions) is None


def test_a_later_rules_gate_reads_the_category_an_earlier_rule_set() -> None:
    first = _rule(
        0,
        {"field": "subject", "operator": "contains", "value": "返品"},
        [{"type": "set_category", "value": "返品"}],
    )
    second = _rule(
        1,
        {"field": "category", "operator": "equals", "value": "返品"},
        [{"type": "add_label", "value": "returns"}],
    )
    ev = engine.evaluate(
        (first, second), _facts("返品", ""), model.NEW_TICKET, lambda c, a: None, traced=False
    )
    assert ev.decision.fired == ["0", "1"]
    assert ev.decision.add_labels == ["returns"]


def test_the_calendars_are_needed_only_when_a_rule_reads_business_hours() -> None:
    plain = _rule(0, {"field": "subject", "operator": "contains", "value": "a"}, [STOP])
    option = _rule(1, {"match": "all", "conditions": []}, [STOP], business_hours=HOURS)
    nested = _rule(
        2,
        {
            "match": "any",
            "conditions": [
                {
                    "match": "all",
                    "conditions": [
                        {"field": "business_hours", "operator": "inside", "value": "cal-1"}
                    ],
                },
            ],
        },
        [STOP],
    )
    off = _rule(3, {"match": "all", "conditions": []}, [STOP], business_hours=HOURS, enabled=False)
    assert not engine.needs_hours((plain, off))
    assert engine.needs_hours((plain, option))
    assert engine.needs_hours((plain, nested))
    assert engine.needs_hours([nested])  # a list: worked out each time, the same answer


STOP = {"type": "stop"}
HOURS = {"calendar_id": "cal-1", "when": "inside"}
