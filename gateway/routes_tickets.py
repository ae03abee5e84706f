"""Ticket routes of issue 4 (TKT-2…15, ING-6): the list's filters and sort, changes
(status, priority, category, labels, flags, assignee), restore, transfer, bulk, merge and
split, internal comments, phone memos, the audit trail and per-inbox settings.

The gateway checks the shape of what it is sent — known fields, JSON types, status and
priority names, whole numbers in range, timestamps — and answers 400 naming the field;
the tickets service checks the rest (ids, lengths, limits, access) and its errors are
mapped to HTTP by gateway/errors.py. Documented in gateway/openapi.yaml."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, tickets_pb2

from . import app as gw
from . import views
from .errors import ApiError, from_grpc

QUERY_MAX = 200  # characters of a search keyword (q)
LIST_MAX = 1000  # entries of any JSON list we accept (labels, mention ids …)
BULK_MAX = 1000  # tickets in one bulk change (TKT-11)
INT32_MAX = 2**31 - 1
FENCE_MAX = 2**63 - 1

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
)
MEMO_FIELDS = (
    "body",
    "direction",
    "caller_name",
    "phone",
    "contact_id",
    "occurred_at",
    "duration_s",
)

# the service's names for request fields → this API's names for them
LIST_NAMES = {"inbox_ids": "inbox", "assignee_id": "assignee", "contact_id": "contact"}
MERGE_NAMES = {"target_ticket_id": "ticket_id", "source_ticket_id": "source_id"}

T = TypeVar("T")


def _bad(message: str, field: str | None) -> ApiError:
    return ApiError(400, "invalid_argument", message, field)


async def _call(call: Awaitable[T], names: dict[str, str] | None = None) -> T:
    """Await a gRPC call; a service error's field is renamed to this API's name for it."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        if not names:
            raise
        err = from_grpc(exc)
        err.field = names.get(err.field or "", err.field)
        raise err from None


async def _body(request: web.Request, allowed: tuple[str, ...], *, optional: bool = False) -> Any:
    """The JSON object of the request, with no field outside `allowed` (an empty body is
    `{}` when `optional`)."""
    if optional and not request.body_exists:
        return {}
    body = await gw._json_body(request)
    _known(body, allowed)
    return body


def _known(body: dict[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _bad(f"unknown field {unknown[0]!r}", prefix + unknown[0])


def _check_text(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"{field} is not valid Unicode text", field) from None
    return value


def _str(body: dict[str, Any], name: str, prefix: str = "") -> str:
    """A string field; "" when absent or null."""
    value = body.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string", prefix + name)
    return _check_text(value, prefix + name)


def _str_list(body: dict[str, Any], name: str, prefix: str = "") -> list[str]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{name} must be a list of strings", prefix + name)
    if len(value) > LIST_MAX:
        raise _bad(f"{name} has more than {LIST_MAX} entries", prefix + name)
    return [_check_text(v, prefix + name) for v in value]


def _int(body: dict[str, Any], name: str, low: int, high: int, prefix: str = "") -> int:
    """A whole-number field in [low, high]; 0 when absent or null."""
    value = body.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{name} must be a whole number", prefix + name)
    if not low <= value <= high:
        raise _bad(f"{name} must be between {low} and {high}", prefix + name)
    return value


def _time(text: str, field: str) -> Timestamp:
    """An ISO 8601 date or date-time; without an offset it is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _bad(f"{field} must be an ISO 8601 date-time", field) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ts = Timestamp()
    try:
        ts.FromDatetime(when.astimezone(UTC))
    except (ValueError, OverflowError):
        raise _bad(f"{field} is out of range", field) from None
    return ts


def _status(value: Any, field: str) -> common_pb2.TicketStatus:
    if not isinstance(value, str) or value not in views.STATUS_VALUES:
        raise _bad(f"{field} must be one of {', '.join(views.STATUS_VALUES)}", field)
    return views.STATUS_VALUES[value]


def _priority(value: Any, field: str) -> common_pb2.Priority:
    if not isinstance(value, str) or value not in views.PRIORITY_VALUES:
        raise _bad(f"{field} must be one of {', '.join(views.PRIORITY_VALUES)}", field)
    return views.PRIORITY_VALUES[value]


def _limit(request: web.Request) -> int:
    limit = gw._int_param(request, "limit", 50)
    if not 1 <= limit <= 200:
        raise _bad("limit must be between 1 and 200", "limit")
    return limit


def _page(request: web.Request) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(limit=_limit(request), cursor=request.query.get("cursor", ""))


def _ticket_id(request: web.Request) -> str:
    return request.match_info["ticket_id"]


def _updated(resp: tickets_pb2.UpdateTicketResponse) -> dict[str, Any]:
    return {"ticket": views.ticket(resp.ticket), "changes": views.changes(resp.changes)}


# -- reading ---------------------------------------------------------------------------


def list_request(request: web.Request) -> tickets_pb2.ListTicketsRequest:
    """GET /api/v1/tickets's query parameters as a ListTicketsRequest (400 naming the
    parameter for a value of the wrong form)."""
    q = request.query
    req = tickets_pb2.ListTicketsRequest(page=_page(request))
    for name in (s for s in q.get("status", "").split(",") if s.strip()):
        req.statuses.append(_status(name.strip(), "status"))
    keyword = q.get("q", "")
    if len(keyword) > QUERY_MAX or any(ord(c) < 32 for c in keyword):
        raise _bad(f"q must be at most {QUERY_MAX} characters on one line", "q")
    req.keyword = keyword
    req.inbox_ids.extend(i.strip() for i in q.get("inbox", "").split(",") if i.strip())
    for name, attr in (
        ("assignee", "assignee_id"),
        ("label", "label"),
        ("category", "category"),
        ("contact", "contact_id"),
    ):
        setattr(req, attr, q.get(name, ""))
    if q.get("priority"):
        req.priority = _priority(q["priority"], "priority")
    if q.get("view"):
        if q["view"] not in VIEWS:
            raise _bad(f"view must be one of {', '.join(VIEWS)}", "view")
        req.view = VIEWS[q["view"]]
    for name, attr in (("received_from", "start"), ("received_to", "end")):
        if q.get(name):
            getattr(req.received, attr).CopyFrom(_time(q[name], name))
    if q.get("sort"):
        if q["sort"] not in SORTS:
            raise _bad(f"sort must be one of {', '.join(SORTS)}", "sort")
        req.sort = SORTS[q["sort"]]
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _bad("order must be asc or desc", "order")
    req.ascending = order == "asc"
    return req


async def search(request: web.Request) -> tickets_pb2.ListTicketsResponse:
    """ListTickets with the request's filters (GET /api/v1/tickets renders the answer)."""
    caller = await gw.caller_of(request)
    req = list_request(request)
    return await _call(
        request.app[gw.DEPS].tickets.ListTickets(req, metadata=gw._md(caller, request), timeout=10),
        LIST_NAMES,
    )


async def list_audit(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.ListAudit(
        tickets_pb2.ListAuditRequest(ticket_id=_ticket_id(request), page=_page(request)),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(
        {"items": [views.audit_entry(e) for e in resp.entries], "next": resp.next_cursor or None}
    )


async def count_tickets(request: web.Request) -> web.Response:
    """Per inbox the caller sees: tickets per status and derived view (TKT-2)."""
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.CountTickets(
        tickets_pb2.CountTicketsRequest(), metadata=gw._md(caller, request), timeout=10
    )
    keys = ("open", "pending", "resolved", "no_action", "trash", "editing", "awaiting_approval")
    return gw.json_response(
        {
            "items": [
                {"inbox_id": c.inbox_id, **{k: getattr(c, k) for k in keys}} for c in resp.inboxes
            ]
        },
        customer_data=False,
    )


# -- changes ---------------------------------------------------------------------------


def change_request(body: dict[str, Any], prefix: str = "") -> tickets_pb2.UpdateTicketRequest:
    """The change fields of a JSON body (PATCH, or a bulk `change`) as an
    UpdateTicketRequest; at least one of CHANGE_FIELDS must be present."""
    req = tickets_pb2.UpdateTicketRequest()
    if not any(name in body for name in CHANGE_FIELDS):
        raise _bad(
            f"nothing to change: send at least one of {', '.join(CHANGE_FIELDS)}",
            prefix.rstrip(".") or None,
        )
    if body.get("status") is not None:
        req.status = _status(body["status"], prefix + "status")
    if body.get("priority") is not None:
        req.priority = _priority(body["priority"], prefix + "priority")
    if "category" in body:
        req.category = _str(body, "category", prefix)  # null or "" clears it
    for name in ("add_labels", "remove_labels", "add_flags", "remove_flags"):
        getattr(req, name).extend(_str_list(body, name, prefix))
    if "assignee_id" in body:
        req.assignee_id = _str(body, "assignee_id", prefix)  # null or "" unassigns
    req.comment = _str(body, "comment", prefix)
    return req


async def update_ticket(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, (*CHANGE_FIELDS, "comment", "reply_fence"))
    req = change_request(body)
    req.ticket_id = _ticket_id(request)
    req.reply_fence = _int(body, "reply_fence", 1, FENCE_MAX)
    resp = await request.app[gw.DEPS].tickets.UpdateTicket(
        req, metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response(_updated(resp))


async def restore_ticket(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("comment",), optional=True)
    resp = await request.app[gw.DEPS].tickets.RestoreTicket(
        tickets_pb2.RestoreTicketRequest(
            ticket_id=_ticket_id(request), comment=_str(body, "comment")
        ),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(_updated(resp))


async def transfer_ticket(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("inbox_id", "note"))
    inbox_id = _str(body, "inbox_id")
    if not inbox_id:
        raise _bad("inbox_id is required", "inbox_id")
    resp = await request.app[gw.DEPS].tickets.TransferTicket(
        tickets_pb2.TransferTicketRequest(
            ticket_id=_ticket_id(request), inbox_id=inbox_id, note=_str(body, "note")
        ),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(_updated(resp))


async def bulk_update(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("ticket_ids", "change"))
    ids = body.get("ticket_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise _bad("ticket_ids must be a list of ticket ids", "ticket_ids")
    if not ids:
        raise _bad("ticket_ids is empty", "ticket_ids")
    if len(ids) > BULK_MAX:
        raise _bad(f"at most {BULK_MAX} tickets at once (got {len(ids)})", "ticket_ids")
    change = body.get("change")
    if not isinstance(change, dict):
        raise _bad("change must be an object", "change")
    _known(change, (*CHANGE_FIELDS, "comment"), "change.")
    req = tickets_pb2.BulkUpdateRequest(
        ticket_ids=[_check_text(i, "ticket_ids") for i in ids],
        change=change_request(change, "change."),
    )
    resp = await _call(
        request.app[gw.DEPS].tickets.BulkUpdate(req, metadata=gw._md(caller, request), timeout=120),
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
    return gw.json_response(
        {
            "results": results,
            "ok": sum(r.ok for r in resp.results),
            "failed": sum(not r.ok for r in resp.results),
        }
    )


async def merge_tickets(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("source_id", "comment"))
    source_id = _str(body, "source_id")
    if not source_id:
        raise _bad("source_id is required", "source_id")
    resp = await _call(
        request.app[gw.DEPS].tickets.MergeTickets(
            tickets_pb2.MergeTicketsRequest(
                target_ticket_id=_ticket_id(request),
                source_ticket_id=source_id,
                comment=_str(body, "comment"),
            ),
            metadata=gw._md(caller, request),
            timeout=30,
        ),
        MERGE_NAMES,
    )
    return gw.json_response(_updated(resp))


async def split_ticket(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("message_id", "comment"))
    message_id = _str(body, "message_id")
    if not message_id:
        raise _bad("message_id is required", "message_id")
    resp = await request.app[gw.DEPS].tickets.SplitTicket(
        tickets_pb2.SplitTicketRequest(
            ticket_id=_ticket_id(request), message_id=message_id, comment=_str(body, "comment")
        ),
        metadata=gw._md(caller, request),
        timeout=30,
    )
    return gw.json_response(_updated(resp), status=201)


# -- comments and phone memos ----------------------------------------------------------


async def add_comment(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await _body(request, ("body", "mention_ids"))
    resp = await request.app[gw.DEPS].tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=_ticket_id(request),
            body=_str(body, "body"),
            mention_ids=_str_list(body, "mention_ids"),
        ),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(views.comment(resp.comment), status=201)


def _memo_request(body: dict[str, Any]) -> tickets_pb2.AddPhoneMemoRequest:
    req = tickets_pb2.AddPhoneMemoRequest(
        body=_str(body, "body"),
        direction=_str(body, "direction"),
        caller_name=_str(body, "caller_name"),
        phone=_str(body, "phone"),
        contact_id=_str(body, "contact_id"),
        duration_s=_int(body, "duration_s", 0, INT32_MAX),
    )
    if req.direction not in ("", "inbound", "outbound"):
        raise _bad("direction must be inbound or outbound", "direction")
    occurred_at = _str(body, "occurred_at")
    if occurred_at:
        req.occurred_at.CopyFrom(_time(occurred_at, "occurred_at"))
    return req


async def _add_memo(request: web.Request, req: tickets_pb2.AddPhoneMemoRequest) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.AddPhoneMemo(
        req, metadata=gw._md(caller, request), timeout=10
    )
    return gw.json_response(
        {"ticket": views.ticket(resp.ticket), "message": views.message(resp.message)}, status=201
    )


async def add_memo(request: web.Request) -> web.Response:
    """A phone memo on an existing ticket."""
    req = _memo_request(await _body(request, MEMO_FIELDS))
    req.ticket_id = _ticket_id(request)
    return await _add_memo(request, req)


async def add_memo_ticket(request: web.Request) -> web.Response:
    """A phone memo that opens a new ticket in `inbox_id`."""
    body = await _body(request, (*MEMO_FIELDS, "inbox_id", "subject"))
    req = _memo_request(body)
    req.inbox_id = _str(body, "inbox_id")
    if not req.inbox_id:
        raise _bad("inbox_id is required", "inbox_id")
    req.subject = _str(body, "subject")
    return await _add_memo(request, req)


# -- per-inbox settings ----------------------------------------------------------------


def _settings_json(s: tickets_pb2.InboxSettings) -> dict[str, Any]:
    return {
        "inbox_id": s.inbox_id,
        "thresholds": [{"after_minutes": t.after_minutes, "color": t.color} for t in s.thresholds],
        "new_ticket_after_days": s.new_ticket_after_days,
    }


async def get_inbox_settings(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.GetInboxSettings(
        tickets_pb2.GetInboxSettingsRequest(inbox_id=request.match_info["inbox_id"]),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(_settings_json(resp))


async def set_inbox_settings(request: web.Request) -> web.Response:
    """Fields left out keep their current value."""
    caller = await gw.caller_of(request)
    body = await _body(request, ("thresholds", "new_ticket_after_days"))
    if not body:
        raise _bad("send thresholds, new_ticket_after_days or both", None)
    thresholds = body.get("thresholds", [])
    if "thresholds" in body and not isinstance(thresholds, list):
        raise _bad("thresholds must be a list", "thresholds")
    if len(thresholds) > LIST_MAX:
        raise _bad(f"thresholds has more than {LIST_MAX} entries", "thresholds")
    items = []
    for t in thresholds:
        if not isinstance(t, dict):
            raise _bad("a threshold is an object {after_minutes, color}", "thresholds")
        _known(t, ("after_minutes", "color"), "thresholds.")
        if "after_minutes" not in t or "color" not in t:
            raise _bad("a threshold needs after_minutes and color", "thresholds")
        items.append(
            tickets_pb2.ElapsedThreshold(
                after_minutes=_int(t, "after_minutes", 1, INT32_MAX, "thresholds."),
                color=_str(t, "color", "thresholds."),
            )
        )
    deps = request.app[gw.DEPS]
    md = gw._md(caller, request)
    inbox_id = request.match_info["inbox_id"]
    req = tickets_pb2.InboxSettings(inbox_id=inbox_id)
    if "thresholds" not in body or "new_ticket_after_days" not in body:
        current = await deps.tickets.GetInboxSettings(
            tickets_pb2.GetInboxSettingsRequest(inbox_id=inbox_id), metadata=md, timeout=10
        )
        req.CopyFrom(current)
    if "thresholds" in body:
        del req.thresholds[:]
        req.thresholds.extend(items)
    if "new_ticket_after_days" in body:
        req.new_ticket_after_days = _int(body, "new_ticket_after_days", 0, INT32_MAX)
    resp = await deps.tickets.SetInboxSettings(req, metadata=md, timeout=10)
    return gw.json_response(_settings_json(resp))


def add_routes(app: web.Application) -> None:
    base = "/api/v1/tickets/{ticket_id}"
    # before any /tickets/{ticket_id} POST route, so that "bulk" is never taken for an id
    app.router.add_post("/api/v1/tickets/bulk", bulk_update)
    app.router.add_get("/api/v1/ticket-counts", count_tickets)
    app.router.add_patch(base, update_ticket)
    app.router.add_post(f"{base}/restore", restore_ticket)
    app.router.add_post(f"{base}/transfer", transfer_ticket)
    app.router.add_post(f"{base}/merge", merge_tickets)
    app.router.add_post(f"{base}/split", split_ticket)
    app.router.add_post(f"{base}/comments", add_comment)
    app.router.add_post(f"{base}/memos", add_memo)
    app.router.add_get(f"{base}/audit", list_audit)
    app.router.add_post("/api/v1/memos", add_memo_ticket)
    app.router.add_get("/api/v1/inboxes/{inbox_id}/settings", get_inbox_settings)
    app.router.add_put("/api/v1/inboxes/{inbox_id}/settings", set_inbox_settings)
