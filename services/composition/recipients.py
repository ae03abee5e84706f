"""Whom a new draft is addressed to by default (ADR 0009), free of I/O.

A reply (and a reply to all) goes to the ticket's customer — not to whoever wrote last:
a mail can join a ticket from someone who is not a participant (a forwarded copy of our
mail carries our signed Message-ID), and a From address may be forged. So:

- `to` is the ticket's customer: its sender (the contact's name), or, for a ticket we
  started, the first recipient of the first mail we sent on it. Only when the mail
  answered is the customer's own, not a stranger's, and its sender verified by a host we
  trust, is a Reply-To it carries honoured (the customer asked for answers elsewhere, and
  someone vouches that it is them);
- a reply to all adds as Cc the other addresses of the mail answered (its From, Reply-To,
  To and Cc) — but never those of a stranger's mail, which the operator adds by hand if
  they mean to;
- the inbox's own addresses are never recipients; a forward starts empty; a new mail on a
  ticket goes to its customer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.runtime.mail import Mailbox, header_text

Named = tuple[str, str]  # (display name, address)


@dataclass(frozen=True)
class Answered:
    """The mail being answered, as the default recipients need it."""

    sender: Named
    reply_to: Sequence[Named] = ()
    to: Sequence[Named] = ()
    cc: Sequence[Named] = ()
    stranger: bool = False  # its sender was not a participant of the ticket
    verified: bool = False  # a trusted host vouches for its From address


@dataclass(frozen=True)
class Customer:
    """The ticket's customer, and whom we wrote to first on it (a ticket we started)."""

    name: str = ""
    address: str = ""
    first_written_to: Sequence[Named] = field(default_factory=tuple)


def _mailbox(n: Named) -> str:
    """A recipient taken from a customer's mail: their display name made header-safe
    (issue 16) and without the characters an address entry refuses, so the draft saves."""
    name = "".join(c for c in header_text(n[0]) if c not in '<>"\\').strip()
    return str(Mailbox(name, n[1]))


def customer_of(c: Customer, ours: set[str]) -> Named | None:
    if c.address and c.address.lower() not in ours:
        return (c.name, c.address)
    for name, address in c.first_written_to:
        if address and address.lower() not in ours:
            return (name, address)
    return None


def default_recipients(
    kind: str, customer: Customer | None, answered: Answered | None, ours: set[str]
) -> tuple[list[str], list[str]]:
    """(to, cc) of a new draft of `kind` ("reply", "reply_all", "forward", "new")."""
    if kind == "forward":
        return [], []
    who = customer_of(customer, ours) if customer is not None else None
    if kind == "new" or answered is None:
        return ([_mailbox(who)] if who else []), []
    to: list[Named] = [who] if who else []
    if who is None and not answered.stranger and answered.sender[1].lower() not in ours:
        to = [answered.sender]  # a ticket without a customer address: its writer
    from_customer = who is not None and answered.sender[1].lower() == who[1].lower()
    if from_customer and answered.verified and not answered.stranger:
        replies = [a for a in answered.reply_to if a[1] and a[1].lower() not in ours]
        to = replies or to
    cc: list[Named] = []
    if kind == "reply_all" and not answered.stranger:
        taken = {a.lower() for _, a in to} | ours
        for n, a in [answered.sender, *answered.reply_to, *answered.to, *answered.cc]:
            if a and a.lower() not in taken:
                taken.add(a.lower())
                cc.append((n, a))
    return [_mailbox(a) for a in to], [_mailbox(a) for a in cc]
