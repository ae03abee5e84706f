"""Template suggestions (RTE-5), free of I/O: the templates that best match a ticket's
subject and body, ranked.

A template's trigger keywords count most: each one the ticket's text contains (after the
same normalisation as search: NFKC, case-folded) adds `KEYWORD_WEIGHT`, more in the
subject. Then the likeness of the texts: the share of the template's subject and body
character bigrams that the ticket's text has too (cosine of the bigram sets), which works
for Japanese — no spaces needed — as well as for English. Templates that match nothing are
not suggested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.runtime.text import bigrams, normalize

KEYWORD_WEIGHT = 3.0
SUBJECT_BONUS = 1.0
LIKENESS_WEIGHT = 2.0
MIN_SCORE = 0.15


@dataclass(frozen=True)
class Candidate:
    id: str
    name: str
    subject: str
    body: str
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Suggestion:
    id: str
    score: float
    matched: tuple[str, ...]  # the trigger keywords found


def _cosine(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


def rank(
    subject: str, body: str, candidates: Sequence[Candidate], limit: int = 5
) -> list[Suggestion]:
    subject_n, body_n = normalize(subject), normalize(body[:20_000])
    text_grams = bigrams(subject_n) | bigrams(body_n)
    out: list[Suggestion] = []
    for c in candidates:
        matched = []
        score = 0.0
        for keyword in c.keywords:
            k = normalize(keyword)
            if not k:
                continue
            if k in subject_n:
                score += KEYWORD_WEIGHT + SUBJECT_BONUS
                matched.append(keyword)
            elif k in body_n:
                score += KEYWORD_WEIGHT
                matched.append(keyword)
        likeness = _cosine(bigrams(normalize(f"{c.name} {c.subject} {c.body[:5000]}")), text_grams)
        score += LIKENESS_WEIGHT * likeness
        if matched or score >= MIN_SCORE:
            out.append(Suggestion(c.id, round(score, 4), tuple(matched)))
    out.sort(key=lambda s: (-s.score, s.id))
    return out[:limit]
