"""A draft as approval judges it (no I/O): the content its hash covers — what the
customer would receive, never who saved it or when — and the facts the policy's
conditions look at."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import composition_pb2

from services.runtime.ticket_names import PRIORITY_NAMES

from .policy import DraftFacts, TicketFacts, content_hash


def content_of(rev: composition_pb2.DraftRevision) -> dict[str, Any]:
    return {
        "from": [rev.from_address, rev.from_name],
        "to": list(rev.to),
        "cc": list(rev.cc),
        "bcc": list(rev.bcc),
        "subject": rev.subject,
        "body_text": rev.body_text,
        "body_html": rev.body_html,
        "signature": [rev.signature_text, rev.signature_html],
        "quote": rev.quote_text if rev.include_quote else "",
        "attachments": [
            [a.sha256, a.filename, a.content_type, a.inline, a.content_id] for a in rev.attachments
        ],
    }


def hash_of(rev: composition_pb2.DraftRevision) -> str:
    return content_hash(content_of(rev))


def facts_of(rev: composition_pb2.DraftRevision) -> DraftFacts:
    return DraftFacts(
        recipients=(*rev.to, *rev.cc, *rev.bcc),
        subject=rev.subject,
        body_text=rev.body_text,
        body_html=rev.body_html,
        attachments=sum(1 for a in rev.attachments if not a.inline),
    )


def ticket_facts(ticket: Any) -> TicketFacts:
    """Of tickets' TicketSummary (None: a new mail without a ticket)."""
    if ticket is None:
        return TicketFacts()
    return TicketFacts(frozenset(ticket.labels), PRIORITY_NAMES.get(ticket.priority, ""))
