"""Blocked senders (ING-5): which rule, if any, a mail's sender falls under. Pure.

Rules are an exact address, a domain (and its subdomains), or a glob pattern on the
address (`*@*.spam.example`, `noreply-*@shop.example`) — globs rather than regular
expressions, so a rule can never make matching slow.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.runtime.errors import InvalidArgument

KINDS = ("address", "domain", "pattern")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class Rule:
    kind: str
    value: str

    def label(self) -> str:
        return f"{self.kind}:{self.value}"


def normalise(kind: str, value: str) -> str:
    """The stored form of a rule, or InvalidArgument."""
    v = value.strip().lower()
    if kind not in KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}", field="kind")
    if not v or len(v) > 320 or any(c in v for c in " \r\n\t\0<>"):
        raise InvalidArgument("value must be an address, a domain or a pattern", field="value")
    if kind == "address" and (v.count("@") != 1 or v.startswith("@") or v.endswith("@")):
        raise InvalidArgument("an address looks like name@domain", field="value")
    if kind == "domain":
        v = v.lstrip("@").lstrip(".")
        if not _DOMAIN.match(v):
            raise InvalidArgument("a domain looks like example.com", field="value")
    if kind == "pattern" and not any(c in v for c in "*?["):
        raise InvalidArgument("a pattern needs * or ? (or use kind address)", field="value")
    return v


def matching(rules: Iterable[Rule], senders: Iterable[str]) -> Rule | None:
    """The first rule any of the sender addresses falls under."""
    addresses = [s.strip().lower() for s in senders if s and "@" in s]
    for rule in rules:
        for addr in addresses:
            domain = addr.rsplit("@", 1)[1]
            if rule.kind == "address" and addr == rule.value:
                return rule
            if rule.kind == "domain" and (
                domain == rule.value or domain.endswith("." + rule.value)
            ):
                return rule
            if rule.kind == "pattern" and fnmatch.fnmatchcase(addr, rule.value):
                return rule
    return None
