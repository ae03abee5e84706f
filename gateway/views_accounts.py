"""JSON shapes of accounts' resources — inboxes, operators, roles, tenant settings, the
login history and locks, sessions, API tokens, the operation log, notices and the board
(docs: gateway/openapi.yaml)."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import accounts_pb2

from .views import iso, operator

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
