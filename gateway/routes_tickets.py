"""Ticket routes of issue 4 (TKT-2…15, ING-6): the list with its filters and sort, a
ticket with its timeline, changes (status, priority, category, labels, flags, assignee),
restore, transfer, bulk, merge and split, internal comments, phone memos, the audit trail
and per-inbox settings.

Bodies reach the handlers checked against their schema in gateway/openapi.yaml (known
fields, JSON types, names, ranges: bodies.py); the handlers parse timestamps and the
query, and the tickets service checks the rest (ids, lengths, limits, access); its errors
are mapped to HTTP by gateway/errors.py."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import tickets_pb2

from services.runtime import ticket_names

from . import views
from .errors import renamed
from .request import (
    bad,
    caller,
    deps,
    json_body,
    metadata,
    optional_body,
    page,
    query_choice,
    query_list,
    timestamp,
)
from .responses import json_response, page_response

QUERY_MAX = 200  # characters of a search keyword (q)

SORTS = {
    "received_at": tickets_pb2.SORT_FIELD_RECEIVED_AT,
    "updated_at": tickets_pb2.SORT_FIELD_UPDATED_AT,
    "subject": tickets_pb2.SORT_FIELD_SUBJECT,
    "status": tickets_pb2.SORT_FIELD_STATUS,
    "priority": tickets_pb2.SORT_FIELD_PRIORITY,
    "assignee": tickets_pb2.SORT_FIELD_ASSIGNEE,
    "customer": tickets_pb2.SORT_FIELD_CUSTOMER,
    "inbox": tickets_pb2.SORT_FIELD_INBOX,
    "number": tickets_pb2.SORT_FIELD_NUMBER,
    "last_message_at": tickets_pb2.SORT_FIELD_LAST_MESSAGE_AT,
    "sla_due_at": tickets_pb2.SORT_FIELD_SLA_DUE_AT,
    "priority_score": tickets_pb2.SORT_FIELD_PRIORITY_SCORE,
}
VIEWS = {
    "editing": tickets_pb2.TICKET_VIEW_EDITING,
    "awaiting_approval": tickets_pb2.TICKET_VIEW_AWAITING_APPROVAL,
}
CHANGE_FIELDS = (
    "status",
    "priority",
    "category",
    "add_labels",
    "remove_labels",
    "add_flags",
    "remove_flags",
    "assignee_id",
    "pending_until",
)

# the service's names for request fields → this API's names for them
LIST_NAMES = {"inbox_ids": "inbox", "assignee_id": "assignee", "contact_id": "contact"}
MERGE_NAMES = {"target_ticket_id": "ticket_id", "source_ticket_id": "source_id"}


def _ticket_id(request: web.Request) -> str:
    return request.match_info["ticket_id"]


def _updated(resp: tickets_pb2.UpdateTicketResponse) -> dict[str, Any]:
    return {"ticket": views.ticket(resp.ticket), "changes": views.changes(resp.changes)}


# -- reading ---------------------------------------------------------------------------


def list_request(request: web.Request) -> tickets_pb2.ListTicketsRequest:
    """GET /api/v1/tickets's query parameters as a ListTicketsRequest (400 naming the
    parameter for a value of the wrong form)."""
    q = request.query
    req = tickets_pb2.ListTicketsRequest(page=page(request))
    for name in query_list(request, "status"):
        if name not in ticket_names.STATUS_VALUES:
            raise bad(f"status must be one of {', '.join(ticket_names.STATUS_VALUES)}", "status")
        req.statuses.append(ticket_names.STATUS_VALUES[name])
    keyword = q.get("q", "")
    if len(keyword) > QUERY_MAX or any(ord(c) < 32 for c in keyword):
        raise bad(f"q must be at most {QUERY_MAX} characters on one line", "q")
    req.keyword = keyword
    req.inbox_ids.extend(query_list(request, "inbox"))
    for name, attr in (
        ("assignee", "assignee_id"),
        ("label", "label"),
        ("category", "category"),
        ("contact", "contact_id"),
    ):
        setattr(req, attr, q.get(name, ""))
    if priority := query_choice(request, "priority", tuple(ticket_names.PRIORITY_VALUES)):
        req.priority = ticket_names.PRIORITY_VALUES[priority]
    if view := query_choice(request, "view", tuple(VIEWS)):
        req.view = VIEWS[view]
    for name, attr in (("received_from", "start"), ("received_to", "end")):
        if q.get(name):
            getattr(req.received, attr).CopyFrom(timestamp(q[name], name))
    if sort := query_choice(request, "sort", tuple(SORTS)):
        req.sort = SORTS[sort]
    req.ascending = query_choice(request, "order", ("asc", "desc")) == "asc"
    return req


async def list_tickets(request: web.Request) -> web.Response:
    """Search and list (TKT-10): filters, keyword, sort and paging; each row carries its
    elapsed time (TKT-14)."""
    resp = await renamed(
        deps(request).tickets.ListTickets(
            list_request(request), metadata=metadata(request), timeout=10
        ),
        LIST_NAMES,
    )
    return page_response([views.ticket_row(r) for r in resp.rows], resp.next_cursor)


async def get_ticket(request: web.Request) -> web.Response:
    """The ticket with its messages (mail and phone memos), internal comments, both merged
    in time order as `timeline`, and its elapsed time."""
    resp = await deps(request).tickets.GetTicket(
        tickets_pb2.GetTicketRequest(ticket_id=_ticket_id(request)),
        metadata=metadata(request),
        timeout=10,
    )
    body = views.ticket(resp.ticket)
    body.update(views.elapsed(resp.elapsed_seconds, resp.elapsed_level, resp.elapsed_color))
    body["messages"] = [views.message(m) for m in resp.messages]
    body["comments"] = [views.comment(c) for c in resp.comments]
    body["timeline"] = [views.timeline_entry(e) for e in resp.timeline]
    body["actions"] = views.ticket_actions(caller(request).permissions, resp.ticket)
    return json_response(body)


async def list_audit(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.ListAudit(
        tickets_pb2.ListAuditRequest(ticket_id=_ticket_id(request), page=page(request)),
        metadata=metadata(request),
        timeout=10,
    )
    return page_response([views.audit_entry(e) for e in resp.entries], resp.next_cursor)


async def count_tickets(request: web.Request) -> web.Response:
    """Per inbox the caller sees: tickets per status and derived view (TKT-2)."""
    resp = await deps(request).tickets.CountTickets(
        tickets_pb2.CountTicketsRequest(), metadata=metadata(request), timeout=10
    )
    keys = ("open", "pending", "resolved", "no_action", "trash", "editing", "awaiting_approval")
    return json_response(
        {
            "items": [
                {"inbox_id": c.inbox_id, **{k: getattr(c, k) for k in keys}} for c in resp.inboxes
            ]
        },
        customer_data=False,
    )


# -- changes ---------------------------------------------------------------------------


def change_request(
    body: dict[str, Any], where: str | None = None
) -> tickets_pb2.UpdateTicketRequest:
    """The change fields of a body its schema accepted (TicketChange: PATCH, or a bulk
    `change` at `where`) as an UpdateTicketRequest; at least one of CHANGE_FIELDS must be
    present."""
    if not any(name in body for name in CHANGE_FIELDS):
        raise bad(f"nothing to change: send at least one of {', '.join(CHANGE_FIELDS)}", where)
    req = tickets_pb2.UpdateTicketRequest(comment=body.get("comment", ""))
    if body.get("status") is not None:  # null leaves it as it is
        req.status = ticket_names.STATUS_VALUES[body["status"]]
    if body.get("priority") is not None:
        req.priority = ticket_names.PRIORITY_VALUES[body["priority"]]
    if "category" in body:
        req.category = body["category"] or ""  # null or "" clears it
    for name in ("add_labels", "remove_labels", "add_flags", "remove_flags"):
        getattr(req, name).extend(body.get(name, []))
    if "assignee_id" in body:
        req.assignee_id = body["assignee_id"] or ""  # null or "" unassigns
    if "pending_until" in body:
        req.pending_until = body["pending_until"] or ""  # null or "" clears it
    req.without_survey = body.get("without_survey", False)  # "resolve without survey"
    return req


async def update_ticket(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = change_request(body)
    req.ticket_id = _ticket_id(request)
    req.reply_fence = body.get("reply_fence", 0)
    resp = await deps(request).tickets.UpdateTicket(req, metadata=metadata(request), timeout=10)
    return json_response(_updated(resp))


async def restore_ticket(request: web.Request) -> web.Response:
    body = await optional_body(request) or {}
    resp = await deps(request).tickets.RestoreTicket(
        tickets_pb2.RestoreTicketRequest(
            ticket_id=_ticket_id(request), comment=body.get("comment", "")
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(_updated(resp))


async def transfer_ticket(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not body["inbox_id"]:
        raise bad("inbox_id is required", "inbox_id")
    resp = await deps(request).tickets.TransferTicket(
        tickets_pb2.TransferTicketRequest(
            ticket_id=_ticket_id(request), inbox_id=body["inbox_id"], note=body.get("note", "")
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(_updated(resp))


async def bulk_update(request: web.Request) -> web.Response:
    body = await json_body(request)
    change = body["change"]
    if "reply_fence" in change:  # a lock is per ticket: PATCH only
        raise bad("unknown field 'reply_fence'", "change.reply_fence")
    req = tickets_pb2.BulkUpdateRequest(
        ticket_ids=body["ticket_ids"], change=change_request(change, "change")
    )
    resp = await renamed(
        deps(request).tickets.BulkUpdate(req, metadata=metadata(request), timeout=120),
        {n: f"change.{n}" for n in (*CHANGE_FIELDS, "comment")},
    )
    results = [
        {
            "ticket_id": r.ticket_id,
            "ok": r.ok,
            "changed": r.changed,
            "error": None if r.ok else {"code": r.error_code, "message": r.error},
        }
        for r in resp.results
    ]
    return json_response(
        {
            "results": results,
            "ok": sum(r.ok for r in resp.results),
            "failed": sum(not r.ok for r in resp.results),
        }
    )


async def merge_tickets(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not body["source_id"]:
        raise bad("source_id is required", "source_id")
    resp = await renamed(
        deps(request).tickets.MergeTickets(
            tickets_pb2.MergeTicketsRequest(
                target_ticket_id=_ticket_id(request),
                source_ticket_id=body["source_id"],
                comment=body.get("comment", ""),
            ),
            metadata=metadata(request),
            timeout=30,
        ),
        MERGE_NAMES,
    )
    return json_response(_updated(resp))


async def split_ticket(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not body["message_id"]:
        raise bad("message_id is required", "message_id")
    resp = await deps(request).tickets.SplitTicket(
        tickets_pb2.SplitTicketRequest(
            ticket_id=_ticket_id(request),
            message_id=body["message_id"],
            comment=body.get("comment", ""),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(_updated(resp), status=201)


# -- comments and phone memos ----------------------------------------------------------


async def add_comment(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=_ticket_id(request),
            body=body["body"],
            mention_ids=body.get("mention_ids", []),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views.comment(resp.comment), status=201)


def _memo_request(body: dict[str, Any]) -> tickets_pb2.AddPhoneMemoRequest:
    req = tickets_pb2.AddPhoneMemoRequest(
        **{k: body.get(k, "") for k in ("body", "direction", "caller_name", "phone", "contact_id")},
        duration_s=body.get("duration_s", 0),
    )
    if body.get("occurred_at"):
        req.occurred_at.CopyFrom(timestamp(body["occurred_at"], "occurred_at"))
    return req


async def _add_memo(request: web.Request, req: tickets_pb2.AddPhoneMemoRequest) -> web.Response:
    resp = await deps(request).tickets.AddPhoneMemo(req, metadata=metadata(request), timeout=10)
    return json_response(
        {"ticket": views.ticket(resp.ticket), "message": views.message(resp.message)}, status=201
    )


async def add_memo(request: web.Request) -> web.Response:
    """A phone memo on an existing ticket."""
    req = _memo_request(await json_body(request))
    req.ticket_id = _ticket_id(request)
    return await _add_memo(request, req)


async def add_memo_ticket(request: web.Request) -> web.Response:
    """A phone memo that opens a new ticket in `inbox_id`."""
    body = await json_body(request)
    if not body["inbox_id"]:
        raise bad("inbox_id is required", "inbox_id")
    req = _memo_request(body)
    req.inbox_id = body["inbox_id"]
    req.subject = body.get("subject", "")
    return await _add_memo(request, req)


# -- per-inbox settings ----------------------------------------------------------------


def _settings_json(s: tickets_pb2.InboxSettings) -> dict[str, Any]:
    return {
        "inbox_id": s.inbox_id,
        "thresholds": [{"after_minutes": t.after_minutes, "color": t.color} for t in s.thresholds],
        "new_ticket_after_days": s.new_ticket_after_days,
    }


async def get_inbox_settings(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetInboxSettings(
        tickets_pb2.GetInboxSettingsRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(_settings_json(resp))


async def set_inbox_settings(request: web.Request) -> web.Response:
    """Fields left out keep their current value."""
    body = await json_body(request)
    stub, md = deps(request).tickets, metadata(request)
    inbox_id = request.match_info["inbox_id"]
    req = tickets_pb2.InboxSettings(inbox_id=inbox_id)
    if "thresholds" not in body or "new_ticket_after_days" not in body:
        current = await stub.GetInboxSettings(
            tickets_pb2.GetInboxSettingsRequest(inbox_id=inbox_id), metadata=md, timeout=10
        )
        req.CopyFrom(current)
    if "thresholds" in body:
        del req.thresholds[:]
        req.thresholds.extend(tickets_pb2.ElapsedThreshold(**t) for t in body["thresholds"])
    if "new_ticket_after_days" in body:
        req.new_ticket_after_days = body["new_ticket_after_days"]
    resp = await stub.SetInboxSettings(req, metadata=md, timeout=10)
    return json_response(_settings_json(resp))


def add_routes(app: web.Application) -> None:
    base = "/api/v1/tickets/{ticket_id}"
    r = app.router
    r.add_get("/api/v1/tickets", list_tickets)
    # before any /tickets/{ticket_id} POST route, so that "bulk" is never taken for an id
    r.add_post("/api/v1/tickets/bulk", bulk_update)
    r.add_get("/api/v1/ticket-counts", count_tickets)
    r.add_get(base, get_ticket)
    r.add_patch(base, update_ticket)
    r.add_post(f"{base}/restore", restore_ticket)
    r.add_post(f"{base}/transfer", transfer_ticket)
    r.add_post(f"{base}/merge", merge_tickets)
    r.add_post(f"{base}/split", split_ticket)
    r.add_post(f"{base}/comments", add_comment)
    r.add_post(f"{base}/memos", add_memo)
    r.add_get(f"{base}/audit", list_audit)
    r.add_post("/api/v1/memos", add_memo_ticket)
    r.add_get("/api/v1/inboxes/{inbox_id}/settings", get_inbox_settings)
    r.add_put("/api/v1/inboxes/{inbox_id}/settings", set_inbox_settings)
