"""Satisfaction surveys after resolution (issue 20, OUT-5), without I/O: the settings'
checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from services.runtime.errors import InvalidArgument

SCALE = 5
STYLES = ("stars", "faces")
QUESTION_MAX = 500
LABELS_MAX = 50
LABEL_MAX = 50
DELAY_MAX_MINUTES = 43_200  # 30 days
CONTACT_DAYS_MAX = 365


@dataclass(frozen=True, slots=True)
class SurveyRule:
    """An inbox's survey settings, checked."""

    enabled: bool
    question_ja: str
    question_en: str
    scale_style: str
    delay: timedelta
    skip_auto_resolved: bool
    skip_spam_trash: bool
    skip_labels: tuple[str, ...]
    contact_days: int


def _question(raw: str, field: str, required: bool) -> str:
    text = " ".join(raw.split())
    if required and not text:
        raise InvalidArgument(f"{field} is required when the survey is on", field=field)
    if len(text) > QUESTION_MAX:
        raise InvalidArgument(f"{field} is at most {QUESTION_MAX} characters", field=field)
    if any(ord(c) < 32 for c in raw if c not in "\t\r\n"):
        raise InvalidArgument(f"{field} holds control characters", field=field)
    return text


def check_settings(
    *,
    enabled: bool,
    question_ja: str,
    question_en: str,
    scale_style: str,
    delay_minutes: int,
    skip_auto_resolved: bool,
    skip_spam_trash: bool,
    skip_labels: Sequence[str],
    contact_days: int,
) -> SurveyRule:
    """The settings as stored, or InvalidArgument naming the first bad field."""
    ja = _question(question_ja, "question_ja", enabled)
    en = _question(question_en, "question_en", enabled)
    style = scale_style or "stars"
    if style not in STYLES:
        raise InvalidArgument("scale_style must be stars or faces", field="scale_style")
    if not 0 <= delay_minutes <= DELAY_MAX_MINUTES:
        raise InvalidArgument(
            f"delay_minutes must be between 0 and {DELAY_MAX_MINUTES}", field="delay_minutes"
        )
    if not 0 <= contact_days <= CONTACT_DAYS_MAX:
        raise InvalidArgument(
            f"contact_days must be between 0 and {CONTACT_DAYS_MAX}", field="contact_days"
        )
    if len(skip_labels) > LABELS_MAX:
        raise InvalidArgument(f"at most {LABELS_MAX} skip_labels", field="skip_labels")
    labels: list[str] = []
    for raw in skip_labels:
        label = " ".join(raw.split())
        if not label or len(label) > LABEL_MAX:
            raise InvalidArgument(
                f"each of skip_labels is 1–{LABEL_MAX} characters", field="skip_labels"
            )
        if label not in labels:
            labels.append(label)
    return SurveyRule(
        enabled=enabled,
        question_ja=ja,
        question_en=en,
        scale_style=style,
        delay=timedelta(minutes=delay_minutes),
        skip_auto_resolved=skip_auto_resolved,
        skip_spam_trash=skip_spam_trash,
        skip_labels=tuple(labels),
        contact_days=contact_days,
    )
