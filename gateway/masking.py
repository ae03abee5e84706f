"""Masking of customers' addresses and phone numbers (SEC-6) for operators without the
permission see_customer_addresses, applied to every JSON answer that carries customer
data and to every WebSocket push — in one place, so that no view can forget it.

- Every mail address anywhere in a string (subjects, snippets, bodies, HTML, header
  values, an actor's id) becomes `t***@e***.jp`: its first letter, and the domain's first
  letter and last label.
- Values of phone fields (`phone`, `phones`, `memo_phone`) keep only their last two
  digits: `090-1234-5678` → `***-****-**78`.
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


def mask_address_text(text: str) -> str:
    if "@" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        local, domain, tld = m.group(1), m.group(2), m.group(3)
        return f"{local[:1]}***@{domain[:1]}***.{tld}"

    return _ADDRESS.sub(one, text)


def mask_phone(value: str) -> str:
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    keep = set(digits[-2:])
    return "".join("*" if c.isdigit() and i not in keep else c for i, c in enumerate(value))


def mask(node: Any, key: str = "") -> Any:
    """A copy of a JSON value with customers' addresses and phone numbers masked."""
    if isinstance(node, str):
        return mask_phone(mask_address_text(node)) if key in PHONE_KEYS else mask_address_text(node)
    if isinstance(node, dict):
        return {k: mask(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [mask(v, key) for v in node]
    return node
