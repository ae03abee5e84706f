"""Satisfaction surveys after resolution (issue 20, OUT-5), without I/O: the settings'
checks, what starts and ends a resolution episode, why a survey is not sent, the signed
and expiring token of the mail's links, and the mail's text in Japanese or English.

One survey per resolution episode: a change of the ticket's status to `resolved` starts
one, unless the ticket's previous episode was never reopened (a reopen — the status back
to `open`, by the customer's reply or an operator — ends an episode).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from services.runtime.errors import InvalidArgument

SCALE = 5
STYLES = ("stars", "faces")
QUESTION_MAX = 500
LABELS_MAX = 50
LABEL_MAX = 50
DELAY_MAX_MINUTES = 43_200  # 30 days
CONTACT_DAYS_MAX = 365
COMMENT_MAX = 2000
LANGUAGES = ("ja", "en")
QUESTIONS_MAX = 4  # additional questions beside the main one
QUESTION_ID = re.compile(r"[a-z0-9_-]{1,32}")
_SALT = "switchboard.survey.v1"


@dataclass(frozen=True, slots=True)
class Question:
    """An additional question (same 1–5 scale, optional for the customer): its id stays
    when its texts change, and reports group its answers by it."""

    id: str
    text_ja: str
    text_en: str

    def text(self, language: str) -> str:
        return self.text_ja if language == "ja" else self.text_en


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
    questions: tuple[Question, ...] = ()


def _question(raw: str, field: str, required: bool, name: str = "") -> str:
    """The text with its blanks folded; `name` what the message calls it (else `field`)."""
    name = name or field
    text = " ".join(raw.split())
    if required and not text:
        raise InvalidArgument(f"{name} is required when the survey is on", field=field)
    if len(text) > QUESTION_MAX:
        raise InvalidArgument(f"{name} is at most {QUESTION_MAX} characters", field=field)
    if any(ord(c) < 32 for c in raw if c not in "\t\r\n"):
        raise InvalidArgument(f"{name} holds control characters", field=field)
    return text


def check_questions(raw: Sequence[tuple[str, str, str]]) -> tuple[Question, ...]:
    """The additional questions as (id, text_ja, text_en), in the order given: at most
    QUESTIONS_MAX, ids unique and of QUESTION_ID, both texts required whether the survey
    is on or not; InvalidArgument on the field `questions`, the message naming which."""
    if len(raw) > QUESTIONS_MAX:
        raise InvalidArgument(f"at most {QUESTIONS_MAX} additional questions", field="questions")
    out: list[Question] = []
    for n, (qid, ja, en) in enumerate(raw, start=1):
        if not QUESTION_ID.fullmatch(qid):
            raise InvalidArgument(
                f"questions[{n}].id must be 1–32 of a-z, 0-9, _ and -", field="questions"
            )
        if any(q.id == qid for q in out):
            raise InvalidArgument(f"questions[{n}].id {qid} is used twice", field="questions")
        texts = [
            _question(text, "questions", True, f"questions[{n}].text_{lang}")
            for text, lang in ((ja, "ja"), (en, "en"))
        ]
        out.append(Question(qid, *texts))
    return tuple(out)


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
    questions: Sequence[tuple[str, str, str]] = (),
) -> SurveyRule:
    """The settings as stored, or InvalidArgument naming the first bad field."""
    ja = _question(question_ja, "question_ja", enabled)
    en = _question(question_en, "question_en", enabled)
    extra = check_questions(questions)
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
        questions=extra,
    )


def check_answers(asked: Sequence[Question], given: Sequence[tuple[str, int]]) -> dict[str, int]:
    """The additional questions' ratings a form gave, by id: each one of the questions
    the survey was sent with, once, rated 1–5 (InvalidArgument on `answers` otherwise)."""
    ids = {q.id for q in asked}
    out: dict[str, int] = {}
    for qid, rating in given:
        if qid not in ids or qid in out:
            raise InvalidArgument("answers name each question of the survey once", field="answers")
        if not 1 <= rating <= SCALE:
            raise InvalidArgument("each answer is a rating 1–5", field="answers")
        out[qid] = rating
    return out


# -- episodes --------------------------------------------------------------------------


def status_change(changes: Iterable[tuple[str, str, str]]) -> tuple[str, str] | None:
    """(old, new) of the status among a ticket.updated's (field, old, new) changes."""
    for field, old, new in changes:
        if field == "status":
            return old, new
    return None


def resolves(changes: Iterable[tuple[str, str, str]]) -> bool:
    moved = status_change(changes)
    return moved is not None and moved[1] == "resolved"


def reopens(changes: Iterable[tuple[str, str, str]]) -> bool:
    moved = status_change(changes)
    return moved is not None and moved[1] == "open"


def language_of(ticket_language: str) -> str:
    """The mail's language: Japanese for a ticket detected as Japanese, else English."""
    return "ja" if ticket_language.lower().startswith("ja") else "en"


# -- suppression -----------------------------------------------------------------------


def why_not_now(
    rule: SurveyRule,
    *,
    without_survey: bool,
    auto_resolved: bool,
) -> str | None:
    """Why a resolution starts no survey at all (None: one is scheduled)."""
    if not rule.enabled:
        return "off"
    if without_survey:
        return "resolved without survey"
    if auto_resolved and rule.skip_auto_resolved:
        return "auto-resolved"
    return None


def why_not_due(
    rule: SurveyRule,
    *,
    status: str,
    labels: Sequence[str],
    flags: Sequence[str],
    reopened: bool,
    recipient: str,
    automatic: bool,
    junk: bool,
    own_addresses: frozenset[str],
) -> str | None:
    """Why a survey whose delay has passed is not sent (None: it is), checked again on
    the ticket as it is then."""
    if not rule.enabled:
        return "off"
    if reopened or status != "resolved":
        if rule.skip_spam_trash and status == "trash":
            return "spam or trash"
        return "no longer resolved"
    if rule.skip_spam_trash and ("spam" in flags or junk):
        return "spam or trash"
    hit = sorted(set(labels) & set(rule.skip_labels))
    if hit:
        return f"label {hit[0]}"
    if automatic:
        return "automatic mail"
    if not recipient or recipient.lower() in own_addresses:
        return "no recipient, or our own address"
    return None


# -- tokens ----------------------------------------------------------------------------


class TokenRefused(Exception):
    """A survey link's token that is not ours (`invalid`) or too old (`expired`)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def _serializer(secret: str, now: float | None = None) -> URLSafeTimedSerializer:
    if now is None:
        return URLSafeTimedSerializer(secret, salt=_SALT)
    fixed = int(now)

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return fixed

    return URLSafeTimedSerializer(secret, salt=_SALT, signer=_At)


def derived_secret(secret_key: str) -> str:
    """The links' key derived from outbound's secret_key (when none of its own is set)."""
    return hmac.new(secret_key.encode(), b"survey-links", hashlib.sha256).hexdigest()


def sign_token(secret: str, tenant_id: str, survey_id: str, *, now: float | None = None) -> str:
    """The token of a survey's links: the tenant and survey, signed (HMAC-SHA1 through
    itsdangerous, the time included); `now` for a token minted at another time."""
    return _serializer(secret, now).dumps([tenant_id, survey_id])


def read_token(secret: str, token: str, max_age: timedelta) -> tuple[str, str]:
    """(tenant_id, survey_id) of a token signed with `secret` no longer than `max_age`
    ago; TokenRefused otherwise."""
    if not token or len(token) > 500:
        raise TokenRefused("invalid")
    try:
        got = _serializer(secret).loads(token, max_age=int(max_age.total_seconds()))
    except SignatureExpired:
        raise TokenRefused("expired") from None
    except BadSignature:
        raise TokenRefused("invalid") from None
    if (
        not isinstance(got, list)
        or len(got) != 2
        or not all(isinstance(x, str) and len(x) <= 64 for x in got)
    ):
        raise TokenRefused("invalid")
    return got[0], got[1]


# -- the mail --------------------------------------------------------------------------

_FACES = ("😞", "🙁", "😐", "🙂", "😄")
_TEXT = {
    "ja": {
        "subject": "アンケートのお願い",
        "intro": "お問い合わせ{ref}への対応について、ご意見をお聞かせください。",
        "pick": "下のリンクから1つ選んでください（1: 不満 … 5: 満足）。",
        "thanks": "ご協力ありがとうございます。",
    },
    "en": {
        "subject": "How did we do?",
        "intro": "Please tell us how we handled your inquiry{ref}.",
        "pick": "Choose one of the links below (1: poor … 5: excellent).",
        "thanks": "Thank you for your feedback.",
    },
}


def mark(style: str, rating: int) -> str:
    return "★" * rating + "☆" * (SCALE - rating) if style == "stars" else _FACES[rating - 1]


def links(base_url: str, token: str) -> list[tuple[int, str]]:
    """Each rating's one-click link."""
    root = base_url.rstrip("/")
    return [(n, f"{root}/survey/{quote(token, safe='')}?rating={n}") for n in range(1, SCALE + 1)]


@dataclass(frozen=True, slots=True)
class SurveyMail:
    subject: str
    text: str
    html: str


def survey_mail(
    *,
    language: str,
    question: str,
    style: str,
    ticket_number: int,
    rating_links: Sequence[tuple[int, str]],
) -> SurveyMail:
    t = _TEXT[language if language in LANGUAGES else "en"]
    ref = f" [#{ticket_number}]" if ticket_number else ""
    intro = t["intro"].format(ref=ref)
    lines = [intro, "", question, t["pick"], ""]
    lines += [f"{n} {mark(style, n)}: {url}" for n, url in rating_links]
    lines += ["", t["thanks"]]
    items = "".join(
        f'<li><a href="{html.escape(url)}">{n} {mark(style, n)}</a></li>' for n, url in rating_links
    )
    body_html = (
        f"<p>{html.escape(intro)}</p><p><strong>{html.escape(question)}</strong></p>"
        f"<p>{html.escape(t['pick'])}</p><ul>{items}</ul><p>{html.escape(t['thanks'])}</p>"
    )
    subject = f"{t['subject']}{ref}"
    return SurveyMail(subject=subject, text="\n".join(lines) + "\n", html=body_html)


def contact_window(days: int) -> timedelta:
    return timedelta(days=days)


def due_at(resolved_at: datetime, rule: SurveyRule) -> datetime:
    return resolved_at + rule.delay
