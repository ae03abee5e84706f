"""Assignment (RTE-2): who gets which waiting ticket (services/routing/assignment.py)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.routing import assignment as a
from services.runtime.errors import InvalidArgument

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
INBOX = "inbox-1"
OTHER_INBOX = "inbox-2"


def _tickets(n: int, inbox: str = INBOX, waited_minutes: int = 0) -> list[a.Waiting]:
    return [
        a.Waiting(
            f"t{i:03}",
            inbox,
            "mail",
            NOW - timedelta(minutes=waited_minutes, seconds=n - i),
        )
        for i in range(n)
    ]


def _op(
    name: str,
    capacity: int | None = None,
    presence: a.Presence = a.Presence.ONLINE,
    loads: dict[tuple[str, str], int] | None = None,
    new_last_hour: int = 0,
    inboxes: frozenset[str] = frozenset({INBOX}),
) -> a.OperatorState:
    return a.OperatorState(
        name, presence, inboxes, capacity=capacity, loads=loads or {}, new_last_hour=new_last_hour
    )


def _policy(
    strategy: a.Strategy = a.Strategy.LEAST_LOADED, **kw: object
) -> dict[str, a.InboxPolicy]:
    return {INBOX: a.InboxPolicy(INBOX, strategy, **kw)}  # type: ignore[arg-type]


def _given(plan: a.Plan) -> Counter[str]:
    return Counter(x.operator_id for x in plan.assignments)


@pytest.mark.parametrize("strategy", [a.Strategy.LEAST_LOADED, a.Strategy.ROUND_ROBIN])
def test_capacities_2_1_0_with_10_tickets_assign_exactly_2_1_0_and_leave_7_waiting(
    strategy: a.Strategy,
) -> None:
    ops = [_op("ann", 2), _op("bob", 1), _op("cat", 0)]
    plan = a.plan(_tickets(10), ops, _policy(strategy), {}, NOW)
    assert _given(plan) == {"ann": 2, "bob": 1}
    assert len(plan.assignments) == 3  # 7 stay waiting
    assert len({x.ticket_id for x in plan.assignments}) == 3


def test_the_highest_score_goes_first_one_point_a_minute_waited() -> None:
    old = a.Waiting("old", INBOX, "mail", NOW - timedelta(hours=2))
    new = a.Waiting("new", INBOX, "mail", NOW - timedelta(minutes=1))
    urgent = a.Waiting("urgent", INBOX, "mail", NOW, priority=4)
    plan = a.plan([new, old, urgent], [_op("ann", 2)], _policy(), {}, NOW)
    assert [x.ticket_id for x in plan.assignments] == ["urgent", "old"]
    assert [a.score(t, NOW) for t in (old, new, urgent)] == [180, 61, 960]
    # a high ticket waits behind a normal one that has waited more than 3 hours longer
    high = a.Waiting("high", INBOX, "mail", NOW - timedelta(minutes=10), priority=3)
    normal = a.Waiting("normal", INBOX, "mail", NOW - timedelta(minutes=200))
    low = a.Waiting("low", INBOX, "mail", NOW - timedelta(minutes=400), priority=1)
    assert [t.ticket_id for t in a.queue_order([low, high, normal])] == ["low", "normal", "high"]
    later = NOW + timedelta(hours=1)
    ranked = sorted([low, high, normal, old, new, urgent], key=lambda t: -a.score(t, later))
    assert [t.ticket_id for t in a.queue_order(ranked)] == [t.ticket_id for t in ranked]


def test_operators_away_or_offline_receive_nothing() -> None:
    ops = [
        _op("ann", presence=a.Presence.AWAY),
        _op("bob", presence=a.Presence.OFFLINE),
    ]
    assert a.plan(_tickets(5), ops, _policy(), {}, NOW).assignments == ()
    ops.append(_op("cat", 3))
    assert _given(a.plan(_tickets(5), ops, _policy(), {}, NOW)) == {"cat": 3}


def test_an_online_presence_lapses_without_heartbeat() -> None:
    expires = NOW + a.ONLINE_FOR
    assert a.effective_presence(a.Presence.ONLINE, expires, NOW) is a.Presence.ONLINE
    assert a.effective_presence(a.Presence.ONLINE, expires, expires) is a.Presence.OFFLINE
    assert a.effective_presence(a.Presence.AWAY, None, expires) is a.Presence.AWAY


def test_least_loaded_counts_existing_load_and_each_planned_ticket() -> None:
    ops = [_op("ann", loads={(OTHER_INBOX, "mail"): 3}), _op("bob", loads={(INBOX, "mail"): 1})]
    plan = a.plan(_tickets(4), ops, _policy(), {}, NOW)
    # bob 1 → 2 → 3; at 3 each, ann has fewer of this inbox; then bob has the fewest
    assert [x.operator_id for x in plan.assignments] == ["bob", "bob", "ann", "bob"]


def test_round_robin_goes_round_from_the_cursor() -> None:
    ops = [_op("ann"), _op("bob"), _op("cat")]
    plan = a.plan(_tickets(4), ops, _policy(a.Strategy.ROUND_ROBIN), {INBOX: "bob"}, NOW)
    assert [x.operator_id for x in plan.assignments] == ["cat", "ann", "bob", "cat"]
    assert plan.cursors[INBOX] == "cat"


def test_manual_inboxes_and_non_members_get_nothing() -> None:
    ops = [_op("ann"), _op("out", inboxes=frozenset({OTHER_INBOX}))]
    assert a.plan(_tickets(3), ops, _policy(a.Strategy.MANUAL), {}, NOW).assignments == ()
    assert _given(a.plan(_tickets(3), ops, _policy(), {}, NOW)) == {"ann": 3}


def test_a_ticket_a_rule_handed_to_the_strategy_goes_by_least_loaded_in_a_manual_inbox() -> None:
    handed = a.Waiting("handed", INBOX, "mail", NOW, handed=True)
    plain = a.Waiting("plain", INBOX, "mail", NOW - timedelta(minutes=5))
    ops = [_op("ann", loads={(INBOX, "mail"): 2}), _op("bob", 3)]
    for policies in (_policy(a.Strategy.MANUAL, capacity=3), {}):
        plan = a.plan([plain, handed], ops, policies, {}, NOW)
        assert [(x.ticket_id, x.operator_id) for x in plan.assignments] == [("handed", "bob")]
        assert plan.assignments[0].strategy is a.Strategy.LEAST_LOADED
    tiered = _policy(a.Strategy.MANUAL, tiers=(a.Tier(("ann",)),))
    assert _given(a.plan([handed], ops, tiered, {}, NOW)) == {"ann": 1}  # its limits and tiers


def test_capacity_per_inbox_and_per_channel() -> None:
    ops = [
        a.OperatorState("ann", a.Presence.ONLINE, frozenset({INBOX}), channel_capacity={"mail": 2})
    ]
    assert len(a.plan(_tickets(5), ops, _policy(), {}, NOW).assignments) == 2
    ops = [_op("ann", loads={(INBOX, "mail"): 1})]
    assert len(a.plan(_tickets(5), ops, _policy(capacity=3), {}, NOW).assignments) == 2
    form = a.Waiting("form", INBOX, "form", NOW)
    plan = a.plan([*_tickets(3), form], ops, _policy(channel_capacity={"mail": 2}), {}, NOW)
    assert sorted(x.ticket_id for x in plan.assignments) == ["form", "t000"]


def test_fairness_caps_new_tickets_per_operator_per_hour() -> None:
    ops = [_op("ann", new_last_hour=1), _op("bob")]
    plan = a.plan(_tickets(10), ops, _policy(max_new_per_hour=3), {}, NOW)
    assert _given(plan) == {"ann": 2, "bob": 3}


def test_tiers_widen_after_their_timeout() -> None:
    tiers = (a.Tier(("ann",), 10), a.Tier(("bob",), 5), a.Tier(("cat",)))
    ops = [_op("ann", 1), _op("bob", 5), _op("cat", 5), _op("dan", 5)]
    policy = _policy(tiers=tiers)
    fresh = a.plan(_tickets(3, waited_minutes=0), ops, policy, {}, NOW)
    assert _given(fresh) == {"ann": 1}  # tier 0 only; the others wait
    later = a.plan(_tickets(3, waited_minutes=10), ops, policy, {}, NOW)
    assert _given(later) == {"ann": 1, "bob": 2}
    latest = a.plan(
        _tickets(3, waited_minutes=15), [*ops[:1], _op("bob", 0), *ops[2:]], policy, {}, NOW
    )
    assert _given(latest) == {"ann": 1, "cat": 2}  # dan is in no tier: never


def test_the_first_tier_with_room_wins_over_a_less_loaded_later_tier() -> None:
    tiers = (a.Tier(("ann",), 0), a.Tier(("bob",)))
    ops = [_op("ann", loads={(INBOX, "mail"): 4}), _op("bob")]
    plan = a.plan(_tickets(1), ops, _policy(tiers=tiers), {}, NOW)
    assert _given(plan) == {"ann": 1}


def test_next_widening_is_when_a_waiting_ticket_reaches_the_next_tier() -> None:
    tiers = (a.Tier(("ann",), 10), a.Tier(("bob",), 5), a.Tier(("cat",)))
    ticket = a.Waiting("t", INBOX, "mail", NOW - timedelta(minutes=12))
    assert a.next_widening([ticket], _policy(tiers=tiers), NOW) == NOW + timedelta(minutes=3)
    waited = a.Waiting("t", INBOX, "mail", NOW - timedelta(minutes=20))
    assert a.next_widening([waited], _policy(tiers=tiers), NOW) is None


def test_an_excluded_operator_is_skipped() -> None:
    ticket = a.Waiting("t", INBOX, "mail", NOW, exclude=frozenset({"ann"}))
    plan = a.plan(
        [ticket], [_op("ann"), _op("bob", loads={(INBOX, "mail"): 9})], _policy(), {}, NOW
    )
    assert _given(plan) == {"bob": 1}


def test_reassignment_is_due_only_without_a_reply_after_the_limit() -> None:
    policy = a.InboxPolicy(INBOX, a.Strategy.LEAST_LOADED, reassign_after_minutes=30)
    at = NOW - timedelta(minutes=30)
    assert a.due_for_reassignment(at, False, policy, NOW)
    assert not a.due_for_reassignment(at, True, policy, NOW)
    assert not a.due_for_reassignment(at + timedelta(seconds=1), False, policy, NOW)
    assert not a.due_for_reassignment(at, False, a.InboxPolicy(INBOX, a.Strategy.LEAST_LOADED), NOW)


def test_bad_policies_name_their_field() -> None:
    def refused(policy: a.InboxPolicy) -> str | None:
        with pytest.raises(InvalidArgument) as err:
            a.validated_policy(policy, frozenset({"ann", "bob"}))
        return err.value.field

    assert refused(a.InboxPolicy(INBOX, capacity=-1)) == "capacity"
    assert refused(a.InboxPolicy(INBOX, channel_capacity={"mail": -1})) == "channel_capacity"
    assert refused(a.InboxPolicy(INBOX, channel_capacity={"Mail!": 1})) == "channel_capacity"
    assert refused(a.InboxPolicy(INBOX, tiers=(a.Tier(("zed",)),))) == "tiers[0].operator_ids"
    two = (a.Tier(("ann",)), a.Tier(("ann",)))
    assert refused(a.InboxPolicy(INBOX, tiers=two)) == "tiers[1].operator_ids"
    late = (a.Tier(("bob",)), a.Tier(("ann",), -5))
    assert refused(a.InboxPolicy(INBOX, tiers=late)) == "tiers[1].widen_after_minutes"
    assert refused(a.InboxPolicy(INBOX, reassign_after_minutes=0)) == "reassign_after_minutes"
    assert refused(a.InboxPolicy(INBOX, max_new_per_hour=0)) == "max_new_per_hour"
    ok = a.validated_policy(a.InboxPolicy(INBOX, a.Strategy.ROUND_ROBIN, capacity=0), frozenset())
    assert ok.capacity == 0


def test_bad_profiles_name_their_field() -> None:
    def refused(profile: a.Profile) -> str | None:
        with pytest.raises(InvalidArgument) as err:
            a.validated_profile(profile)
        return err.value.field

    assert refused(a.Profile("ann", capacity=-1)) == "capacity"
    assert refused(a.Profile("ann", skills=(a.Skill("returns", 6),))) == "skills.level"
    dup = (a.Skill("返品", 1), a.Skill("返品 ", 2))
    assert refused(a.Profile("ann", skills=dup)) == "skills.name"
    assert refused(a.Profile("ann", languages=("ja", "EN"))) == "languages"
    ok = a.validated_profile(a.Profile("ann", 2, {}, (a.Skill(" 返品", 3),), ("ja", "ja", "en")))
    assert ok.skills == (a.Skill("返品", 3),) and ok.languages == ("ja", "en")


def test_the_audit_comment_names_the_strategy() -> None:
    assert a.strategy_label(a.Strategy.LEAST_LOADED) == "assigned by least loaded"


@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 5000)), min_size=1, max_size=30),
    st.integers(0, 10_000),
)
def test_the_queue_is_in_score_order_at_any_time(
    tickets: list[tuple[int, int]], later_minutes: int
) -> None:
    waiting = [
        a.Waiting(f"t{i}", INBOX, "mail", NOW - timedelta(minutes=waited), priority=priority)
        for i, (priority, waited) in enumerate(tickets)
    ]
    at = NOW + timedelta(minutes=later_minutes)
    scores = [a.score(t, at) for t in a.queue_order(waiting)]
    assert scores == sorted(scores, reverse=True)


_limits = st.one_of(st.none(), st.integers(0, 4))


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(list(a.Presence)),
            _limits,
            _limits,
            st.integers(0, 3),
            st.integers(0, 3),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    tickets=st.lists(
        st.tuples(st.booleans(), st.sampled_from(["mail", "form"]), st.integers(1, 4)),
        max_size=40,
    ),
    strategy=st.sampled_from([a.Strategy.ROUND_ROBIN, a.Strategy.LEAST_LOADED]),
    inbox_capacity=_limits,
    mail_capacity=_limits,
    fairness=st.one_of(st.none(), st.integers(1, 4)),
)
def test_no_plan_exceeds_any_capacity(
    ops: list[tuple[a.Presence, int | None, int | None, int, int, bool]],
    tickets: list[tuple[bool, str, int]],
    strategy: a.Strategy,
    inbox_capacity: int | None,
    mail_capacity: int | None,
    fairness: int | None,
) -> None:
    states = [
        a.OperatorState(
            f"op{i}",
            presence,
            frozenset({INBOX, OTHER_INBOX}) if member else frozenset({OTHER_INBOX}),
            capacity=capacity,
            channel_capacity={} if mail is None else {"mail": mail},
            loads={(INBOX, "mail"): load},
            new_last_hour=new,
        )
        for i, (presence, capacity, mail, load, new, member) in enumerate(ops)
    ]
    waiting = [
        a.Waiting(f"t{i}", INBOX if mine else OTHER_INBOX, channel, NOW, priority)
        for i, (mine, channel, priority) in enumerate(tickets)
    ]
    policies = {
        inbox: a.InboxPolicy(
            inbox,
            strategy,
            capacity=inbox_capacity,
            channel_capacity={} if mail_capacity is None else {"mail": mail_capacity},
            max_new_per_hour=fairness,
        )
        for inbox in (INBOX, OTHER_INBOX)
    }
    plan = a.plan(waiting, states, policies, {}, NOW)
    assert len({x.ticket_id for x in plan.assignments}) == len(plan.assignments)
    by_ticket = {t.ticket_id: t for t in waiting}
    for op in states:
        mine = [by_ticket[x.ticket_id] for x in plan.assignments if x.operator_id == op.operator_id]
        if not mine:
            continue
        assert op.presence is a.Presence.ONLINE and all(t.inbox_id in op.inboxes for t in mine)
        start = op.loads[(INBOX, "mail")]

        def within(limit: int | None, before: int, added: int) -> bool:
            return limit is None or added == 0 or before + added <= limit

        assert within(op.capacity, start, len(mine))
        mail = sum(t.channel == "mail" for t in mine)
        assert within(op.channel_capacity.get("mail"), start, mail)
        for inbox in (INBOX, OTHER_INBOX):
            before = start if inbox == INBOX else 0
            here = [t for t in mine if t.inbox_id == inbox]
            assert within(inbox_capacity, before, len(here))
            mail_here = sum(t.channel == "mail" for t in here)
            assert within(mail_capacity, before, mail_here)
        assert within(fairness, op.new_last_hour, len(mine))


# -- skills and languages (issue 18, services/routing/assign_match.py) --------------------


def _speaker(
    name: str, languages: tuple[str, ...] = (), skills: dict[str, int] | None = None, **kw: object
) -> a.OperatorState:
    return a.OperatorState(
        name,
        kw.pop("presence", a.Presence.ONLINE),  # type: ignore[arg-type]
        frozenset({INBOX}),
        skills=skills or {},
        languages=frozenset(languages),
        **kw,  # type: ignore[arg-type]
    )


def _in(language: str = "", skills: tuple[tuple[str, int], ...] = (), tid: str = "t") -> a.Waiting:
    return a.Waiting(tid, INBOX, "mail", NOW, language=language, skills=skills)


@pytest.mark.parametrize("strategy", [a.Strategy.LEAST_LOADED, a.Strategy.ROUND_ROBIN])
def test_a_japanese_ticket_goes_to_the_japanese_speaker_an_english_one_to_the_english(
    strategy: a.Strategy,
) -> None:
    ops = [_speaker("ann", ("en",)), _speaker("bob", ("ja",))]
    tickets = [_in("ja", tid="ja1"), _in("en", tid="en1"), _in("ja", tid="ja2")]
    plan = a.plan(tickets, ops, _policy(strategy), {}, NOW)
    given = {x.ticket_id: x.operator_id for x in plan.assignments}
    assert given == {"ja1": "bob", "en1": "ann", "ja2": "bob"}


def test_nobody_online_speaking_the_language_leaves_the_ticket_waiting() -> None:
    ops = [_speaker("ann", ("en",)), _speaker("bob", ("ja",), presence=a.Presence.OFFLINE)]
    plan = a.plan([_in("ja"), _in("en", tid="en")], ops, _policy(), {}, NOW)
    assert [(x.ticket_id, x.operator_id) for x in plan.assignments] == [("en", "ann")]


def test_a_language_nobody_of_the_inbox_lists_does_not_restrict() -> None:
    ops = [_speaker("ann", ("en",)), _speaker("bob", ("ja",))]
    plan = a.plan([_in("de")], ops, _policy(), {}, NOW)
    assert len(plan.assignments) == 1  # German: nobody could ever match, so anyone takes it


def test_an_operator_without_languages_takes_any_and_no_language_restricts_nobody() -> None:
    ops = [_speaker("ann")]
    plan = a.plan([_in("ja", tid="ja"), _in("", tid="none")], ops, _policy(), {}, NOW)
    assert {x.ticket_id for x in plan.assignments} == {"ja", "none"}


def test_required_skills_need_every_skill_at_its_minimum_level() -> None:
    ops = [
        _speaker("ann", skills={"billing": 2}),
        _speaker("bob", skills={"billing": 4, "返品": 1}),
        _speaker("cat", skills={"billing": 5}),
    ]
    tickets = [
        _in(skills=(("Billing", 3), ("返品", 1)), tid="both"),  # names compared case-insensitively
        _in(skills=(("billing", 5),), tid="expert"),
        _in(skills=(("legal", 1),), tid="nobody"),
    ]
    plan = a.plan(tickets, ops, _policy(), {}, NOW)
    given = {x.ticket_id: x.operator_id for x in plan.assignments}
    assert given == {"both": "bob", "expert": "cat"}  # "nobody" waits


def test_skills_and_language_together_and_within_tiers() -> None:
    ops = [
        _speaker("ann", ("ja",), {"billing": 1}),
        _speaker("bob", ("ja",), {"billing": 3}),
        _speaker("cat", ("en",), {"billing": 5}),
    ]
    tiers = (a.Tier(("ann",), widen_after_minutes=10), a.Tier(("bob", "cat")))
    ticket = a.Waiting("t", INBOX, "mail", NOW, language="ja", skills=(("billing", 2),))
    assert not a.plan([ticket], ops, _policy(tiers=tiers), {}, NOW).assignments  # tier 0: ann
    later = NOW + timedelta(minutes=10)
    plan = a.plan([ticket], ops, _policy(tiers=tiers), {}, later)
    assert [x.operator_id for x in plan.assignments] == ["bob"]


def test_the_customer_value_counts_as_minutes_waited() -> None:
    plain = a.Waiting("plain", INBOX, "mail", NOW - timedelta(minutes=100))
    valued = a.Waiting("valued", INBOX, "mail", NOW, customer_value=120)
    assert a.score(plain, NOW) == 160 and a.score(valued, NOW) == 180
    plan = a.plan([plain, valued], [_op("ann", 1)], _policy(), {}, NOW)
    assert [x.ticket_id for x in plan.assignments] == ["valued"]


def _brute_least_loaded(
    self: Any, group: Any, ticket: a.Waiting, policy: a.InboxPolicy
) -> a.OperatorState | None:
    """Least loaded as its definition says: look at everyone, keep the least loaded who
    can take the ticket."""
    best: a.OperatorState | None = None
    best_order: tuple[int, int, int, str] | None = None
    for op in group:
        if op.operator_id in self._loads.spent:
            continue
        order = self._order(op, ticket.inbox_id)
        if (best_order is None or order < best_order) and a.can_take(
            op, ticket, policy, self._loads
        ):
            best, best_order = op, order
    return best


@given(
    ops=st.lists(
        st.tuples(_limits, _limits, st.integers(0, 3), st.integers(0, 3), st.booleans()),
        min_size=1,
        max_size=10,
    ),
    tickets=st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["mail", "form"]),
            st.integers(1, 4),
            st.integers(0, 30),
            st.sets(st.integers(0, 9), max_size=3),
        ),
        max_size=60,
    ),
    inbox_capacity=_limits,
    mail_capacity=_limits,
    fairness=st.one_of(st.none(), st.integers(1, 4)),
    tiered=st.booleans(),
)
def test_least_loaded_by_heaps_chooses_as_looking_at_everyone(
    ops: list[tuple[int | None, int | None, int, int, bool]],
    tickets: list[tuple[bool, str, int, int, set[int]]],
    inbox_capacity: int | None,
    mail_capacity: int | None,
    fairness: int | None,
    tiered: bool,
) -> None:
    states = [
        a.OperatorState(
            f"op{i}",
            a.Presence.ONLINE,
            frozenset({INBOX, OTHER_INBOX}) if member else frozenset({OTHER_INBOX}),
            capacity=capacity,
            channel_capacity={} if mail is None else {"mail": mail},
            loads={(INBOX, "mail"): load},
            new_last_hour=new,
        )
        for i, (capacity, mail, load, new, member) in enumerate(ops)
    ]
    waiting = [
        a.Waiting(
            f"t{i}",
            INBOX if mine else OTHER_INBOX,
            channel,
            NOW - timedelta(minutes=waited),
            priority,
            frozenset(f"op{x}" for x in exclude),
        )
        for i, (mine, channel, priority, waited, exclude) in enumerate(tickets)
    ]
    ids = [s.operator_id for s in states]
    tiers = (a.Tier(tuple(ids[::2]), 10), a.Tier(tuple(ids[1::2]))) if tiered else ()
    policies = {
        inbox: a.InboxPolicy(
            inbox,
            a.Strategy.LEAST_LOADED,
            capacity=inbox_capacity,
            channel_capacity={} if mail_capacity is None else {"mail": mail_capacity},
            tiers=tiers if inbox == INBOX else (),
            max_new_per_hour=fairness,
        )
        for inbox in (INBOX, OTHER_INBOX)
    }
    fast = a.plan(waiting, states, policies, {}, NOW)
    with mock.patch.object(a._LeastLoaded, "pick", _brute_least_loaded):
        slow = a.plan(waiting, states, policies, {}, NOW)
    assert fast == slow
