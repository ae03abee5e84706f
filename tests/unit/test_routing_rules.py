"""Routing rules (RTE-1), pure: validation naming the field, every condition and action in
Japanese and English, nested groups, stop, once per ticket, business hours, the depth
limit, and RE2 finishing a pattern that backtracks catastrophically elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.routing.rules import engine, model, validate
from services.routing.rules.model import Attachment, Facts, Rule, TicketState
from services.routing.rules_changes import with_trigger
from services.runtime.errors import InvalidArgument

INBOX = "0190f0d2-0000-7000-8000-0000000000bb"
OPERATOR = "0190f0d2-0000-7000-8000-0000000000cc"
AT = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)  # a Monday


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {
        "sender_address": "Taro@Example.CO.JP",
        "sender_name": "山田 太郎",
        "recipients": ("support@shop.example", "cc@shop.example"),
        "subject": "【至急】商品の返品について",
        "body": "注文番号: 12345 の商品を返品したいです。Please refund.",
        "channel": "smtp",
        "received_at": AT,
        "has_attachments": True,
        "size": 4096,
        "attachment_count": 1,
        "attachments": (Attachment("レシート.PDF", "application/pdf"),),
        "headers": {"x-mailer": ("Outlook 16",), "x-priority": ("1",)},
    }
    base.update(kw)
    return Facts(**base)


def rule(
    conditions: list[dict[str, Any]] | dict[str, Any],
    actions: list[dict[str, Any]],
    *,
    name: str = "r",
    rid: str = "",
    **kw: Any,
) -> Rule:
    group = (
        conditions if isinstance(conditions, dict) else {"match": "all", "conditions": conditions}
    )
    raw = {
        "name": name,
        "triggers": ["new_ticket", "customer_reply"],
        "conditions": group,
        "actions": actions,
    }
    raw.update(kw)
    return Rule(id=rid or name, position=0, version=1, definition=validate.parse(raw))


def holds(cond: dict[str, Any], f: Facts | None = None, in_hours: Any = None) -> bool:
    """Whether the condition holds — the dry run's traced evaluation and intake's
    compiled one agreeing."""
    r = rule([cond], [{"type": "add_label", "value": "x"}])
    hours = in_hours or (lambda c, a: None)
    ev = engine.evaluate([r], f or facts(), model.NEW_TICKET, hours)
    fast = engine.evaluate([r], f or facts(), model.NEW_TICKET, hours, traced=False)
    assert fast.decision.fired == (["r"] if ev.results[0].matched else [])
    return ev.results[0].matched


def c(field: str, operator: str, value: Any, **kw: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value, **kw}


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (c("subject", "contains", "返品"), True),
        (c("subject", "contains", "交換"), False),
        (c("subject", "starts_with", "【至急】"), True),
        (c("subject", "ends_with", "について"), True),
        (c("subject", "equals", "【至急】商品の返品について"), True),
        (c("subject", "contains", "［至急］"), False),
        (c("body", "contains", "ＲＥＦＵＮＤ"), True),  # full-width, upper case: NFKC + casefold
        (c("body", "contains", "注文番号: 12345"), True),
        (c("body", "regex", r"注文番号[:：]?\s*\d{5}"), True),
        (c("body", "regex", r"^Please"), False),
        (c("sender_address", "equals", "taro@example.co.jp"), True),
        (c("sender_domain", "in", ["example.com", "EXAMPLE.co.jp"]), True),
        (c("sender_domain", "ends_with", ".co.jp"), True),
        (c("sender_name", "contains", "山田"), True),
        (c("recipients", "equals", "cc@shop.example"), True),
        (c("recipients", "starts_with", "sales@"), False),
        (c("header", "equals", "1", name="X-Priority"), True),
        (c("header", "contains", "outlook", name="x-mailer"), True),
        (c("header", "equals", "", name="X-Absent"), True),
        (c("has_attachments", "equals", True), True),
        (c("has_attachments", "equals", False), False),
        (c("attachment_name", "ends_with", ".pdf"), True),
        (c("attachment_name", "contains", "レシート"), True),
        (c("attachment_type", "equals", "application/pdf"), True),
        (c("attachment_type", "starts_with", "image/"), False),
        (c("attachment_count", "gte", 1), True),
        (c("attachment_count", "gt", 1), False),
        (c("size", "lt", 10000), True),
        (c("size", "in", [1, 4096]), True),
        (c("channel", "equals", "smtp"), True),
        (c("channel", "in", ["form", "imap"]), False),
        (c("labels", "equals", "vip"), False),
        (c("category", "equals", ""), True),
        (c("priority", "equals", "normal"), True),
        (c("priority", "lt", "high"), True),
        (c("priority", "gte", "high"), False),
        (c("priority", "in", ["low", "normal"]), True),
        (c("status", "equals", "open"), True),
        (c("received_at", "after", "2026-12-07T19:00:00+09:00"), True),
        (c("received_at", "before", "2026-12-07T10:00:00Z"), False),
        (c("subject", "contains", "返品", negate=True), False),
    ],
)
def test_each_condition(cond: dict[str, Any], expected: bool) -> None:
    assert holds(cond) is expected


def test_ticket_fields_read_the_current_ticket() -> None:
    f = facts(
        ticket=TicketState(
            labels=frozenset({"VIP"}), category="請求", priority="urgent", status="pending"
        )
    )
    assert holds(c("labels", "equals", "vip"), f)
    assert holds(c("category", "equals", "請求"), f)
    assert holds(c("priority", "gt", "high"), f)
    assert holds(c("status", "in", ["pending", "open"]), f)


def test_business_hours_condition_uses_the_injected_calendar() -> None:
    calls: list[tuple[str, datetime]] = []

    def in_hours(cal: str, at: datetime) -> bool | None:
        calls.append((cal, at))
        return {"jp": True, "night": False}.get(cal)

    assert holds(c("business_hours", "inside", "jp"), in_hours=in_hours)
    assert not holds(c("business_hours", "outside", "jp"), in_hours=in_hours)
    assert holds(c("business_hours", "outside", "night"), in_hours=in_hours)
    assert not holds(c("business_hours", "inside", "unknown"), in_hours=in_hours)
    assert not holds(c("business_hours", "outside", "unknown"), in_hours=in_hours)
    assert calls[0] == ("jp", AT)


def test_nested_groups_and_or() -> None:
    nested = {
        "match": "all",
        "conditions": [
            c("subject", "contains", "返品"),
            {
                "match": "any",
                "conditions": [
                    c("sender_domain", "equals", "other.example"),
                    {
                        "match": "all",
                        "conditions": [c("channel", "equals", "smtp"), c("size", "gt", 100)],
                    },
                ],
            },
        ],
    }
    r = rule(nested, [{"type": "set_priority", "value": "high"}])
    ev = engine.evaluate([r], facts(), model.NEW_TICKET, lambda c_, a: None)
    res = ev.results[0]
    assert res.matched
    by_path = {t.path: t.held for t in res.conditions}
    assert by_path == {
        "conditions": True,
        "conditions.conditions[0]": True,
        "conditions.conditions[1]": True,
        "conditions.conditions[1].conditions[0]": False,
        "conditions.conditions[1].conditions[1]": True,
        "conditions.conditions[1].conditions[1].conditions[0]": True,
        "conditions.conditions[1].conditions[1].conditions[1]": True,
    }
    assert res.conditions[1].description == 'subject contains "返品"'
    other = engine.evaluate([r], facts(channel="form"), model.NEW_TICKET, lambda c_, a: None)
    assert not other.results[0].matched
    assert other.decision.priority is None
    for f, fired in ((facts(), ["r"]), (facts(channel="form"), [])):
        fast = engine.evaluate([r], f, model.NEW_TICKET, lambda c_, a: None, traced=False)
        assert fast.decision.fired == fired
        assert len(fast.results) == len(fired)  # intake keeps only the rules that ran


def test_an_empty_group_always_holds() -> None:
    r = rule([], [{"type": "add_label", "value": "all mail"}])
    assert engine.evaluate([r], facts(), model.NEW_TICKET, lambda c_, a: None).results[0].matched


def test_every_action_and_its_text() -> None:
    acts = [
        {"type": "move_to_inbox", "value": INBOX},
        {"type": "set_status", "value": "pending"},
        {"type": "assign", "value": OPERATOR},
        {"type": "add_label", "value": "返品"},
        {"type": "add_label", "value": "old"},
        {"type": "remove_label", "value": "old"},
        {"type": "set_category", "value": "返品・交換"},
        {"type": "set_priority", "value": "urgent"},
        {"type": "require_approval"},
    ]
    ev = engine.evaluate(
        [rule([], acts, name="返品ルール")], facts(), model.NEW_TICKET, lambda c_, a: None
    )
    d = ev.decision
    assert d.inbox_id == INBOX
    assert d.status == "pending"
    assert d.assignee_id == OPERATOR and not d.assign_by_strategy
    assert d.add_labels == ["返品", "approval-required"]
    assert d.remove_labels == ["old"]
    assert (d.category, d.priority, d.approval_label) == (
        "返品・交換",
        "urgent",
        "approval-required",
    )
    assert not d.spam and not d.trash
    assert d.trace[0] == ("返品ルール", "返品ルール", f"move to inbox {INBOX}")
    assert ("返品ルール", "返品ルール", "add label 返品") in d.trace
    assert ("返品ルール", "返品ルール", "require approval (label approval-required)") in d.trace


def test_strategy_spam_and_trash() -> None:
    r1 = rule([], [{"type": "assign", "value": OPERATOR}, {"type": "assign_by_strategy"}])
    d = engine.evaluate([r1], facts(), model.NEW_TICKET, lambda c_, a: None).decision
    assert d.assign_by_strategy and d.assignee_id is None
    r2 = rule([c("subject", "contains", "viagra")], [{"type": "mark_spam"}], name="spam")
    r3 = rule([], [{"type": "move_to_trash"}], name="trash")
    d2 = engine.evaluate(
        [r2], facts(subject="Cheap VIAGRA"), model.NEW_TICKET, lambda c_, a: None
    ).decision
    assert d2.spam and d2.trash
    d3 = engine.evaluate([r3], facts(), model.NEW_TICKET, lambda c_, a: None).decision
    assert d3.trash and not d3.spam


def test_later_rules_see_earlier_rules_changes_and_stop_ends_the_run() -> None:
    first = rule(
        [c("subject", "contains", "返品")], [{"type": "add_label", "value": "返品"}], name="a"
    )
    second = rule(
        [c("labels", "equals", "返品")],
        [{"type": "set_priority", "value": "high"}, {"type": "stop"}],
        name="b",
    )
    third = rule([], [{"type": "set_priority", "value": "low"}], name="c")
    ev = engine.evaluate([first, second, third], facts(), model.NEW_TICKET, lambda c_, a: None)
    assert ev.decision.priority == "high"
    assert [r.rule_name for r in ev.results] == ["a", "b"]
    assert ev.decision.stopped
    without_stop = engine.evaluate([first, third], facts(), model.NEW_TICKET, lambda c_, a: None)
    assert without_stop.decision.priority == "low"


def test_triggers_disabled_once_per_ticket_and_business_hours_skip_a_rule() -> None:
    only_new = rule([], [{"type": "add_label", "value": "x"}], name="new", triggers=["new_ticket"])
    off = rule([], [{"type": "add_label", "value": "x"}], name="off", enabled=False)
    once = rule([], [{"type": "add_label", "value": "once"}], name="once", once_per_ticket=True)
    inside = rule(
        [],
        [{"type": "add_label", "value": "day"}],
        name="day",
        business_hours={"calendar_id": "jp", "when": "inside"},
    )
    outside = rule(
        [],
        [{"type": "add_label", "value": "night"}],
        name="night",
        business_hours={"calendar_id": "jp", "when": "outside"},
    )
    rules = [only_new, off, once, inside, outside]
    ev = engine.evaluate(
        rules, facts(), model.CUSTOMER_REPLY, lambda c_, a: False, ran_before=frozenset({"once"})
    )
    assert [(r.rule_name, r.skipped) for r in ev.results] == [
        ("new", "trigger"),
        ("off", "disabled"),
        ("once", "once_per_ticket"),
        ("day", "outside_business_hours"),
        ("night", ""),
    ]
    assert ev.decision.add_labels == ["night"]
    first_time = engine.evaluate([once], facts(), model.CUSTOMER_REPLY, lambda c_, a: True)
    assert first_time.decision.fired == ["once"]


def test_depth_limit_ends_rules_triggering_rules() -> None:
    """A rule that answers a change with a change would run forever: each round is one
    deeper, and at the limit nothing runs."""
    r = rule([], [{"type": "add_label", "value": "again"}], triggers=["ticket_changed"])
    rounds = 0
    depth = 0
    while True:
        ev = engine.evaluate([r], facts(), model.TICKET_CHANGED, lambda c_, a: None, depth=depth)
        if ev.decision.empty:
            break
        rounds += 1
        depth += 1
    assert rounds == model.MAX_DEPTH
    assert ev.depth_limited


def test_catastrophic_backtracking_pattern_finishes() -> None:
    """`(a+)+$` on 'a'*5000+'b' backtracks exponentially in Python's re; RE2 is linear."""
    r = rule([c("body", "regex", "(a+)+$")], [{"type": "add_label", "value": "x"}])
    ev = engine.evaluate([r], facts(body="a" * 5000 + "b"), model.NEW_TICKET, lambda c_, a: None)
    assert not ev.results[0].matched
    ev2 = engine.evaluate([r], facts(body="a" * 5000), model.NEW_TICKET, lambda c_, a: None)
    assert ev2.results[0].matched


def _refused(raw: dict[str, Any]) -> str:
    base: dict[str, Any] = {
        "name": "r",
        "triggers": ["new_ticket"],
        "conditions": {"match": "all", "conditions": []},
        "actions": [{"type": "stop"}],
    }
    base.update(raw)
    with pytest.raises(InvalidArgument) as err:
        validate.parse(base)
    assert err.value.field
    return err.value.field


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": " "}, "name"),
        ({"colour": "red"}, "colour"),
        ({"inbox_id": "nope"}, "inbox_id"),
        ({"triggers": []}, "triggers"),
        ({"triggers": ["new_ticket", "sla_breach"]}, "triggers[1]"),
        (
            {"conditions": {"match": "all", "conditions": [c("shoe_size", "equals", "x")]}},
            "conditions.conditions[0].field",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("subject", "gt", "x")]}},
            "conditions.conditions[0].operator",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("body", "regex", "(a)\\1")]}},
            "conditions.conditions[0].value",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("body", "regex", "(?<=a)b")]}},
            "conditions.conditions[0].value",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("body", "regex", "([a-")]}},
            "conditions.conditions[0].value",
        ),
        (
            {
                "conditions": {
                    "match": "any",
                    "conditions": [{"match": "all", "conditions": [c("size", "gt", "big")]}],
                }
            },
            "conditions.conditions[0].conditions[0].value",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("header", "equals", "x")]}},
            "conditions.conditions[0].name",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("subject", "in", [])]}},
            "conditions.conditions[0].value",
        ),
        (
            {
                "conditions": {
                    "match": "all",
                    "conditions": [c("received_at", "after", "2026-12-07")],
                }
            },
            "conditions.conditions[0].value",
        ),
        ({"conditions": {"match": "both", "conditions": []}}, "conditions.match"),
        ({"actions": []}, "actions"),
        ({"actions": [{"type": "stop"}, {"type": "explode"}]}, "actions[1].type"),
        ({"actions": [{"type": "set_status", "value": "closed"}]}, "actions[0].value"),
        ({"actions": [{"type": "set_priority", "value": "p1"}]}, "actions[0].value"),
        ({"actions": [{"type": "assign", "value": "bob"}]}, "actions[0].value"),
        ({"actions": [{"type": "add_label", "value": ""}]}, "actions[0].value"),
        ({"business_hours": {"calendar_id": "jp", "when": "evening"}}, "business_hours.when"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(raw: dict[str, Any], field: str) -> None:
    assert _refused(raw) == field


def test_groups_nest_at_most_five_levels() -> None:
    group: dict[str, Any] = {"match": "all", "conditions": []}
    for _ in range(model.MAX_GROUP_DEPTH):
        group = {"match": "any", "conditions": [group]}
    assert _refused({"conditions": group}).startswith("conditions")


def test_a_rule_survives_its_json_round_trip() -> None:
    r = rule(
        {
            "match": "any",
            "conditions": [
                c("received_at", "after", "2026-12-07T19:00:00+09:00"),
                c("size", "in", [1, 2]),
                c("header", "contains", "x", name="X-Mailer", negate=True),
            ],
        },
        [{"type": "require_approval"}, {"type": "stop"}],
        business_hours={"calendar_id": "jp", "when": "outside"},
    )
    again = validate.parse(validate.to_json(r.definition))
    assert again == r.definition


def test_sla_triggers_are_accepted_and_select_only_the_rules_having_them() -> None:
    """A breach runs the rules with `sla_breached` (tenant-wide and the ticket's inbox),
    a warning those with `sla_warning`; no other rule runs on either."""
    breached = rule(
        [],
        [{"type": "set_priority", "value": "urgent"}, {"type": "add_label", "value": "期限超過"}],
        name="breached",
        triggers=["sla_breached"],
    )
    warned = rule(
        [], [{"type": "set_priority", "value": "high"}], name="warned", triggers=["sla_warning"]
    )
    both = rule(
        [{"field": "priority", "operator": "gte", "value": "high"}],
        [{"type": "add_label", "value": "escalated"}],
        name="both",
        triggers=["sla_warning", "sla_breached"],
    )
    other_inbox = rule(
        [],
        [{"type": "add_label", "value": "other"}],
        name="other inbox",
        triggers=["sla_breached"],
        inbox_id=INBOX,
    )
    mail_rule = rule([], [{"type": "add_label", "value": "mail"}], name="mail")
    assert breached.definition.triggers == ("sla_breached",)
    assert both.definition.triggers == ("sla_warning", "sla_breached")

    loaded = [breached, warned, both, other_inbox, mail_rule]
    on_breach = with_trigger(loaded, model.SLA_BREACHED, "another-inbox")
    assert [r.name for r in on_breach] == ["breached", "both"]
    assert [r.name for r in with_trigger(loaded, model.SLA_BREACHED, INBOX)] == [
        "breached",
        "both",
        "other inbox",
    ]
    assert [r.name for r in with_trigger(loaded, model.SLA_WARNING)] == ["warned", "both"]

    ev = engine.evaluate(loaded, facts(), model.SLA_BREACHED, lambda c_, a: None)
    assert ev.decision.priority == "urgent"
    assert ev.decision.add_labels == ["期限超過", "escalated", "other"]
    assert [(r.rule_name, r.skipped) for r in ev.results if r.skipped] == [
        ("warned", "trigger"),
        ("mail", "trigger"),
    ]
    warning = engine.evaluate(loaded, facts(), model.SLA_WARNING, lambda c_, a: None)
    assert warning.decision.fired == ["warned", "both"]


def test_sla_target_condition_reads_which_target_broke() -> None:
    cond = {"field": "sla_target", "operator": "equals", "value": "resolution"}
    assert holds(cond, facts(sla_target="resolution"))
    assert not holds(cond, facts(sla_target="first_response"))
    assert not holds(cond, facts())  # not an SLA trigger: no target
    either = {"field": "sla_target", "operator": "in", "value": ["first_response", "next_response"]}
    assert holds(either, facts(sla_target="next_response"))


# -- contact fields, detected language, required skills (issue 18, facts) ----------------

CONTACT = model.ContactFacts(
    custom={"plan": "ゴールド", "会社規模": "大企業"}, customer_value=1500.0, vip=True
)


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        (c("contact_field", "equals", "ゴールド", name="plan"), True),
        (c("contact_field", "contains", "大企", name="会社規模"), True),
        (c("contact_field", "equals", "gold", name="plan"), False),
        (c("contact_field", "equals", "", name="absent"), True),  # an absent key reads ""
        (c("customer_value", "gte", 1000), True),
        (c("customer_value", "lt", 1000), False),
        (c("customer_value", "in", [1500, 2000]), True),
        (c("vip", "equals", True), True),
        (c("vip", "equals", False), False),
        (c("language", "equals", "ja"), True),
        (c("language", "in", ["en", "fr"]), False),
        (c("language", "in", ["en", "ja"]), True),
    ],
)
def test_contact_fields_and_language(cond: dict[str, Any], expected: bool) -> None:
    assert holds(cond, facts(contact=CONTACT, language="ja")) is expected


@pytest.mark.parametrize(
    "cond",
    [
        c("contact_field", "equals", "", name="plan"),
        c("customer_value", "gte", 0),
        c("vip", "equals", False),
        c("vip", "equals", True),
    ],
)
def test_without_a_contact_no_contact_condition_holds_and_its_negation_does(
    cond: dict[str, Any],
) -> None:
    """A first mail: the sender has no contact yet."""
    assert not holds(cond, facts(contact=None))
    assert holds({**cond, "negate": True}, facts(contact=None))


def test_a_contact_without_a_customer_value_does_not_compare_it() -> None:
    plain = model.ContactFacts(custom={}, customer_value=None, vip=False)
    assert not holds(c("customer_value", "gte", 0), facts(contact=plain))
    assert holds(c("vip", "equals", False), facts(contact=plain))


def test_an_unknown_language_holds_for_nothing_but_its_negation() -> None:
    assert not holds(c("language", "in", ["ja", "en"]), facts(language=""))
    assert holds(c("language", "equals", "ja", negate=True), facts(language=""))


def test_require_skill_adds_up_keeping_the_higher_level_and_reads_back() -> None:
    r1 = rule([], [{"type": "require_skill", "value": "Billing", "level": 2}], name="a")
    r2 = rule(
        [],
        [
            {"type": "require_skill", "value": "billing", "level": 4},
            {"type": "require_skill", "value": "日本語敬語"},
        ],
        name="b",
    )
    d = engine.evaluate([r1, r2], facts(), model.NEW_TICKET, lambda c_, a: None).decision
    assert sorted(d.required_skills.values()) == [("Billing", 4), ("日本語敬語", 1)]
    assert ("b", "b", "require skill billing (level 4+)") in d.trace
    assert validate.to_json(r2.definition)["actions"] == [
        {"type": "require_skill", "value": "billing", "level": 4},
        {"type": "require_skill", "value": "日本語敬語", "level": 1},
    ]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            {"conditions": {"match": "all", "conditions": [c("contact_field", "equals", "x")]}},
            "conditions.conditions[0].name",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("vip", "equals", "yes")]}},
            "conditions.conditions[0].value",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("customer_value", "gte", "lots")]}},
            "conditions.conditions[0].value",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("language", "before", "ja")]}},
            "conditions.conditions[0].operator",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("vip", "equals", True, name="x")]}},
            "conditions.conditions[0].name",
        ),
        (
            {"actions": [{"type": "require_skill", "value": "billing", "level": 6}]},
            "actions[0].level",
        ),
        ({"actions": [{"type": "require_skill", "value": " "}]}, "actions[0].value"),
        ({"actions": [{"type": "add_label", "value": "x", "level": 2}]}, "actions[0].level"),
        (
            {"conditions": {"match": "all", "conditions": [c("language", "in", ["ja", "日本語"])]}},
            "conditions.conditions[0].value[1]",
        ),
        (
            {"conditions": {"match": "all", "conditions": [c("language", "equals", "english")]}},
            "conditions.conditions[0].value",
        ),
    ],
)
def test_bad_facts_conditions_and_skills_name_their_field(raw: dict[str, Any], field: str) -> None:
    assert _refused(raw) == field


def test_only_rules_reading_the_contact_make_intake_ask_for_it() -> None:
    reads = rule([c("vip", "equals", True)], [{"type": "stop"}])
    nested = rule(
        {
            "match": "any",
            "conditions": [{"match": "all", "conditions": [c("customer_value", "gt", 1)]}],
        },
        [{"type": "stop"}],
    )
    plain = rule([c("language", "equals", "ja")], [{"type": "stop"}])
    off = rule([c("vip", "equals", True)], [{"type": "stop"}], enabled=False)
    assert engine.needs_contact([plain, reads]) and engine.needs_contact([nested])
    assert not engine.needs_contact([plain, off])
