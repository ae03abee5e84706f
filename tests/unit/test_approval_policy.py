"""Approval policies (issue 17): validation naming the field, which policy applies, and
when a draft needs approval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from switchboard.v1 import composition_pb2

from services.approval.drafts import facts_of, hash_of
from services.approval.policy import (
    BUILTIN,
    Approver,
    ApproverKind,
    Author,
    Condition,
    ConditionKind,
    DraftFacts,
    Policy,
    Stage,
    TicketFacts,
    choose,
    content_hash,
    looks_at_ticket,
    needs_approval,
    validate,
)
from services.runtime.errors import InvalidArgument

OPS = {"op-sato", "op-tanaka"}
ROLES = {"supervisor", "approver", "trainee"}
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
MEMBERS = Approver(ApproverKind.INBOX_MEMBERS)


def _policy(*stages: Stage, **kw: object) -> Policy:
    return Policy(id="p", inbox_id="", name="Support", stages=stages, **kw)  # type: ignore[arg-type]


def _stage(*approvers: Approver, required: int = 0) -> Stage:
    return Stage("", approvers, required)


def _field_of(policy: Policy) -> str | None:
    with pytest.raises(InvalidArgument) as err:
        validate(policy, OPS, ROLES)
    return err.value.field


def replace_name(p: Policy, name: str) -> Policy:
    return Policy(p.id, p.inbox_id, name, p.stages)


def test_a_policy_has_one_to_three_stages() -> None:
    assert _field_of(_policy()) == "stages"
    assert _field_of(_policy(*[_stage(MEMBERS)] * 4)) == "stages"
    three = validate(_policy(*[_stage(MEMBERS)] * 3), OPS, ROLES)
    assert [s.name for s in three.stages] == ["Stage 1", "Stage 2", "Stage 3"]
    assert all(s.required == 1 for s in three.stages)


def test_an_empty_stage_or_an_unknown_approver_is_refused_naming_the_field() -> None:
    assert _field_of(_policy(_stage(MEMBERS), _stage())) == "stages[1].approvers"
    ghost = Approver(ApproverKind.OPERATOR, "op-ghost")
    assert _field_of(_policy(_stage(Approver(ApproverKind.OPERATOR, "op-sato"), ghost))) == (
        "stages[0].approvers[1].id"
    )
    assert _field_of(_policy(_stage(Approver(ApproverKind.ROLE, "boss")))) == (
        "stages[0].approvers[0].id"
    )
    assert _field_of(_policy(_stage(MEMBERS), skip=(MEMBERS,))) == "skip[0].kind"
    assert _field_of(replace_name(_policy(_stage(MEMBERS)), " ")) == "name"


def test_n_of_cannot_exceed_the_operators_named_and_deadlines_are_bounded() -> None:
    sato = Approver(ApproverKind.OPERATOR, "op-sato")
    assert _field_of(_policy(_stage(sato, required=2))) == "stages[0].required"
    assert validate(_policy(_stage(sato, MEMBERS, required=2)), OPS, ROLES).stages[0].required == 2
    late = Stage("", (MEMBERS,), 1, -5)
    assert _field_of(_policy(late)) == "stages[0].deadline_minutes"


def test_conditions_are_checked_and_normalised() -> None:
    bad_domain = Condition(ConditionKind.RECIPIENT_DOMAIN_NOT_IN, ("not a domain",))
    assert _field_of(_policy(_stage(MEMBERS), conditions=(bad_domain,))) == "conditions[0].values"
    no_words = Condition(ConditionKind.WORDS, ("  ",))
    assert _field_of(_policy(_stage(MEMBERS), conditions=(no_words,))) == "conditions[0].values"
    bad_priority = Condition(ConditionKind.TICKET_PRIORITY, ("asap",))
    assert _field_of(_policy(_stage(MEMBERS), conditions=(bad_priority,))) == (
        "conditions[0].values"
    )
    ok = validate(
        _policy(
            _stage(MEMBERS),
            conditions=(
                Condition(ConditionKind.RECIPIENT_DOMAIN_NOT_IN, ("Example.COM", "例え.jp")),
                Condition(ConditionKind.WORDS, ("Refund", "返金", "refund")),
            ),
        ),
        OPS,
        ROLES,
    )
    assert ok.conditions[0].values == ("example.com", "xn--r8jz45g.jp")
    assert ok.conditions[1].values == ("refund", "返金")


def test_the_inbox_policy_wins_over_the_tenant_one_and_the_builtin_is_the_last_resort() -> None:
    tenant = _policy(_stage(MEMBERS))
    sales = Policy("s", "inbox-sales", "Sales", (_stage(MEMBERS),))
    assert choose([tenant, sales], "inbox-sales") is sales
    assert choose([tenant, sales], "inbox-support") is tenant
    assert choose([sales], "inbox-support") is BUILTIN
    assert BUILTIN.stages[0].approvers == (MEMBERS,)


AGENT = Author("op-agent", frozenset({"agent"}), frozenset({"send_without_approval"}))
TRAINEE = Author("op-trainee", frozenset({"trainee"}), frozenset())
NO_TICKET = TicketFacts()
PLAIN = DraftFacts(("customer@example.com",), "Re: order", "Thank you.", "", 0)


def _needs(
    policy: Policy,
    author: Author = AGENT,
    draft: DraftFacts = PLAIN,
    ticket: TicketFacts = NO_TICKET,
    *,
    requested: bool = False,
    flagged_until: datetime | None = None,
) -> tuple[str, ...]:
    return needs_approval(
        policy, author, draft, ticket, requested=requested, flagged_until=flagged_until, now=NOW
    )


def test_who_needs_approval_and_why() -> None:
    assert _needs(BUILTIN) == ()
    assert _needs(BUILTIN, TRAINEE) == ("no_permission",)
    assert _needs(BUILTIN, requested=True) == ("requested",)
    assert _needs(BUILTIN, flagged_until=NOW + timedelta(days=3)) == ("flagged",)
    assert _needs(BUILTIN, flagged_until=NOW - timedelta(seconds=1)) == ()


def test_each_condition_catches_the_draft_it_describes() -> None:
    def policy(cond: Condition) -> Policy:
        return validate(_policy(_stage(MEMBERS), conditions=(cond,)), OPS, ROLES)

    outside = policy(Condition(ConditionKind.RECIPIENT_DOMAIN_NOT_IN, ("example.com",)))
    assert _needs(outside) == ()
    two = DraftFacts(("a@example.com", "b@other.example"), "s", "", "", 0)
    assert _needs(outside, draft=two) == ("condition:recipient_domain_not_in",)
    words = policy(Condition(ConditionKind.WORDS, ("返金", "REFUND")))
    assert _needs(words) == ()
    assert _needs(words, draft=DraftFacts(PLAIN.recipients, "s", "ご返金します", "", 0))
    assert _needs(words, draft=DraftFacts(PLAIN.recipients, "s", "", "<p>a <b>Refund</b></p>", 0))
    assert _needs(words, draft=DraftFacts(PLAIN.recipients, "ＲＥＦＵＮＤ", "", "", 0))
    attached = policy(Condition(ConditionKind.ATTACHMENT))
    assert _needs(attached) == ()
    assert _needs(attached, draft=DraftFacts(PLAIN.recipients, "s", "", "", 1))
    many = policy(Condition(ConditionKind.RECIPIENTS_MORE_THAN, count=1))
    assert _needs(many) == () and _needs(many, draft=two)
    label = policy(Condition(ConditionKind.TICKET_LABEL, ("Complaint",)))
    assert _needs(label, ticket=TicketFacts(frozenset({"vip"}))) == ()
    assert _needs(label, ticket=TicketFacts(frozenset({"complaint"})))
    urgent = policy(Condition(ConditionKind.TICKET_PRIORITY, ("urgent",)))
    assert _needs(urgent, ticket=TicketFacts(priority="high")) == ()
    assert _needs(urgent, ticket=TicketFacts(priority="urgent"))
    assert looks_at_ticket(label) and looks_at_ticket(urgent)
    assert not looks_at_ticket(words) and not looks_at_ticket(BUILTIN)


def test_the_skip_list_excuses_conditions_but_never_a_missing_permission_or_a_flag() -> None:
    cond = Condition(ConditionKind.ATTACHMENT)
    p = validate(
        _policy(
            _stage(MEMBERS), conditions=(cond,), skip=(Approver(ApproverKind.ROLE, "trainee"),)
        ),
        OPS,
        ROLES,
    )
    attached = DraftFacts(PLAIN.recipients, "s", "", "", 2)
    assert _needs(p, TRAINEE, attached) == ("no_permission",)
    skipped_agent = Author("op-sato", frozenset({"agent"}), AGENT.permissions)
    p2 = Policy(
        p.id, "", p.name, p.stages, p.conditions, (Approver(ApproverKind.OPERATOR, "op-sato"),)
    )
    assert _needs(p2, skipped_agent, attached) == ()
    later = NOW + timedelta(days=1)
    assert _needs(p2, skipped_agent, attached, flagged_until=later) == ("flagged",)
    assert _needs(p2, AGENT, attached) == ("condition:attachment",)


content = st.dictionaries(
    st.text(max_size=8), st.one_of(st.text(), st.integers(), st.lists(st.text(), max_size=3))
)


@given(content)
def test_the_content_hash_ignores_key_order_and_sees_any_change(c: dict[str, object]) -> None:
    assert content_hash(dict(reversed(list(c.items())))) == content_hash(c)
    changed = dict(c)
    changed["\x00extra"] = "x"
    assert content_hash(changed) != content_hash(c)


def test_a_revision_s_hash_covers_what_the_customer_gets_not_who_saved_it() -> None:
    rev = composition_pb2.DraftRevision(
        revision=3, to=["a@example.com"], subject="Re: order", body_text="Thanks"
    )
    resaved = composition_pb2.DraftRevision()
    resaved.CopyFrom(rev)
    resaved.revision = 4
    resaved.saved_by.id = "op-other"
    assert hash_of(resaved) == hash_of(rev)
    for change in ({"body_text": "Thanks!"}, {"bcc": ["b@example.com"]}, {"subject": "Re:"}):
        other = composition_pb2.DraftRevision()
        other.CopyFrom(rev)
        for name, value in change.items():
            if isinstance(value, list):
                getattr(other, name).extend(value)
            else:
                setattr(other, name, value)
        assert hash_of(other) != hash_of(rev), change
    quoted = composition_pb2.DraftRevision(quote_text="> earlier", include_quote=False)
    assert hash_of(quoted) == hash_of(composition_pb2.DraftRevision())
    facts = facts_of(rev)
    assert facts.recipients == ("a@example.com",) and facts.attachments == 0
