"""JSON shapes of composition's and outbound's resources — templates, signatures, drafts
and their revisions, sends, SMTP routes, DKIM keys, automatic replies (docs:
gateway/openapi.yaml)."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import events_pb2

from services.runtime.ticket_names import (
    STATUS_NAMES,
)

from .views import actor, iso, operator

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
