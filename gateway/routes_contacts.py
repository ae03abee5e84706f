"""Contacts (TKT-9) and a contact's timeline (TKT-8): the HTTP routes (gateway/openapi.yaml)."""

from __future__ import annotations

from typing import Any

import grpc
from aiohttp import web
from switchboard.v1 import common_pb2, tickets_pb2

from . import app as gw
from . import views
from .errors import ApiError, from_grpc

QUERY_MAX = 200
PATCH_TEXT = ("name", "company", "memo")
PATCH_LISTS = ("addresses", "phones")
PATCH_FIELDS = (*PATCH_TEXT, *PATCH_LISTS, "custom")
MERGE_FIELDS = {"source_contact_id": "source_id", "target_contact_id": "contact_id"}


def _limit(request: web.Request) -> int:
    limit = gw._int_param(request, "limit", 50)
    if not 1 <= limit <= 200:
        raise ApiError(400, "invalid_argument", "limit must be between 1 and 200", "limit")
    return limit


def _page(request: web.Request) -> common_pb2.PageRequest:
    return common_pb2.PageRequest(limit=_limit(request), cursor=request.query.get("cursor", ""))


async def list_contacts(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    query = request.query.get("q", "")
    if len(query) > QUERY_MAX or "\x00" in query:
        raise ApiError(
            400, "invalid_argument", f"q must be at most {QUERY_MAX} characters of text", "q"
        )
    page = _page(request)
    resp = await request.app[gw.DEPS].tickets.ListContacts(
        tickets_pb2.ListContactsRequest(query=query, page=page),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(
        {"items": [views.contact(c) for c in resp.contacts], "next": resp.next_cursor or None}
    )


async def get_contact(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    resp = await request.app[gw.DEPS].tickets.GetContact(
        tickets_pb2.GetContactRequest(contact_id=request.match_info["contact_id"]),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(views.contact(resp))


def _update_request(contact_id: str, body: dict[str, Any]) -> tickets_pb2.UpdateContactRequest:
    """The JSON body as an UpdateContactRequest: a field present is set (lists and `custom`
    replace the whole value); an absent field stays; anything else is refused."""
    unknown = sorted(set(body) - set(PATCH_FIELDS))
    if unknown:
        raise ApiError(400, "invalid_argument", f"unknown field {unknown[0]!r}", unknown[0])
    req = tickets_pb2.UpdateContactRequest(contact_id=contact_id)
    for name in PATCH_TEXT:
        if name in body:
            if not isinstance(body[name], str):
                raise ApiError(400, "invalid_argument", f"{name} must be a string", name)
            setattr(req, name, body[name])
    for name in PATCH_LISTS:
        if name in body:
            value = body[name]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ApiError(400, "invalid_argument", f"{name} must be a list of strings", name)
            setattr(req, f"set_{name}", True)
            getattr(req, name).extend(value)
    if "custom" in body:
        custom = body["custom"]
        if not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
            raise ApiError(400, "invalid_argument", "custom must be an object of strings", "custom")
        req.set_custom = True
        req.custom.update(custom)
    return req


async def update_contact(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    body = await gw._json_body(request)
    resp = await request.app[gw.DEPS].tickets.UpdateContact(
        _update_request(request.match_info["contact_id"], body),
        metadata=gw._md(caller, request),
        timeout=10,
    )
    return gw.json_response(views.contact(resp))


async def merge_contacts(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    values = gw._strings(await gw._json_body(request), ("source_id",))
    if not values["source_id"]:
        raise ApiError(400, "invalid_argument", "source_id is required", "source_id")
    try:
        resp = await request.app[gw.DEPS].tickets.MergeContacts(
            tickets_pb2.MergeContactsRequest(
                target_contact_id=request.match_info["contact_id"],
                source_contact_id=values["source_id"],
            ),
            metadata=gw._md(caller, request),
            timeout=10,
        )
    except grpc.aio.AioRpcError as exc:
        # the service's field names, as this API calls them
        err = from_grpc(exc)
        err.field = MERGE_FIELDS.get(err.field or "", err.field)
        raise err from None
    return gw.json_response(views.contact(resp))


async def contact_timeline(request: web.Request) -> web.Response:
    caller = await gw.caller_of(request)
    page = _page(request)
    resp = await request.app[gw.DEPS].tickets.ContactTimeline(
        tickets_pb2.ContactTimelineRequest(contact_id=request.match_info["contact_id"], page=page),
        metadata=gw._md(caller, request),
        timeout=30,
    )
    return gw.json_response(
        {
            "contact": views.contact(resp.contact),
            "items": [views.timeline_entry(e) for e in resp.entries],
            "next": resp.next_cursor or None,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/contacts", list_contacts)
    app.router.add_get("/api/v1/contacts/{contact_id}", get_contact)
    app.router.add_patch("/api/v1/contacts/{contact_id}", update_contact)
    app.router.add_post("/api/v1/contacts/{contact_id}/merge", merge_contacts)
    app.router.add_get("/api/v1/contacts/{contact_id}/timeline", contact_timeline)
