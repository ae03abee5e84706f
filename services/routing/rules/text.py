"""Text comparison: NFKC-normalised and case-folded, so 全角 and 半角, upper and lower case
compare equal; Japanese is compared as written (substrings, no word splitting). Regular
expressions use RE2 (google-re2): linear time in the text, whatever the pattern."""

from __future__ import annotations

import unicodedata
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # a refused pattern is the administrator's error, not a log line
_OPTIONS.max_mem = 8 << 20  # a pattern whose program would need more is refused on save


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


class BadPattern(ValueError):
    pass


def compile_regex(pattern: str) -> Any:
    """The compiled RE2 pattern, or BadPattern saying why it is refused (invalid syntax,
    or what RE2 does not run in linear time: backreferences, lookaround)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as err:
        reason = err.args[0] if err.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise BadPattern(str(reason)) from None
