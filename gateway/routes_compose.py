"""Composition routes of issue 6 (CMP-1…6, RTE-5): templates and phrases, folders,
signatures, the check words, template suggestions, drafts with attachments, pre-send
checks, the preview and the diff between revisions. The composition service does the
work and checks permissions and fences itself; documented in openapi.yaml."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from switchboard.v1 import composition_pb2, composition_pb2_grpc

from . import views, views_compose
from .errors import ApiError
from .request import (
    FENCE_MAX,
    bad,
    caller,
    deps,
    json_body,
    metadata,
    optional_body,
    query_bool,
    query_choice,
    query_int,
)
from .responses import download, json_response, no_content

KINDS = {"template": 1, "phrase": 2}
DRAFT_KINDS = {"reply": 1, "reply_all": 2, "forward": 3, "new": 4}
TEXT_FIELDS = ("folder_id", "name", "subject", "body_text", "body_html")
SAVE_TEXT = ("from_name", "subject", "body_text", "body_html", "signature_text", "signature_html")
SAVE_LISTS = ("to", "cc", "bcc", "attachment_ids")
UPLOAD_CHUNK = 1024 * 1024
UPLOAD_MAX = 25 * 1024 * 1024


def _stub(request: web.Request) -> composition_pb2_grpc.CompositionServiceStub:
    return deps(request).composition


def _fence_param(request: web.Request) -> int:
    return query_int(request, "fence", low=1, high=FENCE_MAX)


# -- templates ---------------------------------------------------------------------------


def _template_write(body: dict[str, Any], template_id: str = "") -> composition_pb2.TemplateWrite:
    """A body its schema accepted (TemplateWrite)."""
    return composition_pb2.TemplateWrite(
        template_id=template_id,
        kind=KINDS[body.get("kind", "template")],  # type: ignore[arg-type]
        **{name: body.get(name, "") for name in TEXT_FIELDS},
        keywords=body.get("keywords", []),
        inbox_ids=body.get("inbox_ids", []),
        expected_version=body.get("expected_version", 0),
    )


async def list_templates(request: web.Request) -> web.Response:
    q = request.query
    kind = query_choice(request, "kind", tuple(KINDS))
    resp = await _stub(
        request
    ).ListTemplates(
        composition_pb2.ListTemplatesRequest(
            kind=KINDS.get(kind, 0),  # type: ignore[arg-type]
            folder_id=q.get("folder_id", ""),
            query=q.get("q", "")[:201],
            inbox_id=q.get("inbox_id", ""),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response({"items": [views_compose.template(t) for t in resp.templates]})


async def create_template(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).CreateTemplate(
        _template_write(body), metadata=metadata(request), timeout=10
    )
    return json_response(views_compose.template(resp), status=201)


async def get_template(request: web.Request) -> web.Response:
    resp = await _stub(request).GetTemplate(
        composition_pb2.GetTemplateRequest(template_id=request.match_info["template_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.template(resp))


async def update_template(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).UpdateTemplate(
        _template_write(body, request.match_info["template_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.template(resp))


async def delete_template(request: web.Request) -> web.Response:
    await _stub(request).DeleteTemplate(
        composition_pb2.DeleteTemplateRequest(template_id=request.match_info["template_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def render_template(request: web.Request) -> web.Response:
    body = await optional_body(request) or {}
    resp = await _stub(request).RenderTemplate(
        composition_pb2.RenderTemplateRequest(
            template_id=request.match_info["template_id"],
            ticket_id=body.get("ticket_id", ""),
            message_id=body.get("message_id", ""),
            use=body.get("use", False),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {
            "subject": resp.subject,
            "body_text": resp.body_text,
            "body_html": resp.body_html,
            "problems": [views_compose.render_problem(p) for p in resp.problems],
            "words": list(resp.words),
        }
    )


async def suggest_templates(request: web.Request) -> web.Response:
    resp = await _stub(request).SuggestTemplates(
        composition_pb2.SuggestTemplatesRequest(
            ticket_id=request.match_info["ticket_id"],
            limit=query_int(request, "limit", low=1, high=20),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {
            "items": [
                {
                    "template": views_compose.template(s.template),
                    "score": round(s.score, 4),
                    "matched_keywords": list(s.matched_keywords),
                }
                for s in resp.suggestions
            ]
        }
    )


# -- folders, signatures, settings -------------------------------------------------------


async def list_folders(request: web.Request) -> web.Response:
    resp = await _stub(request).ListFolders(
        composition_pb2.ListFoldersRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {
            "items": [
                {
                    "id": f.id,
                    "parent_id": f.parent_id or None,
                    "name": f.name,
                    "template_count": f.template_count,
                }
                for f in resp.folders
            ]
        },
        customer_data=False,
    )


async def _put_folder(request: web.Request, folder_id: str = "") -> web.Response:
    body = await json_body(request)
    write = composition_pb2.FolderWrite(
        folder_id=folder_id, name=body["name"], parent_id=body.get("parent_id", "")
    )
    stub = _stub(request)
    call = stub.UpdateFolder if folder_id else stub.CreateFolder
    resp = await call(write, metadata=metadata(request), timeout=10)
    return json_response(
        {"id": resp.id, "parent_id": resp.parent_id or None, "name": resp.name},
        status=200 if folder_id else 201,
        customer_data=False,
    )


async def create_folder(request: web.Request) -> web.Response:
    return await _put_folder(request)


async def update_folder(request: web.Request) -> web.Response:
    return await _put_folder(request, request.match_info["folder_id"])


async def delete_folder(request: web.Request) -> web.Response:
    await _stub(request).DeleteFolder(
        composition_pb2.DeleteFolderRequest(folder_id=request.match_info["folder_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def list_signatures(request: web.Request) -> web.Response:
    resp = await _stub(request).ListSignatures(
        composition_pb2.ListSignaturesRequest(), metadata=metadata(request), timeout=10
    )
    return json_response({"items": [views_compose.signature(s) for s in resp.signatures]})


async def put_signature(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).PutSignature(
        composition_pb2.SignatureWrite(
            **{name: body.get(name, "") for name in ("inbox_id", "name", "body_text", "body_html")}
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.signature(resp))


async def delete_signature(request: web.Request) -> web.Response:
    await _stub(request).DeleteSignature(
        composition_pb2.DeleteSignatureRequest(signature_id=request.match_info["signature_id"]),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def get_settings(request: web.Request) -> web.Response:
    resp = await _stub(request).GetComposeSettings(
        composition_pb2.GetComposeSettingsRequest(), metadata=metadata(request), timeout=10
    )
    return json_response(
        {
            "attachment_words": list(resp.attachment_words),
            "error_keywords": list(resp.error_keywords),
        },
        customer_data=False,
    )


async def put_settings(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).SetComposeSettings(
        composition_pb2.ComposeSettings(
            attachment_words=body["attachment_words"], error_keywords=body["error_keywords"]
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(
        {
            "attachment_words": list(resp.attachment_words),
            "error_keywords": list(resp.error_keywords),
        },
        customer_data=False,
    )


# -- drafts ------------------------------------------------------------------------------


async def create_ticket_draft(request: web.Request) -> web.Response:
    body = await json_body(request)
    resp = await _stub(request).CreateDraft(
        composition_pb2.CreateDraftRequest(
            ticket_id=request.match_info["ticket_id"],
            kind=DRAFT_KINDS[body["kind"]],  # type: ignore[arg-type]
            message_id=body.get("message_id", ""),
            include_quote=body.get("include_quote", False),
            fence=body["fence"],
            template_id=body.get("template_id", ""),
            language=body.get("language", ""),
        ),
        metadata=metadata(request),
        timeout=60,
    )
    return json_response(views_compose.draft(resp), status=201)


async def create_draft(request: web.Request) -> web.Response:
    """A new mail from an inbox, without a ticket."""
    body = await json_body(request)
    if not body["inbox_id"]:
        raise bad("inbox_id is required", "inbox_id")
    resp = await _stub(request).CreateDraft(
        composition_pb2.CreateDraftRequest(
            inbox_id=body["inbox_id"],
            kind=composition_pb2.DRAFT_KIND_NEW,
            template_id=body.get("template_id", ""),
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(views_compose.draft(resp), status=201)


async def list_ticket_drafts(request: web.Request) -> web.Response:
    resp = await _stub(request).ListDrafts(
        composition_pb2.ListDraftsRequest(ticket_id=request.match_info["ticket_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response({"items": [views_compose.draft(d) for d in resp.drafts]})


async def get_draft(request: web.Request) -> web.Response:
    resp = await _stub(request).GetDraft(
        composition_pb2.GetDraftRequest(
            draft_id=request.match_info["draft_id"],
            revision=query_int(request, "revision"),
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return json_response(views_compose.draft(resp))


async def save_draft(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not body["from_address"]:
        raise bad("from_address is required", "from_address")
    resp = await _stub(request).SaveDraft(
        composition_pb2.SaveDraftRequest(
            draft_id=request.match_info["draft_id"],
            fence=body.get("fence", 0),
            base_revision=body.get("base_revision", 0),
            from_address=body["from_address"],
            include_quote=body.get("include_quote", False),
            **{name: body.get(name, "") for name in SAVE_TEXT},
            **{name: body.get(name, []) for name in SAVE_LISTS},
        ),
        metadata=metadata(request),
        timeout=30,
    )
    return json_response(views_compose.draft(resp))


async def discard_draft(request: web.Request) -> web.Response:
    await _stub(request).DiscardDraft(
        composition_pb2.DiscardDraftRequest(
            draft_id=request.match_info["draft_id"], fence=_fence_param(request)
        ),
        metadata=metadata(request),
        timeout=10,
    )
    return no_content()


async def upload_attachment(request: web.Request) -> web.Response:
    """The file is the request body; its type the Content-Type; `filename`, `inline` and
    `fence` in the query."""
    if request.content_length is not None and request.content_length > UPLOAD_MAX:
        raise ApiError(413, "too_large", "an attachment is at most 25 MiB")
    filename = request.query.get("filename", "")
    if not filename:
        raise bad("filename is required", "filename")
    header = composition_pb2.AttachmentHeader(
        draft_id=request.match_info["draft_id"],
        filename=filename[:255],
        content_type=request.content_type or "application/octet-stream",
        inline=query_bool(request, "inline"),
        fence=_fence_param(request),
    )
    size = 0

    async def chunks() -> AsyncIterator[composition_pb2.AttachmentChunk]:
        nonlocal size
        yield composition_pb2.AttachmentChunk(header=header)
        async for data in request.content.iter_chunked(UPLOAD_CHUNK):
            size += len(data)
            if size > UPLOAD_MAX:
                raise ApiError(413, "too_large", "an attachment is at most 25 MiB")
            yield composition_pb2.AttachmentChunk(data=data)

    resp = await _stub(request).UploadAttachment(chunks(), metadata=metadata(request), timeout=120)
    return json_response(
        views_compose.draft_attachment(resp, request.match_info["draft_id"]), status=201
    )


async def get_attachment(request: web.Request) -> web.Response:
    resp = await _stub(request).GetDraftAttachment(
        composition_pb2.GetDraftAttachmentRequest(
            draft_id=request.match_info["draft_id"],
            attachment_id=request.match_info["attachment_id"],
        ),
        metadata=metadata(request),
        timeout=60,
    )
    return download(resp.data, resp.attachment.filename)


async def check_draft(request: web.Request) -> web.Response:
    resp = await _stub(request).CheckDraft(
        composition_pb2.CheckDraftRequest(draft_id=request.match_info["draft_id"]),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(
        {
            "blocked": resp.blocked,
            "findings": [
                {
                    "code": f.code,
                    "severity": f.severity,
                    "message": f.message,
                    "field": f.field or None,
                    "detail": f.detail or None,
                }
                for f in resp.findings
            ],
        }
    )


async def preview_draft(request: web.Request) -> web.Response:
    resp = await _stub(request).PreviewDraft(
        composition_pb2.PreviewDraftRequest(draft_id=request.match_info["draft_id"]),
        metadata=metadata(request),
        timeout=30,
    )
    draft_id = request.match_info["draft_id"]
    # The raw source carries parts in base64 or quoted-printable, where the masking of
    # every answer cannot find an address: none for a caller who may not see addresses.
    sees = caller(request).sees_addresses
    return json_response(
        {
            "from": views.address(resp.sender),
            "to": [views.address(a) for a in resp.to],
            "cc": [views.address(a) for a in resp.cc],
            "subject": resp.subject,
            "date": views.iso(resp.date),
            "headers": [{"name": h.name, "value": h.value} for h in resp.headers],
            "text": resp.text,
            "html": resp.html or None,
            "attachments": [views_compose.draft_attachment(a, draft_id) for a in resp.attachments],
            "bcc": list(resp.bcc),
            "size_bytes": resp.size_bytes,
            "source": resp.source if sees else None,
            "source_truncated": resp.source_truncated if sees else False,
        }
    )


async def diff_draft(request: web.Request) -> web.Response:
    from_revision = query_int(request, "from")
    if not from_revision:
        raise bad("from is required (a revision number)", "from")
    resp = await _stub(request).DiffDraft(
        composition_pb2.DiffDraftRequest(
            draft_id=request.match_info["draft_id"],
            from_revision=from_revision,
            to_revision=query_int(request, "to"),
        ),
        metadata=metadata(request),
        timeout=15,
    )
    return json_response(views_compose.draft_diff(resp))


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/templates", list_templates)
    r.add_post("/api/v1/templates", create_template)
    r.add_get("/api/v1/templates/{template_id}", get_template)
    r.add_put("/api/v1/templates/{template_id}", update_template)
    r.add_delete("/api/v1/templates/{template_id}", delete_template)
    r.add_post("/api/v1/templates/{template_id}/render", render_template)
    r.add_get("/api/v1/tickets/{ticket_id}/template-suggestions", suggest_templates)
    r.add_get("/api/v1/template-folders", list_folders)
    r.add_post("/api/v1/template-folders", create_folder)
    r.add_patch("/api/v1/template-folders/{folder_id}", update_folder)
    r.add_delete("/api/v1/template-folders/{folder_id}", delete_folder)
    r.add_get("/api/v1/signatures", list_signatures)
    r.add_put("/api/v1/signatures", put_signature)
    r.add_delete("/api/v1/signatures/{signature_id}", delete_signature)
    r.add_get("/api/v1/compose-settings", get_settings)
    r.add_put("/api/v1/compose-settings", put_settings)
    r.add_post("/api/v1/tickets/{ticket_id}/drafts", create_ticket_draft)
    r.add_get("/api/v1/tickets/{ticket_id}/drafts", list_ticket_drafts)
    r.add_post("/api/v1/drafts", create_draft)
    r.add_get("/api/v1/drafts/{draft_id}", get_draft)
    r.add_put("/api/v1/drafts/{draft_id}", save_draft)
    r.add_delete("/api/v1/drafts/{draft_id}", discard_draft)
    r.add_post("/api/v1/drafts/{draft_id}/attachments", upload_attachment)
    r.add_get("/api/v1/drafts/{draft_id}/attachments/{attachment_id}", get_attachment)
    r.add_get("/api/v1/drafts/{draft_id}/checks", check_draft)
    r.add_get("/api/v1/drafts/{draft_id}/preview", preview_draft)
    r.add_get("/api/v1/drafts/{draft_id}/diff", diff_draft)
