"""The language a mail is written in (issue 18): `py3langid` (a small naive-Bayes model
shipped in the package, no download) on the subject and the start of the text,
restricted to languages with an ISO 639-1 code. Too little text, or an unsure answer,
is "" (unknown): a condition on the language then does not hold, and assignment does
not restrict by it."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

TEXT_LIMIT = 2000  # characters read: the start of a mail tells its language
MIN_LETTERS = 3
MIN_PROBABILITY = 0.5
_QUOTE = re.compile(r"^\s*>.*$", re.MULTILINE)  # quoted lines are someone else's words
_REPLY_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|tr)\s*:\s*)+", re.IGNORECASE)
_KANA = re.compile(r"[\u3040-\u30ff]")


class LanguageDetector:
    """Loads the model once (about a second: the wiring does it off the event loop)."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        ident: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        two_letter = [code for code in ident.nb_classes if len(code) == 2]
        ident.set_languages(two_letter)
        self._ident = ident

    def detect(self, subject: str, body: str) -> str:
        """An ISO 639-1 code ("ja", "en", …) or "" when it cannot tell."""
        text = _REPLY_PREFIX.sub("", subject) + "\n" + _QUOTE.sub("", body[: TEXT_LIMIT * 2])
        text = unicodedata.normalize("NFKC", text)[:TEXT_LIMIT]
        if sum(1 for c in text if c.isalpha()) < MIN_LETTERS:
            return ""
        code, probability = self._ident.classify(text)
        if code == "zh" and _KANA.search(text):
            return "ja"  # kana is Japanese only; a kanji-heavy Japanese text may look Chinese
        return str(code) if probability >= MIN_PROBABILITY else ""
