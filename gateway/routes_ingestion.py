"""Ingestion routes: IMAP mailboxes, imports, web inquiry forms (their public submission
included), blocked senders, and a mail as parsed, as it arrived, and its attachments.
The ingestion service does the work and checks permissions itself; documented in
gateway/openapi.yaml."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from switchboard.v1 import ingestion_pb2

from . import views
from .access import CLIENT
from .errors import ApiError
from .request import bad, deps, json_body, metadata, optional_body, over_rate, path_int
from .responses import connection_tested, download, json_response, no_content

MAILBOX_FIELDS = (
    "inbox_id",
    "host",
    "port",
    "security",
    "username",
    "auth",
    "folder",
    "after_fetch",
    "move_to",
    "poll_interval_s",
    "enabled",
)
IMPORT_CHUNK = 1024 * 1024
IMPORT_KINDS = ("eml", "mbox", "zip")
FORM_MAX_BYTES = 64 * 1024
FORM_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


# -- IMAP mailboxes (admin) ------------------------------------------------------------


def mailbox_json(mb: ingestion_pb2.Mailbox) -> dict[str, Any]:
    st = mb.settings
    return {
        "id": mb.id,
        "inbox": {"id": st.inbox_id, "name": mb.inbox_name},
        **{k: getattr(st, k) for k in MAILBOX_FIELDS if k != "inbox_id"},
        "state": {
            "state": mb.state.state or None,
            "last_error": mb.state.last_error or None,
            "last_ok_at": views.iso(mb.state.last_ok_at),
            "fetched": mb.state.fetched,
            "last_uid": mb.state.last_uid,
        },
    }


def _mailbox_request(body: dict[str, Any]) -> ingestion_pb2.CreateMailboxRequest:
    """The settings of a body its schema accepted (MailboxCreate or MailboxWrite); an
    absent secret (an edit) means "keep the stored one"."""
    settings = ingestion_pb2.MailboxSettings(enabled=True)
    for name in MAILBOX_FIELDS:
        if name in body:
            setattr(settings, name, body[name])
    return ingestion_pb2.CreateMailboxRequest(settings=settings, secret=body.get("secret", ""))


async def create_mailbox(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.CreateMailbox(
        _mailbox_request(await json_body(request)), metadata=metadata(request), timeout=10
    )
    return json_response(mailbox_json(resp), status=201)


async def test_mailbox_settings(request: web.Request) -> web.Response:
    """Connect and log in with mailbox settings not saved yet (the body of a new one)."""
    settings = _mailbox_request(await json_body(request))
    resp = await deps(request).ingestion.TestMailbox(
        ingestion_pb2.TestMailboxRequest(settings=settings),
        metadata=metadata(request),
        timeout=30,
    )
    return connection_tested(resp)


async def test_mailbox(request: web.Request) -> web.Response:
    """A stored mailbox as it is (no body), or edited settings with its stored secret."""
    test = ingestion_pb2.TestMailboxRequest(mailbox_id=request.match_info["mailbox_id"])
    body = await optional_body(request)
    if body is not None:
        test.settings.CopyFrom(_mailbox_request(body))
    resp = await deps(request).ingestion.TestMailbox(test, metadata=metadata(request), timeout=30)
    return connection_tested(resp)


async def update_mailbox(request: web.Request) -> web.Response:
    edit = _mailbox_request(await json_body(request))
    resp = await deps(request).ingestion.UpdateMailbox(
        ingestion_pb2.UpdateMailboxRequest(
            mailbox_id=request.match_info["mailbox_id"], settings=edit.settings, secret=edit.secret
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(mailbox_json(resp))


async def list_mailboxes(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.ListMailboxes(
        ingestion_pb2.ListMailboxesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"items": [mailbox_json(m) for m in resp.mailboxes]})


async def delete_mailbox(request: web.Request) -> web.Response:
    await deps(request).ingestion.DeleteMailbox(
        ingestion_pb2.DeleteMailboxRequest(mailbox_id=request.match_info["mailbox_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


# -- imports (admin) -------------------------------------------------------------------


def import_json(job: ingestion_pb2.ImportJob) -> dict[str, Any]:
    return {
        "id": job.id,
        "inbox": {"id": job.inbox_id, "name": job.inbox_name},
        "filename": job.filename,
        "kind": job.kind,
        "size_bytes": job.size_bytes,
        "state": job.state,
        "total": job.total if job.total or job.state in ("done", "failed") else None,
        "done": job.done,
        "created": job.created,
        "duplicates": job.duplicates,
        "failures": [
            {"index": f.index, "name": f.name, "problem": f.problem} for f in job.failures
        ],
        "error": job.error or None,
        "created_at": views.iso(job.created_at),
        "updated_at": views.iso(job.updated_at),
    }


async def create_import(request: web.Request) -> web.Response:
    """The file is the request body (any content type); it is streamed to ingestion."""
    d = deps(request)
    limit = d.settings.import_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"the file is larger than {limit} bytes")
    inbox_id = request.query.get("inbox_id", "")
    if not inbox_id:
        raise bad("inbox_id is required", "inbox_id")
    kind = request.query.get("kind", "")
    if kind and kind not in IMPORT_KINDS:
        raise bad("kind must be eml, mbox or zip", "kind")
    header = ingestion_pb2.ImportHeader(
        inbox_id=inbox_id, filename=request.query.get("filename", "")[:255], kind=kind
    )
    size = 0

    async def chunks() -> AsyncIterator[ingestion_pb2.ImportChunk]:
        nonlocal size
        yield ingestion_pb2.ImportChunk(header=header)
        async for data in request.content.iter_chunked(IMPORT_CHUNK):
            size += len(data)
            if size > limit:
                raise ApiError(413, "too_large", f"the file is larger than {limit} bytes")
            yield ingestion_pb2.ImportChunk(data=data)

    resp = await d.ingestion.CreateImport(chunks(), metadata=metadata(request), timeout=600)
    return json_response(import_json(resp), status=201)


async def get_import(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.GetImport(
        ingestion_pb2.GetImportRequest(import_id=request.match_info["import_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(import_json(resp))


async def list_imports(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.ListImports(
        ingestion_pb2.ListImportsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"items": [import_json(j) for j in resp.imports]})


# -- a mail: parsed, raw, its attachments ----------------------------------------------


async def get_message(request: web.Request) -> web.Response:
    """The parsed mail: what the ticket view shows (HTML already sanitised)."""
    resp = await deps(request).ingestion.GetMessage(
        ingestion_pb2.GetMessageRequest(message_id=request.match_info["message_id"]),
        metadata=metadata(request),
        timeout=30,
    )
    parsed = json.loads(resp.parsed_json) if resp.parsed_json else None
    if parsed is not None:
        for att in parsed.get("attachments", []):
            att["download_url"] = f"/api/v1/messages/{resp.message_id}/attachments/{att['index']}"
    return json_response(
        {
            "id": resp.message_id,
            "channel": resp.channel,
            "received_at": views.iso(resp.received_at),
            "parsed": parsed,
        }
    )


async def get_attachment(request: web.Request) -> web.Response:
    """An attachment as a download: never rendered in the browser, whatever it claims."""
    resp = await deps(request).ingestion.GetAttachment(
        ingestion_pb2.GetAttachmentRequest(
            message_id=request.match_info["message_id"], index=path_int(request, "index")
        ),
        metadata=metadata(request),
        timeout=60,
    )
    return download(resp.data, resp.filename, declared_type=resp.content_type)


async def raw_message(request: web.Request) -> web.Response:
    """The mail exactly as it arrived, as a download (never rendered by the browser)."""
    resp = await deps(request).ingestion.GetRawMessage(
        ingestion_pb2.GetRawMessageRequest(message_id=request.match_info["message_id"]),
        metadata=metadata(request),
        timeout=30,
    )
    return web.Response(
        body=resp.raw,
        content_type="message/rfc822",
        headers={
            "Content-Disposition": f'attachment; filename="{resp.message_id}.eml"',
            "X-Content-Type-Options": "nosniff",
        },
    )


# -- web inquiry forms -----------------------------------------------------------------


def form_json(f: ingestion_pb2.Form) -> dict[str, Any]:
    return {
        "id": f.id,
        "inbox": {"id": f.inbox_id, "name": f.inbox_name},
        "name": f.name,
        "redirect_url": f.redirect_url or None,
        "enabled": f.enabled,
        "submit_url": f"/api/v1/forms/{f.id}/submissions",
        "created_at": views.iso(f.created_at),
    }


async def create_form(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).ingestion.CreateForm(
        ingestion_pb2.CreateFormRequest(
            inbox_id=body["inbox_id"], name=body["name"], redirect_url=body.get("redirect_url", "")
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(form_json(resp), status=201)


async def list_forms(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.ListForms(
        ingestion_pb2.ListFormsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"items": [form_json(f) for f in resp.forms]})


async def delete_form(request: web.Request) -> web.Response:
    await deps(request).ingestion.DeleteForm(
        ingestion_pb2.DeleteFormRequest(form_id=request.match_info["form_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def form_preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=FORM_CORS)


async def _form_fields(request: web.Request) -> list[tuple[str, str]]:
    """A submission's fields, form-encoded or JSON (a page's own script); not checked
    against the schema here: which fields a form needs is ingestion's to say."""
    if request.content_length is not None and request.content_length > FORM_MAX_BYTES:
        raise ApiError(413, "too_large", f"a submission is at most {FORM_MAX_BYTES} bytes")
    raw = await request.content.read(FORM_MAX_BYTES + 1)
    if len(raw) > FORM_MAX_BYTES:
        raise ApiError(413, "too_large", f"a submission is at most {FORM_MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("the submission must be UTF-8") from None
    if request.content_type == "application/json":
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            raise bad("the body must be JSON") from None
        if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
            raise bad("the body must be an object of strings")
        return list(body.items())
    if request.content_type in ("application/x-www-form-urlencoded", ""):
        return parse_qsl(text, keep_blank_values=True, max_num_fields=100)
    raise ApiError(415, "unsupported_media_type", "send application/x-www-form-urlencoded or JSON")


async def submit_form(request: web.Request) -> web.StreamResponse:
    """Public: no session, no CSRF cookie (nothing here acts as anyone). Limited per form
    and client address; a filled-in honeypot is answered like a success and dropped."""
    d = deps(request)
    form_id = request.match_info["form_id"]
    client = request[CLIENT] or "unknown"
    key = f"sb:gw:form-rate:{form_id[:40]}:{client}"
    if await over_rate(request, key, d.settings.form_rate_per_minute):
        raise ApiError(429, "resource_exhausted", "too many submissions; try again in a minute")
    fields = await _form_fields(request)
    resp = await d.ingestion.SubmitForm(
        ingestion_pb2.SubmitFormRequest(
            form_id=form_id,
            fields=[ingestion_pb2.FormField(name=k, value=v) for k, v in fields],
            client_address=client,
            user_agent=request.headers.get("User-Agent", "")[:500],
        ),
        timeout=30,
    )
    if resp.redirect_url and request.content_type != "application/json":
        raise web.HTTPSeeOther(resp.redirect_url, headers=FORM_CORS)
    return web.json_response(
        {"status": "received", "submission_id": resp.submission_id}, status=201, headers=FORM_CORS
    )


# -- blocked senders (admin) -----------------------------------------------------------


def block_json(b: ingestion_pb2.Block) -> dict[str, Any]:
    return {
        "id": b.id,
        "kind": b.kind,
        "value": b.value,
        "inbox_id": b.inbox_id or None,
        "created_at": views.iso(b.created_at),
    }


async def add_block(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await deps(request).ingestion.AddBlock(
        ingestion_pb2.AddBlockRequest(
            kind=body["kind"], value=body["value"], inbox_id=body.get("inbox_id", "")
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(block_json(resp), status=201)


async def list_blocks(request: web.Request) -> web.Response:
    resp = await deps(request).ingestion.ListBlocks(
        ingestion_pb2.ListBlocksRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"items": [block_json(b) for b in resp.blocks]})


async def delete_block(request: web.Request) -> web.Response:
    await deps(request).ingestion.DeleteBlock(
        ingestion_pb2.DeleteBlockRequest(block_id=request.match_info["block_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/mailboxes", create_mailbox)
    r.add_get("/api/v1/mailboxes", list_mailboxes)
    r.add_post("/api/v1/mailboxes/test", test_mailbox_settings)
    r.add_post("/api/v1/mailboxes/{mailbox_id}/test", test_mailbox)
    r.add_put("/api/v1/mailboxes/{mailbox_id}", update_mailbox)
    r.add_delete("/api/v1/mailboxes/{mailbox_id}", delete_mailbox)
    r.add_post("/api/v1/imports", create_import)
    r.add_get("/api/v1/imports", list_imports)
    r.add_get("/api/v1/imports/{import_id}", get_import)
    r.add_post("/api/v1/blocklist", add_block)
    r.add_get("/api/v1/blocklist", list_blocks)
    r.add_delete("/api/v1/blocklist/{block_id}", delete_block)
    r.add_post("/api/v1/forms", create_form)
    r.add_get("/api/v1/forms", list_forms)
    r.add_delete("/api/v1/forms/{form_id}", delete_form)
    r.add_post("/api/v1/forms/{form_id}/submissions", submit_form)
    r.add_route("OPTIONS", "/api/v1/forms/{form_id}/submissions", form_preflight)
    r.add_get("/api/v1/messages/{message_id}", get_message)
    r.add_get("/api/v1/messages/{message_id}/raw", raw_message)
    r.add_get("/api/v1/messages/{message_id}/attachments/{index}", get_attachment)
