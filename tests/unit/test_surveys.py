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
        questions=[],
    )
    html = survey_page.answer_page("t/k", answer)
    assert "<script>" not in html and "your rating 4 is recorded" in html
    assert 'class="r on" href="/survey/t%2Fk?rating=4"' in html
    assert survey_page.language_of("ja-JP,en;q=0.5") == "ja"
    assert "有効期限" in survey_page.refusal_page("ja", "expired")


ASKED = [("speed", "速さは？", "Speed?"), ("kind-1", "丁寧さは？", "Kindness?")]


def test_additional_questions_are_checked_on_the_field_questions() -> None:
    rule = sd.check_settings(**GOOD, questions=[(i, f" {ja} ", en) for i, ja, en in ASKED])
    assert rule.questions == (
        sd.Question("speed", "速さは？", "Speed?"),
        sd.Question("kind-1", "丁寧さは？", "Kindness?"),
    )
    assert (
        rule.questions[0].text("ja") == "速さは？" and rule.questions[1].text("en") == "Kindness?"
    )
    # the texts are required even while the survey is off (they are kept)
    off = {**GOOD, "enabled": False}
    for bad, words in (
        ([*ASKED, ("a", "a", "a"), ("b", "b", "b"), ("c", "c", "c")], "at most 4"),
        ([ASKED[0], ("speed", "別", "Other")], "questions[2].id speed is used twice"),
        ([("", "x", "x")], "questions[1].id"),
        ([("Speed", "x", "x")], "questions[1].id"),
        ([("x" * 33, "x", "x")], "questions[1].id"),
        ([("ok", " ", "x")], "questions[1].text_ja is required"),
        ([ASKED[0], ("ok", "x", "")], "questions[2].text_en is required"),
        ([("ok", "x", "y" * 501)], "questions[1].text_en is at most 500"),
        ([("ok", "a\x07", "x")], "control characters"),
    ):
        for settings in (GOOD, off):
            with pytest.raises(InvalidArgument) as err:
                sd.check_settings(**settings, questions=bad)
            assert err.value.field == "questions" and words in err.value.message, (bad, err)


def test_a_forms_answers_name_the_surveys_questions_once() -> None:
    asked = [sd.Question(i, ja, en) for i, ja, en in ASKED]
    assert sd.check_answers(asked, [("kind-1", 5), ("speed", 1)]) == {"kind-1": 5, "speed": 1}
    assert sd.check_answers(asked, []) == {}
    for bad in ([("other", 3)], [("speed", 3), ("speed", 4)], [("speed", 0)], [("speed", 6)]):
        with pytest.raises(InvalidArgument) as err:
            sd.check_answers(asked, bad)
        assert err.value.field == "answers", bad


def test_the_page_asks_the_additional_questions_after_the_rating_labelled() -> None:
    answer = SimpleNamespace(
        language="ja",
        question="いかが？",
        scale_style="stars",
        rating=0,
        comment="",
        inbox_name="Help",
        ticket_number=3,
        questions=[SimpleNamespace(id="speed", text="速さは<b>？", rating=4)],
    )
    assert "速さ" not in survey_page.answer_page("tk", answer)  # no rating yet: not asked
    answer.rating = 2
    html = survey_page.answer_page("tk", answer)
    assert '<legend id="q0-legend">速さは&lt;b&gt;？</legend>' in html
    assert 'name="q.speed" value="4" checked aria-label="4（5段階中）"' in html
    assert html.index("q.speed") < html.index('name="comment"')  # one form, posted together
    saved = survey_page.answer_page("tk", answer, comment_saved=True)
    assert "ご回答を受け付けました" in saved
