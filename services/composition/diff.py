"""Word-level differences between two texts (APR-4 groundwork), free of I/O.

English words are runs of letters and digits; Japanese has no spaces, so its "words" are
runs of kanji or of katakana, which split a sentence where a reader would (確認, 至急,
メール), and hiragana one character at a time (the particles and endings between them are
one or a few characters, and a run of them is rarely one word). Spaces, punctuation and
every other character are tokens of their own. The result is a list of (op, text) with
op `equal`, `insert` or `delete`, the text of neighbouring tokens joined, which the UI
colours.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"[A-Za-z0-9\u00C0-\u024F]+(?:['’][A-Za-z]+)?"  # Latin words (with don't, it's)
    r"|[\u4E00-\u9FFF\u3400-\u4DBF\uF900-\uFAFF々〆]+"  # kanji
    r"|[\u3041-\u309F]"  # hiragana: one by one (particles and endings are short)
    r"|[\u30A1-\u30FF\u31F0-\u31FFー]+"  # katakana (with the long vowel mark)
    r"|[\uFF10-\uFF19\uFF21-\uFF3A\uFF41-\uFF5A]+"  # full-width Latin and digits
    r"|\s+"
    r"|.",
    re.S,
)


@dataclass(frozen=True)
class Op:
    op: str  # "equal" | "insert" | "delete"
    text: str


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def diff(old: str, new: str) -> list[Op]:
    a, b = tokens(old), tokens(new)
    out: list[Op] = []

    def add(op: str, parts: list[str]) -> None:
        text = "".join(parts)
        if not text:
            return
        if out and out[-1].op == op:
            out[-1] = Op(op, out[-1].text + text)
        else:
            out.append(Op(op, text))

    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            add("equal", a[i1:i2])
        else:
            add("delete", a[i1:i2])
            add("insert", b[j1:j2])
    return out
