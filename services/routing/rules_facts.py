"""What the rules read of a mail and its ticket, built from the messages routing has
(MailSummary, the ticket's summary, ingestion's parsed mail and header block), and the
decision as the MessageRouted field tickets applies. Conversions only, no I/O."""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime.ticket_names import (
    PRIORITY_NAMES,
    PRIORITY_VALUES,
    STATUS_NAMES,
    STATUS_VALUES,
)

from .rules import model
from .rules.model import Attachment, ContactFacts, Decision, Facts, TicketState

HEADER_BLOCK_LIMIT = 256 * 1024
BODY_LIMIT = 20_000


@dataclass(frozen=True)
class MailDetails:
    """What only the stored mail has: its headers, its attachments, its whole text."""

    headers: Mapping[str, tuple[str, ...]]
    attachments: tuple[Attachment, ...]
    text: str


def customer_mails(found: tickets_pb2.GetTicketResponse) -> list[tickets_pb2.TicketMessage]:
    """A ticket's mails that came in (not our own sent ones, not phone memos), oldest
    first: the rules of a stored ticket read its latest."""
    return [m for m in found.messages if m.HasField("mail") and m.channel != "sent"]


def ticket_state(ticket: events_pb2.TicketSummary, inbox_id: str = "") -> TicketState:
    """A stored ticket's fields, or a new ticket's defaults (an empty summary)."""
    return TicketState(
        labels=frozenset(ticket.labels),
        category=ticket.category,
        priority=PRIORITY_NAMES.get(ticket.priority, "normal"),
        status=STATUS_NAMES.get(ticket.status, "open"),
        inbox_id=ticket.inbox.id or inbox_id,
    )


def headers_of(raw: bytes) -> dict[str, tuple[str, ...]]:
    """The header block of a raw mail, names lower-cased, values decoded (RFC 2047)."""
    block = raw[:HEADER_BLOCK_LIMIT]
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = block.find(sep)
        if end >= 0:
            block = block[: end + len(sep)]
            break
    parsed = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(block)
    out: dict[str, list[str]] = {}
    for name, value in parsed.items():
        try:
            text = str(value)
        except Exception:  # a header the policy cannot decode: compared as it came
            text = str(parsed.get(name, ""))
        out.setdefault(name.lower(), []).append(text)
    return {k: tuple(v) for k, v in out.items()}


def details_of(parsed_json: str, raw: bytes) -> MailDetails:
    parsed = json.loads(parsed_json) if parsed_json else {}
    attachments = tuple(
        Attachment(str(a.get("filename", "")), str(a.get("content_type", "")).lower())
        for a in parsed.get("attachments", [])
        if isinstance(a, dict)
    )
    return MailDetails(
        headers=headers_of(raw) if raw else {},
        attachments=attachments,
        text=str(parsed.get("text", ""))[:BODY_LIMIT],
    )


def contact_facts(contact: tickets_pb2.Contact | None) -> ContactFacts | None:
    """The sender's contact as conditions read it; None when there is none (yet)."""
    if contact is None or not contact.id:
        return None
    return ContactFacts(
        custom=dict(contact.custom),
        customer_value=(
            float(contact.customer_value) if contact.HasField("customer_value") else None
        ),
        vip=contact.vip,
    )


def facts_of(
    mail: events_pb2.MailSummary,
    *,
    channel: str,
    received_at: datetime,
    envelope_recipients: list[str],
    ticket: TicketState,
    details: MailDetails | None,
    contact: tickets_pb2.Contact | None = None,
    language: str = "",
) -> Facts:
    sender = getattr(mail, "from")
    recipients = [a.address for a in [*mail.to, *mail.cc]] + list(envelope_recipients)
    body = mail.search_text or (details.text if details else "") or mail.snippet
    return Facts(
        sender_address=sender.address,
        sender_name=sender.name,
        recipients=tuple(dict.fromkeys(r for r in recipients if r)),
        subject=mail.subject,
        body=body,
        channel=channel,
        received_at=received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC),
        has_attachments=mail.has_attachments,
        size=mail.size_bytes,
        attachment_count=len(details.attachments) if details else int(mail.has_attachments),
        attachments=details.attachments if details else None,
        headers=details.headers if details else None,
        ticket=ticket,
        contact=contact_facts(contact),
        language=language,
    )


def decision_pb(decision: Decision, trigger: str = "") -> events_pb2.RoutingDecision:
    """The decision as MessageRouted (or ApplyRoutingDecision) carries it."""
    pb = events_pb2.RoutingDecision(
        inbox_id=decision.inbox_id or "",
        status=STATUS_VALUES.get(decision.status or "", common_pb2.TICKET_STATUS_UNSPECIFIED),
        assignee_id=decision.assignee_id or "",
        assign_by_strategy=decision.assign_by_strategy,
        add_labels=decision.add_labels,
        remove_labels=decision.remove_labels,
        priority=PRIORITY_VALUES.get(decision.priority or "", common_pb2.PRIORITY_UNSPECIFIED),
        spam=decision.spam,
        trash=decision.trash,
        approval_label=decision.approval_label,
    )
    if decision.category is not None:
        pb.category = decision.category
    for name, level in decision.required_skills.values():
        pb.required_skills.add(name=name, min_level=level)
    for rule_id, name, action in decision.trace:
        pb.applied.add(rule_id=rule_id, rule_name=name, action=action)
    effects_pb(decision, pb)
    pb.trigger = trigger
    return pb


def effects_pb(decision: Decision, pb: events_pb2.RoutingDecision) -> None:
    """The auto-reply, notify and webhook actions, each naming its rule."""
    for rule_id, name, a in decision.effects_by_rule():
        if a.type == model.AUTO_REPLY:
            pb.auto_replies.add(rule_id=rule_id, rule_name=name, template_id=a.value)
        elif a.type == model.NOTIFY:
            pb.notifies.add(rule_id=rule_id, rule_name=name, to=a.to, message=a.value)
        elif a.type == model.WEBHOOK:
            pb.webhooks.add(rule_id=rule_id, rule_name=name, url=a.value)
