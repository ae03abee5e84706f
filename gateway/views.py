"""JSON shapes the web clients see (docs: gateway/openapi.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import priority_score
from services.runtime.ticket_names import (
    PRIORITY_NAMES,
    STATUS_NAMES,
)


def iso(ts: Timestamp) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    text: str = ts.ToDatetime(tzinfo=UTC).isoformat()
    return text.replace("+00:00", "Z")


def address(a: common_pb2.Address) -> dict[str, str]:
    return {"name": a.name, "address": a.address}


def ticket(t: events_pb2.TicketSummary) -> dict[str, Any]:
    return {
        "id": t.id,
        "subject": t.subject,
        "status": STATUS_NAMES.get(t.status, "unknown"),
        "inbox": {"id": t.inbox.id, "name": t.inbox.name},
        "from": address(getattr(t, "from")),
        "received_at": iso(t.received_at),
        "updated_at": iso(t.updated_at),
        "assignee": (
            {"id": t.assignee.id, "name": t.assignee.display_name}
            if t.HasField("assignee")
            else None
        ),
        "number": t.number,
        "priority": PRIORITY_NAMES.get(t.priority),
        "category": t.category or None,
        "labels": list(t.labels),
        "flags": list(t.flags),
        "contact_id": t.contact_id or None,
        "merged_into": t.merged_into or None,
        "last_message_at": iso(t.last_message_at),
        "message_count": t.message_count,
        "lock": lock(t.lock) if t.HasField("lock") else None,
        "editing": t.editing,
        "awaiting_approval": t.awaiting_approval,
        "sla_due_at": iso(t.sla_due_at),
        "pending_until": iso(t.pending_until),
        **ticket_facts(t),
    }


def ticket_facts(t: events_pb2.TicketSummary) -> dict[str, Any]:
    """Issue 18: the detected language, the skills required of its assignee, the
    contact's customer value and the priority score now (minutes since its origin)."""
    since = t.priority_score_since
    return {
        "language": t.language or None,
        "required_skills": [{"name": s.name, "min_level": s.min_level} for s in t.required_skills],
        "customer_value": t.customer_value if t.HasField("customer_value") else None,
        "priority_score": (
            priority_score.score(since.ToDatetime(tzinfo=UTC), datetime.now(UTC))
            if since.seconds
            else None
        ),
        "priority_score_since": iso(since),
    }


def elapsed(seconds: int, level: int, color: str) -> dict[str, Any]:
    """TKT-14: time since the ticket arrived and the inbox threshold it has reached."""
    return {
        "elapsed_seconds": seconds,
        "elapsed_level": level,
        "elapsed_color": color or None,
    }


def ticket_row(r: tickets_pb2.TicketRow) -> dict[str, Any]:
    """A list row: the ticket with its elapsed time."""
    return {**ticket(r.ticket), **elapsed(r.elapsed_seconds, r.elapsed_level, r.elapsed_color)}


def mail(m: events_pb2.MailSummary) -> dict[str, Any]:
    return {
        "message_id": m.rfc822_message_id,
        "subject": m.subject,
        "from": address(getattr(m, "from")),
        "to": [address(a) for a in m.to],
        "cc": [address(a) for a in m.cc],
        "date": iso(m.date),
        "snippet": m.snippet,
        "size_bytes": m.size_bytes,
        "has_attachments": m.has_attachments,
        "auto_submitted": m.auto_submitted,
        "spam": m.spam,
        "blocked_by": m.blocked_by or None,
        "parse_problems": list(m.parse_problems),
        **sender_auth(m),
    }


def sender_auth(m: events_pb2.MailSummary) -> dict[str, Any]:
    """ADR 0009: whether a host we trust vouches for the From address — null for our own
    mail (and mail filed before verdicts were recorded)."""
    if not m.HasField("sender_auth"):
        return {"sender_verified": None, "sender_auth": None}
    a = m.sender_auth
    return {
        "sender_verified": a.verified,
        "sender_auth": (
            {"method": a.method, "authserv_id": a.authserv_id}  # not the domain: masking
            if a.verified
            else None
        ),
    }


def operator(o: common_pb2.OperatorRef) -> dict[str, str]:
    return {"id": o.id, "name": o.display_name}


def memo(m: tickets_pb2.PhoneMemo) -> dict[str, Any]:
    """A phone memo (TKT-7): what was said, which way, with whom, written by whom."""
    return {
        "body": m.body,
        "direction": m.direction,
        "caller_name": m.caller_name,
        "phone": m.phone,
        "duration_s": m.duration_s,
        "author": operator(m.author) if m.HasField("author") else None,
    }


def comment(c: tickets_pb2.Comment) -> dict[str, Any]:
    """An internal comment (TKT-6); never part of a mail."""
    return {
        "id": c.id,
        "author": operator(c.author),
        "body": c.body,
        "mentions": [operator(o) for o in c.mentions],
        "created_at": iso(c.created_at),
    }


def contact(c: tickets_pb2.Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "addresses": list(c.addresses),
        "phones": list(c.phones),
        "company": c.company,
        "memo": c.memo,
        "custom": dict(sorted(c.custom.items())),
        "customer_value": c.customer_value if c.HasField("customer_value") else None,
        "vip": c.vip,
        "labels": list(c.labels),
        "time_zone": c.time_zone,
        "language": c.language,
        "last_contact_at": iso(c.last_contact_at) if c.HasField("last_contact_at") else None,
        "ticket_count": c.ticket_count,
        "merged_into": c.merged_into or None,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
    }


def timeline_entry(e: tickets_pb2.TimelineEntry) -> dict[str, Any]:
    """One entry of a contact's timeline: `ticket_opened`, `mail`, `phone_memo` or `comment`."""
    base: dict[str, Any] = {"ticket_id": e.ticket_id, "at": iso(e.at)}
    kind = e.WhichOneof("entry")
    if kind == "ticket_opened":
        return {**base, "type": "ticket_opened", "ticket": ticket(e.ticket_opened)}
    if kind == "comment":
        return {**base, "type": "comment", "comment": comment(e.comment)}
    m = e.message
    msg = {"id": m.id, "channel": m.channel, "received_at": iso(m.received_at)}
    if m.HasField("memo"):
        return {**base, "type": "phone_memo", "message": {**msg, **memo(m.memo)}}
    return {**base, "type": "mail", "message": {**msg, "stranger": m.stranger, **mail(m.mail)}}


def lock(lk: events_pb2.ReplyLock) -> dict[str, Any]:
    """A reply lock (TKT-3): who is replying, the fence their writes carry, until when."""
    return {
        "holder": operator(lk.holder),
        "fence": lk.fence,
        "expires_at": iso(lk.expires_at),
        "acquired_at": iso(lk.acquired_at),
    }


def lock_event(change: events_pb2.ReplyLockChanged) -> dict[str, Any]:
    """lock.acquired / renewed / released / expired / taken_over on the live WebSocket."""
    return {
        "ticket_id": change.ticket_id,
        "lock": lock(change.lock) if change.HasField("lock") else None,
        "previous_holder": (
            operator(change.previous_holder) if change.HasField("previous_holder") else None
        ),
        "previous_fence": change.previous_fence or None,
    }


def message(m: tickets_pb2.TicketMessage) -> dict[str, Any]:
    """A message of a ticket: a mail (its summary) or a phone memo (channel `phone`)."""
    base = {"id": m.id, "channel": m.channel, "received_at": iso(m.received_at)}
    if m.HasField("memo"):
        return {**base, **memo(m.memo)}
    return {**base, "stranger": m.stranger, **mail(m.mail)}


ACTOR_KINDS = {
    common_pb2.Actor.KIND_SYSTEM: "system",
    common_pb2.Actor.KIND_OPERATOR: "operator",
    common_pb2.Actor.KIND_CUSTOMER: "customer",
}


def actor(a: common_pb2.Actor) -> dict[str, Any] | None:
    """Who did something: an operator (by id), a customer (by address) or the system."""
    if a.kind == common_pb2.Actor.KIND_UNSPECIFIED and not a.id:
        return None
    return {"kind": ACTOR_KINDS.get(a.kind, "system"), "id": a.id, "name": a.display}


def changes(items: Any) -> list[dict[str, str]]:
    """FieldChange list: what changed, from what to what, as text."""
    return [{"field": c.field, "old": c.old_value, "new": c.new_value} for c in items]


def audit_entry(e: tickets_pb2.AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": iso(e.at),
        "actor": actor(e.actor),
        "action": e.action,
        "changes": changes(e.changes),
        "comment": e.comment or None,
    }


def event(env: events_pb2.EventEnvelope) -> dict[str, Any] | None:
    """What an event looks like on the live WebSocket; None for events not pushed."""
    base = {"type": env.type, "event_id": env.event_id, "occurred_at": iso(env.occurred_at)}
    kind = env.WhichOneof("payload")
    if kind == "ticket_created":
        return {**base, "ticket": ticket(env.ticket_created.ticket)}
    by = {"by": actor(env.actor)}
    if kind == "reply_lock":
        return {**base, **by, **lock_event(env.reply_lock)}
    if kind == "ticket_updated":
        up = env.ticket_updated
        return {
            **base,
            **by,
            "ticket": ticket(up.ticket),
            "action": up.action,
            "changes": changes(up.changes),
            "comment": up.comment or None,
        }
    if kind == "ticket_assigned":
        asg = env.ticket_assigned
        return {
            **base,
            **by,
            "ticket": ticket(asg.ticket),
            "assignee": operator(asg.assignee) if asg.HasField("assignee") else None,
            "previous": operator(asg.previous) if asg.HasField("previous") else None,
        }
    if kind == "ticket_message_added":
        added = env.ticket_message_added
        return {
            **base,
            **by,
            "ticket": ticket(added.ticket),
            "message_id": added.message_id,
            "channel": added.channel,
            "reopened": added.reopened,
        }
    if kind == "comment_added":
        c = env.comment_added
        return {
            **base,
            **by,
            "ticket": ticket(c.ticket),
            "comment": {
                "id": c.comment_id,
                "author": operator(c.author),
                "body": c.body,
                "mentions": [operator(o) for o in c.mentions],
            },
        }
    if kind == "send_changed":
        sent = env.send_changed
        return {
            **base,
            **by,
            "send": {
                "id": sent.send_id,
                "kind": sent.kind,
                "ticket_id": sent.ticket_id or None,
                "inbox_id": sent.inbox_id,
                "draft_id": sent.draft_id or None,
                "state": sent.state,
                "previous_state": sent.previous_state or None,
                "message_id": sent.message_id,
                "attempts": sent.attempts,
                "smtp_code": sent.smtp_code or None,
                "smtp_message": sent.smtp_message or None,
                "send_at": iso(sent.send_at),
            },
        }
    if kind == "presence_changed":
        return {**base, **by, "operator": presence(env.presence_changed)}
    return None


def presence(p: events_pb2.PresenceChanged) -> dict[str, Any]:
    """An operator's presence, as one item of GET /api/v1/presence."""
    return {
        "operator_id": p.operator_id,
        "status": p.status,
        "effective": p.effective,
        "expires_at": iso(p.expires_at),
        "updated_at": iso(p.updated_at),
        "load": p.load,
        "capacity": p.capacity if p.HasField("capacity") else None,
    }


def event_inbox(env: events_pb2.EventEnvelope) -> str | None:
    """The inbox an event is about (who may see it), or None for the whole tenant."""
    kind = env.WhichOneof("payload")
    if kind == "reply_lock":
        return env.reply_lock.inbox_id or ""
    if kind == "send_changed":
        return env.send_changed.inbox_id or ""
    if kind in (
        "ticket_created",
        "ticket_updated",
        "ticket_assigned",
        "ticket_message_added",
        "comment_added",
        "rule_actions",
    ):
        return str(getattr(env, kind).ticket.inbox.id)
    return None


def ticket_left(env: events_pb2.EventEnvelope) -> dict[str, Any] | None:
    """For the operators of the inbox a transferred ticket left who may not see the one
    it went to: which ticket to drop from their lists (nothing more of it)."""
    if env.WhichOneof("payload") != "ticket_updated":
        return None
    previous = env.ticket_updated.previous_inbox
    if not previous.id:
        return None
    return {
        "type": "ticket.left",
        "event_id": env.event_id,
        "occurred_at": iso(env.occurred_at),
        "ticket_id": env.ticket_updated.ticket.id,
        "inbox_id": previous.id,
    }


def notifications(env: events_pb2.EventEnvelope) -> list[tuple[str, dict[str, Any]]]:
    """Messages for one operator each (TKT-4, TKT-6): the new assignee of a ticket, the
    operators an internal comment mentions. Nobody is notified of their own action."""
    kind = env.WhichOneof("payload")
    targets: list[tuple[str, str, events_pb2.TicketSummary, dict[str, Any]]] = []
    if kind == "ticket_assigned" and env.ticket_assigned.HasField("assignee"):
        asg = env.ticket_assigned
        targets.append((asg.assignee.id, "assigned", asg.ticket, {}))
    elif kind == "comment_added":
        c = env.comment_added
        extra = {"comment": {"id": c.comment_id, "body": c.body}}
        targets.extend((o.id, "mentioned", c.ticket, extra) for o in c.mentions)
    out: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for operator_id, what, summary, extra in targets:
        if not operator_id or operator_id == env.actor.id or operator_id in seen:
            continue
        seen.add(operator_id)
        out.append(
            (
                operator_id,
                {
                    "type": "notification",
                    "kind": what,
                    "event_id": env.event_id,
                    "occurred_at": iso(env.occurred_at),
                    "ticket": ticket(summary),
                    "by": actor(env.actor),
                    **extra,
                },
            )
        )
    return out


def ticket_actions(granted: frozenset[str], t: events_pb2.TicketSummary) -> dict[str, bool]:
    """What the caller may do with this ticket (SEC-4), for the UI to grey out the rest;
    the services check the same again when it is done."""
    merged = bool(t.merged_into)
    return {
        "change": not merged,
        # every operator who sees the ticket may write a reply (take its reply lock);
        # one who needs approval sends it through a request (issue 17): the primary
        # button is "Request approval" unless send_without_approval
        "reply": not merged,
        "send_without_approval": "send_without_approval" in granted,
        "approve": "approve" in granted,
        "take_over_lock": "take_over_locks" in granted and t.HasField("lock"),
        "download_attachments": "download_attachments" in granted,
        "download_original": {"download_attachments", "see_customer_addresses"} <= granted,
        "see_customer_addresses": "see_customer_addresses" in granted,
        "print": "print" in granted,
        "export": "export" in granted,
    }
