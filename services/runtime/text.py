"""Text normal forms shared by the services that match words in text without spaces
(Japanese): tickets' keyword search (TKT-10) and composition's template suggestions
(RTE-5). Free of I/O."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """NFKC (full-width ASCII and half-width kana fold to their usual forms), case-folded,
    every run of white space one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def grams(normalized: str) -> list[str]:
    """The distinct character unigrams and bigrams of normalised text, spaces excluded
    (a bigram never spans a space: words are matched within their own characters)."""
    out: set[str] = set()
    for word in normalized.split(" "):
        out.update(word)
        out.update(word[i : i + 2] for i in range(len(word) - 1))
    out.discard("")
    return sorted(out)


def bigrams(normalized: str) -> set[str]:
    """The character bigrams of normalised text, within words (no space inside)."""
    out: set[str] = set()
    for word in normalized.split(" "):
        out.update(word[i : i + 2] for i in range(len(word) - 1))
        if len(word) == 1:
            out.add(word)
    return out
