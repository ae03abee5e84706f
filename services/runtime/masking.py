"""Masking of customers' addresses and phone numbers (SEC-6) for operators without the
permission see_customer_addresses: the gateway applies it to every JSON answer that
carries customer data and to every WebSocket push — in one place, so that no view can
forget it; composition uses it to recognise a masked recipient sent back unchanged.

- Every mail address anywhere in a string (subjects, snippets, bodies, HTML, header
  values, an actor's id) becomes `t***@e***.jp`: its first letter, and the domain's first
  letter and last label — except the tenant's own inbox addresses (`keep`), which are
  not a customer's.
- Values of phone fields (`phone`, `phones`, `memo_phone`) keep only their last two
  digits: `090-1234-5678` → `***-****-**78`; so do numbers in free text that look like
  phone numbers (starting with 0 or +, 10 to 15 digits), also right after Japanese text or
  `TEL:`, and in full-width forms (`０９０－１２３４－５６７８`).

Searching follows the same line (services/tickets, migration 006): for such an operator a
search is compared with text from which every address and phone number has been removed
— by a rule in the database that is broader than this one — so what this module hides can
never be found by searching for it either.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# Deliberately broad: anything shaped like local@domain.tld is masked, valid or not, in
# ASCII or full-width forms (ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ).
_ADDRESS = re.compile(
    r"(?<![\w.+-])([\w.+'&%!#$*/=?^`{|}~-]+)[@＠]"
    r"([\w-]+(?:[.．][\w-]+)*[.．]([A-Za-zＡ-Ｚａ-ｚ]{2,63}|xn--[\w-]+))",
    re.UNICODE,
)
_AT = ("@", "＠")
PHONE_KEYS = frozenset({"phone", "phones", "memo_phone", "caller_phone"})
# A phone number in free text: a run of digits, spaces, dots, dashes and brackets (ASCII
# or full-width), that starts with + or 0 (a national or international number, as written
# in Japan and most of Europe) and holds 10 to 15 digits. Dates, times, amounts and order
# numbers do not. Not inside an identifier, a UUID, a URL path or a time: no Latin letter
# or digit, `_`, dash, dot, slash (or, after it, colon) right before or after it — judged
# on the neighbour's NFKC form, so `Ａ`/`１` count as `A`/`1`; Japanese text right before
# or after (`電話09012345678まで`) and a label such as `TEL:` do not protect a number.
_DIGIT = "0-9０-９"
_PHONE_SEP = r"\s().\-－‐‑–—−ー（）"
_PHONE_START = re.compile(r"[+＋(（0０]")
_PHONE_RUN = re.compile(
    rf"(?:[+＋]|[(（][0０]|[0０])[{_DIGIT}{_PHONE_SEP}]{{8,24}}[{_DIGIT}]"
    rf"(?![{_DIGIT}A-Za-zＡ-Ｚａ-ｚ_\-/:－])"
)
_BEFORE_NOT = frozenset("0123456789_+.-/ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def mask_address_text(text: str, keep: frozenset[str] = frozenset()) -> str:
    """`text` with every address masked but those in `keep` (lower case)."""
    if not any(at in text for at in _AT):
        return text

    def one(m: re.Match[str]) -> str:
        if keep and m.group(0).lower() in keep:
            return m.group(0)
        local, domain, tld = m.group(1), m.group(2), m.group(3)
        return f"{local[:1]}***@{domain[:1]}***.{tld}"

    return _ADDRESS.sub(one, text)


def mask_phone(value: str) -> str:
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    keep = set(digits[-2:])
    return "".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(value))


def _number_may_start(text: str, at: int) -> bool:
    """Whether the character before `at` lets a phone number start there."""
    if at == 0:
        return True
    before = unicodedata.normalize("NFKC", text[at - 1])[-1:]
    if before in _BEFORE_NOT:
        return False
    if before == ":" and at >= 2:  # a time's minutes (10:0312…), not a label (TEL:03…)
        return not unicodedata.normalize("NFKC", text[at - 2])[-1:].isdigit()
    return True


def phone_spans(text: str) -> list[tuple[int, int]]:
    """Where phone numbers stand in free text: (start, end) of each, in order."""
    spans: list[tuple[int, int]] = []
    end = 0
    for start in _PHONE_START.finditer(text):
        at = start.start()
        if at < end or not _number_may_start(text, at):
            continue
        m = _PHONE_RUN.match(text, at)
        if m is None:
            continue
        digits = sum(c.isdigit() for c in m.group(0))
        if 10 <= digits <= 15:
            spans.append((at, m.end()))
            end = m.end()
    return spans


def mask_phone_text(text: str) -> str:
    out, last = [], 0
    for start, end in phone_spans(text):
        out += [text[last:start], mask_phone(text[start:end])]
        last = end
    return "".join(out) + text[last:] if out else text


def mask_text(text: str, keep: frozenset[str] = frozenset()) -> str:
    return mask_phone_text(mask_address_text(text, keep))


def mask(node: Any, key: str = "", keep: frozenset[str] = frozenset()) -> Any:
    """A copy of a JSON value with customers' addresses and phone numbers masked (the
    addresses in `keep`, lower case, are left as they are)."""
    if isinstance(node, str):
        if key in PHONE_KEYS:
            return mask_phone(mask_address_text(node, keep))
        return mask_text(node, keep)
    if isinstance(node, dict):
        return {k: mask(v, k, keep) for k, v in node.items()}
    if isinstance(node, list):
        return [mask(v, key, keep) for v in node]
    return node


def unmask_recipients(sent: list[str], known: list[str]) -> list[str]:
    """The recipients an operator who sees masked addresses sent back: each masked one
    replaced by the known address it is the mask of. ValueError names one that masks
    none of them (an operator cannot type a masked address into existence)."""
    out = []
    for value in sent:
        if "***@" not in value:
            out.append(value)
            continue
        match = [k for k in known if mask_address_text(k) == value]
        if not match:
            raise ValueError(value)
        out.append(match[0])
    return out
