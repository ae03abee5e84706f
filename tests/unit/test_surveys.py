"""Satisfaction surveys' rules without I/O (issue 20): settings checked naming the field,
what starts and ends an episode, why a due survey is not sent, the links' signed and
expiring tokens, and the mail and page in Japanese and English with every value escaped."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import survey_page
from services.outbound import survey_domain as sd
from services.runtime.errors import InvalidArgument

GOOD: dict[str, Any] = {
    "enabled": True,
    "question_ja": "いかがでしたか？",
    "question_en": "How did we do?",
    "scale_style": "",
    "delay_minutes": 60,
    "skip_auto_resolved": True,
    "skip_spam_trash": True,
    "skip_labels": [" VIP  対応 ", "VIP 対応"],
    "contact_days": 30,
}


def test_settings_are_checked_naming_the_field() -> None:
    rule = sd.check_settings(**GOOD)
    assert rule.scale_style == "stars" and rule.delay == timedelta(hours=1)
    assert rule.skip_labels == ("VIP 対応",)
    off = sd.check_settings(**{**GOOD, "enabled": False, "question_ja": "", "question_en": ""})
    assert not off.enabled
    for bad, field in (
        ({"question_ja": " "}, "question_ja"),
        ({"question_en": "a\x00b"}, "question_en"),
        ({"question_en": "x" * 501}, "question_en"),
        ({"scale_style": "hearts"}, "scale_style"),
        ({"delay_minutes": -1}, "delay_minutes"),
        ({"delay_minutes": 43_201}, "delay_minutes"),
        ({"contact_days": 366}, "contact_days"),
        ({"skip_labels": ["x" * 51]}, "skip_labels"),
        ({"skip_labels": ["a"] * 51}, "skip_labels"),
    ):
        with pytest.raises(InvalidArgument) as err:
            sd.check_settings(**{**GOOD, **bad})
        assert err.value.field == field, bad


def test_episodes_start_at_a_resolution_and_end_at_a_reopen() -> None:
    assert sd.resolves([("labels", "", "a"), ("status", "open", "resolved")])
    assert not sd.resolves([("status", "resolved", "no_action")])
    assert sd.reopens([("status", "resolved", "open")])
    assert not sd.reopens([("status", "resolved", "pending")])
    rule = sd.check_settings(**GOOD)
    assert sd.why_not_now(rule, without_survey=False, auto_resolved=False) is None
    assert sd.why_not_now(rule, without_survey=True, auto_resolved=False) == (
        "resolved without survey"
    )
    assert sd.why_not_now(rule, without_survey=False, auto_resolved=True) == "auto-resolved"
    lenient = sd.check_settings(**{**GOOD, "skip_auto_resolved": False})
    assert sd.why_not_now(lenient, without_survey=False, auto_resolved=True) is None


def _due(**over: Any) -> str | None:
    args: dict[str, Any] = {
        "status": "resolved",
        "labels": [],
        "flags": [],
        "reopened": False,
        "recipient": "taro@customer.example",
        "automatic": False,
        "junk": False,
        "own_addresses": frozenset({"help@desk.example"}),
        **over,
    }
    return sd.why_not_due(sd.check_settings(**GOOD), **args)


def test_a_due_survey_is_checked_again_on_the_ticket_as_it_is() -> None:
    assert _due() is None
    assert _due(status="open") == "no longer resolved"
    assert _due(reopened=True) == "no longer resolved"
    assert _due(status="trash") == "spam or trash"
    assert _due(flags=["spam"]) == "spam or trash"
    assert _due(junk=True) == "spam or trash"
    assert _due(labels=["VIP 対応"]) == "label VIP 対応"
    assert _due(automatic=True) == "automatic mail"
    assert _due(recipient="Help@Desk.example") == "no recipient, or our own address"
    assert _due(recipient="") == "no recipient, or our own address"


def test_tokens_are_signed_and_expire() -> None:
    token = sd.sign_token("k" * 32, "tenant", "survey")
    assert sd.read_token("k" * 32, token, timedelta(days=1)) == ("tenant", "survey")
    for bad in (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), "", "x" * 600, "a.b.c"):
        with pytest.raises(sd.TokenRefused) as err:
            sd.read_token("k" * 32, bad, timedelta(days=1))
        assert err.value.why == "invalid"
    with pytest.raises(sd.TokenRefused):
        sd.read_token("another key", token, timedelta(days=1))
    old = sd.sign_token("k" * 32, "tenant", "survey", now=time.time() - 2 * 86400)
    with pytest.raises(sd.TokenRefused) as err:
        sd.read_token("k" * 32, old, timedelta(days=1))
    assert err.value.why == "expired"
    assert sd.derived_secret("a") != sd.derived_secret("b")


def test_the_mail_and_the_page_are_in_the_mails_language_and_escaped() -> None:
    links = sd.links("https://desk.example/", "tok/en")
    assert links[0] == (1, "https://desk.example/survey/tok%2Fen?rating=1") and len(links) == 5
    ja = sd.survey_mail(
        language="ja", question="<b>いかが</b>", style="faces", ticket_number=7, rating_links=links
    )
    assert ja.subject == "アンケートのお願い [#7]"
    assert "&lt;b&gt;いかが&lt;/b&gt;" in ja.html and "<b>いかが" not in ja.html
    assert "5 😄: https://desk.example/survey/tok%2Fen?rating=5" in ja.text
    en = sd.survey_mail(
        language="en", question="Q", style="stars", ticket_number=0, rating_links=links
    )
    assert en.subject == "How did we do?" and "3 ★★★☆☆" in en.text
    answer = SimpleNamespace(
        language="en",
        question="<script>x</script>",
        scale_style="stars",
        rating=4,
        comment="</textarea><script>",
        inbox_name="Help",
        ticket_number=3,
    )
    html = survey_page.answer_page("t/k", answer)
    assert "<script>" not in html and "your rating 4 is recorded" in html
    assert 'class="r on" href="/survey/t%2Fk?rating=4"' in html
    assert survey_page.language_of("ja-JP,en;q=0.5") == "ja"
    assert "有効期限" in survey_page.refusal_page("ja", "expired")
