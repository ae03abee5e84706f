"""JSON shapes the web clients see (docs: gateway/openapi.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import accounts_pb2, common_pb2, events_pb2, tickets_pb2

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


# -- accounts (issue 5) ------------------------------------------------------------------


def inbox(i: accounts_pb2.Inbox, *, members: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": i.id,
        "name": i.name,
        "addresses": list(i.addresses),
        "plain_text_only": i.plain_text_only,
    }
    if members:
        out["member_ids"] = list(i.member_ids)
    return out


def operator_full(o: accounts_pb2.Operator) -> dict[str, Any]:
    """An operator as administrators see them."""
    return {
        "id": o.id,
        "login": o.login,
        "display_name": o.display_name,
        "roles": list(o.roles),
        "permissions": list(o.permissions),
        "inbox_ids": list(o.inbox_ids),
        "all_inboxes": o.all_inboxes,
        "addresses": list(o.addresses),
        "language": o.language,
        "time_zone": o.time_zone or None,
        "skills": list(o.skills),
        "capacity": o.capacity,
        "active": o.active,
        "must_change_password": o.must_change_password,
        "password_changed_at": iso(o.password_changed_at),
        "ip_allowlist": list(o.ip_allowlist),
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
    }


def operator_brief(o: accounts_pb2.Operator) -> dict[str, Any]:
    """An operator as colleagues see them (to assign or @mention)."""
    return {"id": o.id, "login": o.login, "display_name": o.display_name}


def role(r: accounts_pb2.Role) -> dict[str, Any]:
    return {
        "name": r.name,
        "description": r.description,
        "permissions": list(r.permissions),
        "builtin": r.builtin,
        "operator_count": r.operator_count,
    }


def tenant_settings(t: accounts_pb2.TenantSettings) -> dict[str, Any]:
    return {
        "name": t.name,
        "time_zone": t.time_zone,
        "password_min_length": t.password_min_length,
        "password_min_classes": t.password_min_classes,
        "password_max_age_days": t.password_max_age_days,
        "ip_allowlist": list(t.ip_allowlist),
    }


def login_record(r: accounts_pb2.LoginRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "operator_id": r.operator_id or None,
        "login": r.login,
        "success": r.success,
        "result": r.result,
        "client_address": r.client_address,
        "user_agent": r.user_agent,
        "at": iso(r.at),
    }


def operation(o: accounts_pb2.Operation) -> dict[str, Any]:
    return {
        "id": o.id,
        "at": iso(o.at),
        "operator": operator(o.operator) if o.operator.id else None,
        "action": o.action,
        "method": o.method,
        "path": o.path,
        "target": o.target or None,
        "status": o.status,
        "client_address": o.client_address,
        "request_id": o.request_id or None,
    }


def active_session(s: accounts_pb2.ActiveSession) -> dict[str, Any]:
    return {
        "id": s.id,
        "operator": operator(s.operator),
        "kind": s.kind,
        "client_address": s.client_address,
        "user_agent": s.user_agent,
        "created_at": iso(s.created_at),
        "last_seen_at": iso(s.last_seen_at),
        "last_action": operation(s.last_action) if s.HasField("last_action") else None,
    }


def login_lock(lk: accounts_pb2.LoginLock) -> dict[str, Any]:
    return {
        "kind": lk.kind,
        "key": lk.key,
        "failures": lk.failures,
        "locked_at": iso(lk.locked_at),
        "until": iso(lk.until),
    }


def api_token(t: accounts_pb2.ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "created_at": iso(t.created_at),
        "expires_at": iso(t.expires_at),
        "last_used_at": iso(t.last_used_at),
        "survives_password_change": t.survives_password_change,
    }


def notice(n: accounts_pb2.Notice) -> dict[str, Any]:
    return {
        "id": n.id,
        "title": n.title,
        "body": n.body,
        "starts_at": iso(n.starts_at),
        "ends_at": iso(n.ends_at),
        "author": operator(n.author),
        "created_at": iso(n.created_at),
        "updated_at": iso(n.updated_at),
    }


def post(p: accounts_pb2.Post, *, with_comments: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": p.id,
        "title": p.title,
        "body": p.body,
        "author": operator(p.author),
        "created_at": iso(p.created_at),
        "comment_count": p.comment_count,
    }
    if with_comments:
        out["comments"] = [post_comment(c) for c in p.comments]
    return out


def post_comment(c: accounts_pb2.PostComment) -> dict[str, Any]:
    return {
        "id": c.id,
        "post_id": c.post_id,
        "author": operator(c.author),
        "body": c.body,
        "created_at": iso(c.created_at),
    }


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


# -- composition (issue 6) ---------------------------------------------------------------

TEMPLATE_KINDS = {1: "template", 2: "phrase"}
DRAFT_KINDS = {1: "reply", 2: "reply_all", 3: "forward", 4: "new"}


def template(t: Any) -> dict[str, Any]:
    return {
        "id": t.id,
        "kind": TEMPLATE_KINDS.get(t.kind, "template"),
        "folder_id": t.folder_id or None,
        "name": t.name,
        "subject": t.subject,
        "body_text": t.body_text,
        "body_html": t.body_html,
        "keywords": list(t.keywords),
        "inbox_ids": list(t.inbox_ids),
        "version": t.version,
        "usage_count": t.usage_count,
        "updated_by": operator(t.updated_by) if t.updated_by.id else None,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
    }


def render_problem(p: Any) -> dict[str, Any]:
    return {"word": p.word, "reason": p.reason, "message": p.message, "field": p.field}


def signature(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "inbox_id": s.inbox_id or None,
        "name": s.name,
        "body_text": s.body_text,
        "body_html": s.body_html,
        "updated_at": iso(s.updated_at),
    }


def draft_attachment(a: Any, draft_id: str) -> dict[str, Any]:
    return {
        "id": a.id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
        "inline": a.inline,
        "content_id": a.content_id or None,
        "source": a.source,
        "download_url": f"/api/v1/drafts/{draft_id}/attachments/{a.id}",
    }


def draft_revision(r: Any, draft_id: str) -> dict[str, Any]:
    return {
        "revision": r.revision,
        "saved_at": iso(r.saved_at),
        "saved_by": operator(r.saved_by),
        "from_address": r.from_address,
        "from_name": r.from_name,
        "to": list(r.to),
        "cc": list(r.cc),
        "bcc": list(r.bcc),
        "subject": r.subject,
        "body_text": r.body_text,
        "body_html": r.body_html,
        "signature_text": r.signature_text,
        "signature_html": r.signature_html,
        "quote_text": r.quote_text,
        "include_quote": r.include_quote,
        "attachments": [draft_attachment(a, draft_id) for a in r.attachments],
    }


def draft(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "ticket_id": d.ticket_id or None,
        "inbox_id": d.inbox_id,
        "kind": DRAFT_KINDS.get(d.kind, "reply"),
        "answering_message_id": d.answering_message_id or None,
        "author": operator(d.author),
        "state": d.state,
        "in_reply_to": d.in_reply_to or None,
        "current": draft_revision(d.current, d.id),
        "revisions": [
            {"revision": r.revision, "saved_at": iso(r.saved_at), "saved_by": operator(r.saved_by)}
            for r in d.revisions
        ],
        "last_change": (
            {
                "by": operator(d.last_change.by),
                "at": iso(d.last_change.at),
                "action": d.last_change.action,
            }
            if d.HasField("last_change")
            else None
        ),
        "created_at": iso(d.created_at),
        "updated_at": iso(d.updated_at),
    }


def draft_diff(d: Any) -> dict[str, Any]:
    """composition's DiffDraftResponse: per field, runs of equal, inserted, deleted text."""
    return {
        "fields": [
            {"field": f.field, "ops": [{"op": o.op, "text": o.text} for o in f.ops]}
            for f in d.fields
        ]
    }


def template_event(env: events_pb2.EventEnvelope) -> dict[str, Any]:
    t = env.template_changed
    return {
        "type": env.type,
        "event_id": env.event_id,
        "occurred_at": iso(env.occurred_at),
        "by": actor(env.actor),
        "template_id": t.template_id,
        "action": t.action,
        "name": t.name,
        "version": t.version,
        "kind": t.kind,
        "folder_id": t.folder_id or None,
    }


# -- outbound (issue 7) ------------------------------------------------------------------


def smtp_reply(r: Any) -> dict[str, Any]:
    return {
        "code": r.code or None,
        "message": r.message,
        "at": iso(r.at),
        "attempt": r.attempt,
        "outcome": r.outcome or None,
    }


def send(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "kind": s.kind,
        "state": s.state,
        "draft_id": s.draft_id or None,
        "draft_revision": s.draft_revision or None,
        "ticket_id": s.ticket_id or None,
        "inbox_id": s.inbox_id,
        "operator": operator(s.operator) if s.HasField("operator") else None,
        "message_id": s.message_id,
        "subject": s.subject,
        "from": s.envelope_from,
        "recipients": list(s.recipients),
        "rejected": list(s.rejected),
        "send_at": iso(s.send_at),
        "next_attempt_at": iso(s.next_attempt_at) if s.state in ("scheduled", "retrying") else None,
        "sent_at": iso(s.sent_at),
        "attempts": s.attempts,
        "max_attempts": s.max_attempts,
        "last_reply": smtp_reply(s.last_reply) if s.HasField("last_reply") else None,
        "replies": [smtp_reply(r) for r in s.replies],
        "status_after": STATUS_NAMES.get(s.status_after) if s.status_after else None,
        "route": s.route or None,
        "dkim_signed": s.dkim_signed,
        "size_bytes": s.size_bytes,
        "bounce": s.bounce or None,
        "after_send": {"done": s.finished, "problems": s.after_send_problems or None},
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }


def smtp_route(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "scope": r.scope,
        "inbox_id": r.inbox_id or None,
        "domain": r.domain or None,
        "host": r.host,
        "port": r.port,
        "security": r.security,
        "username": r.username,
        "has_password": r.has_password,
        "verify_certificate": r.verify_certificate,
        "updated_at": iso(r.updated_at),
    }


def dkim_key(k: Any) -> dict[str, Any]:
    return {
        "domain": k.domain,
        "selector": k.selector,
        "dns_name": k.dns_name,
        "dns_txt": k.dns_txt,
        "created_at": iso(k.created_at),
    }


def auto_reply(a: Any) -> dict[str, Any]:
    return {
        "inbox_id": a.inbox_id,
        "enabled": a.enabled,
        "mode": a.mode,
        "hours": [{"weekday": h.weekday, "start": h.start, "end": h.end} for h in a.hours],
        "time_zone": a.time_zone,
        "template_id": a.template_id or None,
        "period_hours": a.period_hours,
        "form_template_id": a.form_template_id or None,
    }
