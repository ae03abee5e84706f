"""Outreach's contacts (issue 20, OUT-6): the tenant's custom fields of contacts, contact
lists, their members and CSV imports into them — the HTTP routes (gateway/openapi.yaml).
Tickets owns all of it and checks manage_outreach again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from switchboard.v1 import tickets_pb2

from . import views
from .errors import ApiError
from .request import deps, json_body, metadata, page
from .responses import json_response, no_content

IMPORT_MAX_BYTES = 20 * 1024 * 1024
IMPORT_CHUNK = 256 * 1024
CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/octet-stream")


def list_json(c: tickets_pb2.ContactList) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "description": c.description,
        "member_count": c.member_count,
        "created_at": views.iso(c.created_at),
        "updated_at": views.iso(c.updated_at),
    }


def member_json(m: tickets_pb2.ListMember) -> dict[str, Any]:
    return {
        "contact_id": m.contact_id,
        "name": m.name,
        "address": m.address,
        "time_zone": m.time_zone,
        "language": m.language,
        "labels": list(m.labels),
        "custom": dict(sorted(m.custom.items())),
        "added_at": views.iso(m.added_at),
    }


def import_json(j: tickets_pb2.ContactImport) -> dict[str, Any]:
    return {
        "id": j.id,
        "list_id": j.list_id,
        "state": j.state,
        "total_lines": j.total_lines,
        "processed": j.processed,
        "imported": j.imported,
        "failed": j.failed,
        "errors": [{"line": e.line, "message": e.message} for e in j.errors],
        "message": j.message,
        "created_at": views.iso(j.created_at),
        "finished_at": views.iso(j.finished_at),
    }


def _fields_json(resp: tickets_pb2.ContactFields) -> dict[str, Any]:
    return {"fields": [{"key": f.key, "label": f.label, "type": f.type} for f in resp.fields]}


async def get_fields(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetContactFields(
        tickets_pb2.GetContactFieldsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(_fields_json(resp), customer_data=False)


async def put_fields(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.SetContactFields(
        tickets_pb2.ContactFields(
            fields=[
                tickets_pb2.ContactField(key=f["key"], label=f.get("label", ""), type=f["type"])
                for f in body["fields"]
            ]
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(_fields_json(resp), customer_data=False)


async def list_lists(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.ListContactLists(
        tickets_pb2.ListContactListsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"lists": [list_json(c) for c in resp.lists]}, customer_data=False)


async def create_list(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.CreateContactList(
        tickets_pb2.CreateContactListRequest(
            name=body["name"], description=body.get("description", "")
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(list_json(resp), status=201, customer_data=False)


async def get_list(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetContactList(
        tickets_pb2.ContactListRef(list_id=request.match_info["list_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(list_json(resp), customer_data=False)


async def update_list(request: web.Request) -> web.Response:
    body = await json_body(request)
    req = tickets_pb2.UpdateContactListRequest(list_id=request.match_info["list_id"])
    if "name" in body:
        req.name = body["name"]
    if "description" in body:
        req.description = body["description"]
    resp = await deps(request).tickets.UpdateContactList(
        req, metadata=metadata(request), timeout=10
    )
    return json_response(list_json(resp), customer_data=False)


async def delete_list(request: web.Request) -> web.Response:
    await deps(request).tickets.DeleteContactList(
        tickets_pb2.ContactListRef(list_id=request.match_info["list_id"]),
        metadata=metadata(request),
        timeout=30,
    )
    return no_content()


async def list_members(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.ListListMembers(
        tickets_pb2.ListListMembersRequest(
            list_id=request.match_info["list_id"],
            query=request.query.get("query", ""),
            page=page(request),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {"members": [member_json(m) for m in resp.members], "next_cursor": resp.next_cursor}
    )


def member_input(c: dict[str, Any]) -> tickets_pb2.MemberInput:
    """One entry its schema accepted (ListMemberInput)."""
    out = tickets_pb2.MemberInput(address=c["address"])
    for name in ("name", "time_zone", "language"):
        if name in c:
            setattr(out, name, c[name])
    if "labels" in c:
        out.set_labels = True
        out.labels.extend(c["labels"])
    out.custom.update({k: str(v) for k, v in c.get("custom", {}).items()})
    return out


async def add_members(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).tickets.AddListMembers(
        tickets_pb2.AddListMembersRequest(
            list_id=request.match_info["list_id"],
            contacts=[member_input(c) for c in body["contacts"]],
        ),
        metadata=metadata(request),
        timeout=60,
    )
    return json_response(
        {
            "added": resp.added,
            "updated": resp.updated,
            "errors": [
                {"index": e.index, "field": e.field, "message": e.message} for e in resp.errors
            ],
        },
        customer_data=False,
    )


async def remove_member(request: web.Request) -> web.Response:
    await deps(request).tickets.RemoveListMember(
        tickets_pb2.RemoveListMemberRequest(
            list_id=request.match_info["list_id"], contact_id=request.match_info["contact_id"]
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


def _too_large() -> ApiError:
    return ApiError(
        413, "too_large", f"a CSV file is at most {IMPORT_MAX_BYTES // (1024 * 1024)} MiB"
    )


async def start_import(request: web.Request) -> web.Response:
    """The CSV file is the body, streamed to tickets; 202 with the job at once."""
    if request.content_type not in CSV_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the file as text/csv")
    if request.content_length is not None and request.content_length > IMPORT_MAX_BYTES:
        raise _too_large()
    size = 0

    async def chunks() -> AsyncIterator[tickets_pb2.ContactImportChunk]:
        nonlocal size
        yield tickets_pb2.ContactImportChunk(list_id=request.match_info["list_id"])
        async for data in request.content.iter_chunked(IMPORT_CHUNK):
            size += len(data)
            if size > IMPORT_MAX_BYTES:
                raise _too_large()
            yield tickets_pb2.ContactImportChunk(data=data)

    resp = await deps(request).tickets.StartContactImport(
        chunks(), metadata=metadata(request), timeout=120
    )
    return json_response(import_json(resp), status=202, customer_data=False)


async def get_import(request: web.Request) -> web.Response:
    resp = await deps(request).tickets.GetContactImport(
        tickets_pb2.GetContactImportRequest(import_id=request.match_info["import_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(import_json(resp), customer_data=False)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/contact-fields", get_fields)
    app.router.add_put("/api/v1/contact-fields", put_fields)
    app.router.add_get("/api/v1/contact-lists", list_lists)
    app.router.add_post("/api/v1/contact-lists", create_list)
    app.router.add_get("/api/v1/contact-lists/{list_id}", get_list)
    app.router.add_patch("/api/v1/contact-lists/{list_id}", update_list)
    app.router.add_delete("/api/v1/contact-lists/{list_id}", delete_list)
    app.router.add_get("/api/v1/contact-lists/{list_id}/members", list_members)
    app.router.add_post("/api/v1/contact-lists/{list_id}/members", add_members)
    app.router.add_delete("/api/v1/contact-lists/{list_id}/members/{contact_id}", remove_member)
    app.router.add_post("/api/v1/contact-lists/{list_id}/imports", start_import)
    app.router.add_get("/api/v1/contact-imports/{import_id}", get_import)
