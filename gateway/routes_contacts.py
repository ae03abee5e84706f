"""Contacts (TKT-9) and a contact's timeline (TKT-8): the HTTP routes (gateway/openapi.yaml)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from switchboard.v1 import tickets_pb2

from . import views
from .errors import renamed
from .request import bad, deps, json_body, metadata, page
from .responses import json_response, page_response

QUERY_MAX = 200
PATCH_TEXT = ("name", "company", "memo", "time_zone", "language")
PATCH_LISTS = ("addresses", "phones")
MERGE_FIELDS = {"source_contact_id": "source_id", "target_contact_id": "contact_id"}


async def list_contacts(request: web.Request) -> web.Response:
    query = request.query.get("q", "")
    if len(query) > QUERY_MAX or "\x00" in query:
        raise bad(f"q must be at most {QUERY_MAX} characters of text", "q")
    resp = await deps(request).tickets.ListContacts(
        tickets_pb2.ListContactsRequest(query=query, page=page(request)),
        metadata=metadata(request),
        timeout=10,
    )
    return page_response([views.contact(c) for c in resp.contacts], resp.next_cursor)


async def get_contact(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetContact(
        tickets_pb2.GetContactRequest(contact_id=request.match_info["contact_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views.contact(resp))


def _update_request(contact_id: str, body: dict[str, Any]) -> tickets_pb2.UpdateContactRequest:
    """A body its schema accepted (ContactUpdate) as an UpdateContactRequest: a field
    present is set (lists and `custom` replace the whole value); an absent field stays."""
    req = tickets_pb2.UpdateContactRequest(contact_id=contact_id)
    for name in PATCH_TEXT:
        if name in body:
            setattr(req, name, body[name])
    for name in PATCH_LISTS:
        if name in body:
            setattr(req, f"set_{name}", True)
            getattr(req, name).extend(body[name])
    if "labels" in body:
        req.set_labels = True
        req.labels.extend(body["labels"])
    if "custom" in body:
        req.set_custom = True
        req.custom.update(body["custom"])
    if "customer_value" in body:  # null: back to none
        if body["customer_value"] is None:
            req.clear_customer_value = True
        else:
            req.customer_value = body["customer_value"]
    if "vip" in body:
        req.vip = body["vip"]
    return req


async def update_contact(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.UpdateContact(
        _update_request(request.match_info["contact_id"], body),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views.contact(resp))


async def merge_contacts(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not body["source_id"]:
        raise bad("source_id is required", "source_id")
    resp = await renamed(
        deps(request).tickets.MergeContacts(
            tickets_pb2.MergeContactsRequest(
                target_contact_id=request.match_info["contact_id"],
                source_contact_id=body["source_id"],
            ),
            metadata=metadata(request),
            timeout=10,
        ),
        MERGE_FIELDS,  # the service's field names, as this API calls them
    )
    return json_response(views.contact(resp))


async def contact_timeline(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.ContactTimeline(
        tickets_pb2.ContactTimelineRequest(
            contact_id=request.match_info["contact_id"], page=page(request)
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(
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
