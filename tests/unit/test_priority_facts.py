"""Issue 18 (facts), pure parts: the priority score's formula (services/runtime/
priority_score.py) as tickets' list sort keys it, the language detector, tickets'
required skills and a contact's customer value."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from switchboard.v1 import common_pb2, events_pb2

from services.routing.language import LanguageDetector
from services.runtime import priority_score as ps
from services.runtime.errors import InvalidArgument
from services.tickets import contact_rules, query, ticket_facts
from services.tickets.records import Ticket

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_one_point_is_one_minute_and_priority_and_customer_value_count_as_minutes() -> None:
    since = ps.origin(NOW, common_pb2.PRIORITY_HIGH, 500)
    assert ps.score(since, NOW) == 240 + 500
    assert ps.score(since, NOW + timedelta(minutes=30, seconds=59)) == 770
    assert ps.points(common_pb2.PRIORITY_LOW, None) == 0
    assert ps.points(common_pb2.PRIORITY_URGENT, 10**9) == 960 + ps.CUSTOMER_VALUE_MAX


def _row(tid: int, priority: str, waited_min: int, value: int | None) -> Ticket:
    base = Ticket(
        *([None] * 33)  # type: ignore[arg-type]
    )
    return replace(
        base,
        id=tid,  # type: ignore[arg-type]
        priority=priority,
        created_at=NOW,
        waiting_since=NOW - timedelta(minutes=waited_min),
        customer_value=value,
    )


def test_the_lists_sort_key_orders_as_the_score_does() -> None:
    rows = [
        _row(1, "normal", 100, None),  # 160
        _row(2, "urgent", 0, None),  # 960
        _row(3, "low", 0, 300),  # 300
        _row(4, "high", 10, 0),  # 250
    ]

    def score(r: Ticket) -> int:
        assert r.waiting_since is not None
        pr = query.Priority(r.priority).to_pb()
        return ps.score(ps.origin(r.waiting_since, pr, r.customer_value), NOW)

    by_key = sorted(rows, key=query.score_key, reverse=True)
    assert [score(r) for r in by_key] == [960, 300, 250, 160]


def test_required_skills_merge_keeping_the_higher_level_of_a_name() -> None:
    added = [
        events_pb2.SkillRequirement(name="billing", min_level=4),
        events_pb2.SkillRequirement(name="  日本語  敬語 ", min_level=9),
        events_pb2.SkillRequirement(name=" ", min_level=1),
    ]
    merged = ticket_facts.merged_skills([{"name": "Billing", "min_level": 2}], added)
    assert merged == [{"name": "Billing", "min_level": 4}, {"name": "日本語 敬語", "min_level": 5}]
    assert ticket_facts.skills_text(merged) == "Billing 4+, 日本語 敬語 5+"


@pytest.mark.parametrize("value", [-1, 1_000_001])
def test_a_customer_value_out_of_range_is_refused_naming_the_field(value: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        contact_rules.ContactEdit.validated(set_customer_value=True, customer_value=value)
    assert err.value.field == "customer_value"


def test_a_contact_edit_changes_only_what_differs() -> None:
    row = {"name": "", "company": "", "memo": "", "phones": [], "custom": {}}
    row |= {"customer_value": 10, "vip": False}
    edit = contact_rules.ContactEdit.validated(
        set_customer_value=True, customer_value=None, vip=True
    )
    assert edit.changes(row, []) == {"customer_value": None, "vip": True}
    same = contact_rules.ContactEdit.validated(
        set_customer_value=True, customer_value=10, vip=False
    )
    assert same.changes(row, []) == {}


@pytest.fixture(scope="module")
def detector() -> LanguageDetector:
    return LanguageDetector()


@pytest.mark.parametrize(
    ("subject", "body", "language"),
    [
        ("返品について", "先週注文した商品を返品したいです。よろしくお願いします。", "ja"),
        (
            "Re: 請求書",
            "> Please find the invoice attached.\n先月の請求書がまだ届いていません。",
            "ja",
        ),
        ("Refund", "Hello, I would like a refund for my order, please.", "en"),
        ("Commande", "Bonjour, je voudrais retourner ma commande, merci.", "fr"),
        ("ok", "", ""),  # too little to tell
        ("", "12345 !!!", ""),
    ],
)
def test_the_language_of_a_mail(
    detector: LanguageDetector, subject: str, body: str, language: str
) -> None:
    assert detector.detect(subject, body) == language
