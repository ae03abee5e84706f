"""Keyword search over text without spaces (TKT-10), free of I/O.

PostgreSQL's full-text search splits words on spaces, so Japanese text — which has none —
becomes one long "word" no query matches. We index characters instead: every message's
subject and text are normalised (NFKC, case-folded, runs of space collapsed), and the set
of its character unigrams and bigrams is stored in a GIN-indexed `text[]`. A keyword
matches a message when the message has all of the keyword's bigrams (the index narrows
the candidates) and the normalised text really contains the keyword (no false positives
from bigrams that occur apart). This works the same for 請求書, "invoice" and "iPhone 15".
"""

from __future__ import annotations

from services.runtime.text import grams as grams  # re-exported
from services.runtime.text import normalize as normalize  # re-exported

KEYWORD_MAX = 200


def document(subject: str, text: str) -> tuple[str, list[str]]:
    """The stored search text and its grams for one message."""
    norm = normalize(f"{subject}\n{text}")
    return norm, grams(norm)


def keyword_terms(keyword: str) -> list[str]:
    """A keyword split into terms (by spaces), each normalised; every term must match."""
    norm = normalize(keyword[:KEYWORD_MAX])
    return [t for t in dict.fromkeys(norm.split(" ")) if t]


def term_grams(term: str) -> list[str]:
    """The grams a message must have to possibly contain `term`: its bigrams, or the single
    character of a one-character term."""
    if len(term) == 1:
        return [term]
    return sorted({term[i : i + 2] for i in range(len(term) - 1)})


def like_pattern(term: str) -> str:
    """`term` as a LIKE pattern matching it anywhere (its own % _ \\ escaped)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
