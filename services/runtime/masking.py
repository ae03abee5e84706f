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
  phone numbers (starting with 0 or +, 10 to 15 digits).
"""

from __future__ import annotations

import re
from typing import Any

# Deliberately broad: anything shaped like local@domain.tld is masked, valid or not.
_ADDRESS = re.compile(
    r"(?<![\w.+-])([\w.+'&%!#$*/=?^`{|}~-]+)@([\w-]+(?:\.[\w-]+)*\.([A-Za-z]{2,63}|xn--[\w-]+))",
    re.UNICODE,
)
PHONE_KEYS = frozenset({"phone", "phones", "memo_phone", "caller_phone"})
# A phone number in free text: a run of digits, spaces, dots, dashes and brackets, that
# starts with + or 0 (a national or international number, as written in Japan and most
# of Europe) and holds 10 to 15 digits. Dates, times, amounts and order numbers do not.
# Not inside an identifier, a UUID, a URL path or a time: nothing word-like, no dash,
# dot, slash or colon right before or after it.
_PHONE_RUN = re.compile(r"(?<![\w+.\-/:])(?:\+|\(0|0)[\d\s().-]{8,24}\d(?![\w\-/:])")


def mask_address_text(text: str, keep: frozenset[str] = frozenset()) -> str:
    """`text` with every address masked but those in `keep` (lower case)."""
    if "@" not in text:
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


def mask_phone_text(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        run = m.group(0)
        digits = sum(c.isdigit() for c in run)
        return mask_phone(run) if 10 <= digits <= 15 else run

    return _PHONE_RUN.sub(one, text)


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
