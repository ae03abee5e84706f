"""Satisfaction surveys' rules without I/O (issue 20): settings checked naming the field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

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
