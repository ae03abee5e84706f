"""CompositionService over gRPC: templates, folders, signatures and settings here; drafts
in api_drafts. Reading templates is for every operator of the inboxes a template is
scoped to; writing them needs manage_templates."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import common_pb2, composition_pb2, events_pb2

from services.runtime import events, identity, permissions
from services.runtime import mail as mime
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.outbox import Outbox
from services.runtime.text import normalize

from . import checks, reserved, suggest
from .peers import Peers, TicketView
from .records import Signature, Template
from .repo import ComposeRepo

NAME_MAX = 200
SUBJECT_MAX = 998
BODY_MAX = 200_000
KEYWORDS_MAX = 30
KINDS = {
    composition_pb2.TEMPLATE_KIND_TEMPLATE: "template",
    composition_pb2.TEMPLATE_KIND_PHRASE: "phrase",
}
KIND_VALUES = {v: k for k, v in KINDS.items()}


@dataclass
class Deps:
    db: Database
    repo: ComposeRepo
    outbox: Outbox
    peers: Peers
    clock: Clock
    ids: IdGenerator


def text_field(value: str, field: str, limit: int, *, required: bool = False) -> str:
    if required and not value.strip():
        raise InvalidArgument(f"{field} must not be empty", field=field)
    if len(value) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    if "\0" in value:
        raise InvalidArgument(f"{field} must not contain NUL characters", field=field)
    return value


def search_text(name: str, subject: str, body_text: str, keywords: Sequence[str]) -> str:
    """What a template's list query searches: its words, normalised (NFKC, case-folded)."""
    return normalize(" ".join([name, subject, body_text, *keywords]))


def ts(value: datetime | None, into: Timestamp) -> None:
    if value is not None:
        into.FromDatetime(value)


def template_pb(r: Template) -> composition_pb2.Template:
    t = composition_pb2.Template(
        id=str(r.id),
        kind=KIND_VALUES[r.kind],
        folder_id=str(r.folder_id or ""),
        name=r.name,
        subject=r.subject,
        body_text=r.body_text,
        body_html=r.body_html,
        keywords=list(r.keywords),
        inbox_ids=[str(i) for i in r.inbox_ids],
        version=r.version,
        usage_count=r.usage_count,
        updated_by=common_pb2.OperatorRef(
            id=str(r.updated_by or ""), display_name=r.updated_by_name
        ),
    )
    ts(r.created_at, t.created_at)
    ts(r.updated_at, t.updated_at)
    return t


def context_of(
    ident: Identity,
    now: Any,
    *,
    ticket: TicketView | None = None,
    answering: str = "",
    inbox_name: str = "",
    inbox_address: str = "",
    operator_address: str = "",
) -> reserved.Context:
    """What the reserved words stand for, for this caller and ticket."""
    original = reserved.Original()
    if ticket is not None and ticket.mails:
        try:
            m = ticket.mail(answering)
            original = reserved.Original(m.subject, m.sender, m.date)
        except NotFound:
            pass
    return reserved.Context(
        now=now,
        time_zone=ident.time_zone or "UTC",
        language=ident.language or "ja",
        operator=reserved.Person(ident.display_name, operator_address),
        customer=ticket.customer if ticket else reserved.Person(),
        ticket_number=ticket.number if ticket else 0,
        ticket_subject=ticket.subject if ticket else "",
        inbox_name=inbox_name or (ticket.inbox_name if ticket else ""),
        inbox_address=inbox_address,
        original=original,
    )


def problems_pb(rendered: reserved.Rendered, field: str) -> list[composition_pb2.RenderProblem]:
    return [
        composition_pb2.RenderProblem(word=p.word, reason=p.reason, message=p.message, field=field)
        for p in rendered.problems
    ]


class TemplatesApi:
    _d: Deps

    # -- plumbing ----------------------------------------------------------------------

    async def _emit(
        self, conn: asyncpg.Connection, ident: Identity, etype: events.EventType, payload: Message
    ) -> None:
        d = self._d
        env = events.envelope(
            etype,
            event_id=d.ids.new_str(),
            tenant_id=ident.tenant_id,
            occurred_at=d.clock.now(),
            payload=payload,
            actor=identity.operator_actor(ident),
            correlation_id=ident.correlation_id,
        )
        await d.outbox.add(conn, env)

    def _visible(self, ident: Identity, row: Template) -> bool:
        scope = [str(i) for i in row.inbox_ids]
        return not scope or ident.inboxes is None or any(ident.sees_inbox(i) for i in scope)

    async def _template(self, ident: Identity, raw_id: str) -> Template:
        row = await self._d.repo.template(
            self._d.db.pool, ident.tenant_id, parse_uuid(raw_id, "template_id")
        )
        if not self._visible(ident, row):
            raise NotFound("no such template", field="template_id")
        return row

    def _values(self, ident: Identity, request: Any) -> dict[str, Any]:
        kind = KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument("kind must be template or phrase", field="kind")
        inbox_ids = list(dict.fromkeys(parse_uuid(i, "inbox_ids") for i in request.inbox_ids))
        for i in inbox_ids:
            if not ident.sees_inbox(i):
                raise NotFound("no such inbox", field="inbox_ids")
        keywords = checks.clean_words(list(request.keywords), "keywords")
        if len(keywords) > KEYWORDS_MAX:
            raise InvalidArgument(f"at most {KEYWORDS_MAX} keywords", field="keywords")
        name = text_field(request.name.strip(), "name", NAME_MAX, required=True)
        subject = mime.check_header_value(
            text_field(request.subject, "subject", SUBJECT_MAX), "subject"
        )
        body_text = text_field(request.body_text, "body_text", BODY_MAX)
        body_html = text_field(request.body_html, "body_html", BODY_MAX)
        if not body_text.strip() and not body_html.strip():
            raise InvalidArgument("body_text or body_html is required", field="body_text")
        return {
            "kind": kind,
            "folder_id": parse_uuid(request.folder_id, "folder_id") if request.folder_id else None,
            "name": name,
            "subject": subject,
            "body_text": body_text,
            "body_html": body_html,
            "keywords": list(keywords),
            "inbox_ids": inbox_ids,
            "search_text": search_text(name, subject, body_text, keywords),
            "updated_by": uuid.UUID(ident.operator_id),
            "updated_by_name": ident.display_name,
        }

    def _changed(self, row: Template, action: str) -> events_pb2.TemplateChanged:
        return events_pb2.TemplateChanged(
            template_id=str(row.id),
            action=action,
            name=row.name,
            version=row.version,
            kind=row.kind,
            inbox_ids=[str(i) for i in row.inbox_ids],
            folder_id=str(row.folder_id or ""),
        )

    # -- templates ---------------------------------------------------------------------

    async def ListTemplates(
        self, request: composition_pb2.ListTemplatesRequest, context: Context
    ) -> composition_pb2.ListTemplatesResponse:
        ident = identity.require_operator()
        kind = KINDS.get(request.kind) if request.kind else None
        folder = None
        root = request.folder_id == "root"
        if request.folder_id and not root:
            folder = parse_uuid(request.folder_id, "folder_id")
        like = None
        query = normalize(request.query[:200])
        if query:
            like = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        inbox = parse_uuid(request.inbox_id, "inbox_id") if request.inbox_id else None
        rows = await self._d.repo.templates(
            ident.tenant_id,
            kind=kind,
            folder=folder,
            root_only=root,
            like=like,
            inboxes=ident.inbox_filter(),
            inbox=inbox,
        )
        return composition_pb2.ListTemplatesResponse(templates=[template_pb(r) for r in rows])

    async def GetTemplate(
        self, request: composition_pb2.GetTemplateRequest, context: Context
    ) -> composition_pb2.Template:
        ident = identity.require_operator()
        return template_pb(await self._template(ident, request.template_id))

    async def CreateTemplate(
        self, request: composition_pb2.TemplateWrite, context: Context
    ) -> composition_pb2.Template:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "write templates")
        d = self._d
        values = self._values(ident, request)
        now = d.clock.now()
        async with d.db.transaction() as conn:
            if values["folder_id"] is not None:
                await d.repo.folder(conn, ident.tenant_id, values["folder_id"])
            row = await d.repo.insert_template(
                conn,
                {
                    "tenant_id": uuid.UUID(ident.tenant_id),
                    "id": d.ids.new(),
                    **values,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            await self._emit(conn, ident, events.TEMPLATE_CHANGED, self._changed(row, "created"))
        d.outbox.wake()
        return template_pb(row)

    async def UpdateTemplate(
        self, request: composition_pb2.TemplateWrite, context: Context
    ) -> composition_pb2.Template:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "write templates")
        d = self._d
        await self._template(ident, request.template_id)
        values = self._values(ident, request)
        async with d.db.transaction() as conn:
            if values["folder_id"] is not None:
                await d.repo.folder(conn, ident.tenant_id, values["folder_id"])
            row = await d.repo.update_template(
                conn,
                ident.tenant_id,
                uuid.UUID(request.template_id),
                {**values, "updated_at": d.clock.now()},
                request.expected_version,
            )
            await self._emit(conn, ident, events.TEMPLATE_CHANGED, self._changed(row, "updated"))
        d.outbox.wake()
        return template_pb(row)

    async def DeleteTemplate(
        self, request: composition_pb2.DeleteTemplateRequest, context: Context
    ) -> composition_pb2.DeleteTemplateResponse:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "delete templates")
        d = self._d
        await self._template(ident, request.template_id)
        async with d.db.transaction() as conn:
            row = await d.repo.delete_template(
                conn, ident.tenant_id, uuid.UUID(request.template_id), d.clock.now()
            )
            await self._emit(conn, ident, events.TEMPLATE_CHANGED, self._changed(row, "deleted"))
        d.outbox.wake()
        return composition_pb2.DeleteTemplateResponse()

    async def RenderTemplate(
        self, request: composition_pb2.RenderTemplateRequest, context: Context
    ) -> composition_pb2.RenderTemplateResponse:
        """For an operator, or for another service acting for the tenant (outbound's
        automatic acknowledgements: no operator words)."""
        ident = identity.require_tenant()
        row = await self._template(ident, request.template_id)
        ctx = await self._render_context(ident, request.ticket_id, request.message_id)
        return await self._render_row(ident, row, ctx, use=request.use)

    async def _render_context(
        self, ident: Identity, ticket_id: str, message_id: str
    ) -> reserved.Context:
        d = self._d
        view = None
        inbox_name = inbox_address = ""
        if ticket_id:
            view = await d.peers.ticket(ident, str(parse_uuid(ticket_id, "ticket_id")))
            inbox_name, addresses = await d.peers.inbox_addresses(ident, view.inbox_id)
            inbox_address = addresses[0] if addresses else ""
        return context_of(
            ident,
            d.clock.now(),
            ticket=view,
            answering=message_id,
            inbox_name=inbox_name,
            inbox_address=inbox_address,
            operator_address=await d.peers.operator_address(ident) if ident.operator_id else "",
        )

    async def _render_row(
        self, ident: Identity, row: Template, ctx: reserved.Context, *, use: bool
    ) -> composition_pb2.RenderTemplateResponse:
        # the words fill in a customer's name or subject: made safe for the Subject header
        subject = reserved.render(row.subject, ctx, clean=mime.header_text)
        text = reserved.render(row.body_text, ctx)
        html = reserved.render(row.body_html, ctx)
        if use and ident.operator_id:
            await self._d.repo.count_use(ident.tenant_id, row.id)
        return composition_pb2.RenderTemplateResponse(
            subject=subject.text,
            body_text=text.text,
            body_html=html.text,
            problems=[
                *problems_pb(subject, "subject"),
                *problems_pb(text, "body_text"),
                *problems_pb(html, "body_html"),
            ],
            words=list(dict.fromkeys([*subject.used, *text.used, *html.used])),
        )

    async def SuggestTemplates(
        self, request: composition_pb2.SuggestTemplatesRequest, context: Context
    ) -> composition_pb2.SuggestTemplatesResponse:
        ident = identity.require_operator()
        d = self._d
        limit = request.limit or 5
        if not 1 <= limit <= 20:
            raise InvalidArgument("limit must be 1 to 20", field="limit")
        view = await d.peers.ticket(ident, str(parse_uuid(request.ticket_id, "ticket_id")))
        body = ""
        if view.mails:
            body = (await d.peers.parsed(ident, view.mails[-1].message_id)).text
        rows = await d.repo.templates(
            ident.tenant_id,
            kind="template",
            folder=None,
            root_only=False,
            like=None,
            inboxes=ident.inbox_filter(),
            inbox=uuid.UUID(view.inbox_id),
        )
        by_id = {str(r.id): r for r in rows}
        ranked = suggest.rank(
            view.subject,
            body,
            [
                suggest.Candidate(str(r.id), r.name, r.subject, r.body_text, tuple(r.keywords))
                for r in rows
            ],
            limit,
        )
        return composition_pb2.SuggestTemplatesResponse(
            suggestions=[
                composition_pb2.TemplateSuggestion(
                    template=template_pb(by_id[s.id]), score=s.score, matched_keywords=s.matched
                )
                for s in ranked
            ]
        )

    # -- folders -----------------------------------------------------------------------

    async def ListFolders(
        self, request: composition_pb2.ListFoldersRequest, context: Context
    ) -> composition_pb2.ListFoldersResponse:
        ident = identity.require_operator()
        rows = await self._d.repo.folders(ident.tenant_id)
        return composition_pb2.ListFoldersResponse(
            folders=[
                composition_pb2.Folder(
                    id=str(r.id),
                    parent_id=str(r.parent_id or ""),
                    name=r.name,
                    template_count=r.template_count,
                )
                for r in rows
            ]
        )

    async def _put_folder(self, request: Any, *, new: bool) -> composition_pb2.Folder:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "manage template folders")
        d = self._d
        name = text_field(request.name.strip(), "name", 100, required=True)
        if "/" in name:
            raise InvalidArgument("a folder name must not contain /", field="name")
        parent = parse_uuid(request.parent_id, "parent_id") if request.parent_id else None
        folder_id = d.ids.new() if new else parse_uuid(request.folder_id, "folder_id")
        async with d.db.transaction() as conn:
            if not new:
                await d.repo.folder(conn, ident.tenant_id, folder_id)
            if parent is not None:
                await d.repo.folder(conn, ident.tenant_id, parent)
                if folder_id in await d.repo.ancestors(conn, ident.tenant_id, parent):
                    raise InvalidArgument("a folder cannot go inside itself", field="parent_id")
            await d.repo.put_folder(
                conn,
                tenant_id=ident.tenant_id,
                folder_id=folder_id,
                parent_id=parent,
                name=name,
                now=d.clock.now(),
                new=new,
            )
        return composition_pb2.Folder(id=str(folder_id), parent_id=str(parent or ""), name=name)

    async def CreateFolder(
        self, request: composition_pb2.FolderWrite, context: Context
    ) -> composition_pb2.Folder:
        return await self._put_folder(request, new=True)

    async def UpdateFolder(
        self, request: composition_pb2.FolderWrite, context: Context
    ) -> composition_pb2.Folder:
        return await self._put_folder(request, new=False)

    async def DeleteFolder(
        self, request: composition_pb2.DeleteFolderRequest, context: Context
    ) -> composition_pb2.DeleteFolderResponse:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "manage template folders")
        await self._d.repo.delete_folder(
            ident.tenant_id, parse_uuid(request.folder_id, "folder_id")
        )
        return composition_pb2.DeleteFolderResponse()

    # -- signatures --------------------------------------------------------------------

    async def ListSignatures(
        self, request: composition_pb2.ListSignaturesRequest, context: Context
    ) -> composition_pb2.ListSignaturesResponse:
        ident = identity.require_operator()
        rows = await self._d.repo.signatures(ident.tenant_id)
        return composition_pb2.ListSignaturesResponse(
            signatures=[
                signature_pb(r) for r in rows if r.inbox_id is None or ident.sees_inbox(r.inbox_id)
            ]
        )

    async def PutSignature(
        self, request: composition_pb2.SignatureWrite, context: Context
    ) -> composition_pb2.Signature:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "write signatures")
        d = self._d
        inbox = parse_uuid(request.inbox_id, "inbox_id") if request.inbox_id else None
        if inbox is not None:
            await d.peers.inbox_addresses(ident, str(inbox))  # NotFound unless theirs
        row = await d.repo.put_signature(
            tenant_id=ident.tenant_id,
            signature_id=d.ids.new(),
            inbox_id=inbox,
            name=text_field(request.name.strip() or "Signature", "name", 100),
            body_text=text_field(request.body_text, "body_text", 20_000, required=True),
            body_html=text_field(request.body_html, "body_html", 50_000),
            now=d.clock.now(),
        )
        return signature_pb(row)

    async def DeleteSignature(
        self, request: composition_pb2.DeleteSignatureRequest, context: Context
    ) -> composition_pb2.DeleteSignatureResponse:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "delete signatures")
        await self._d.repo.delete_signature(
            ident.tenant_id, parse_uuid(request.signature_id, "signature_id")
        )
        return composition_pb2.DeleteSignatureResponse()

    # -- the check words ---------------------------------------------------------------

    async def settings_of(self, tenant_id: str) -> checks.Settings:
        row = await self._d.repo.settings(tenant_id)
        if row is None:
            return checks.Settings()
        return checks.Settings(tuple(row.attachment_words), tuple(row.error_keywords))

    async def GetComposeSettings(
        self, request: composition_pb2.GetComposeSettingsRequest, context: Context
    ) -> composition_pb2.ComposeSettings:
        ident = identity.require_operator()
        s = await self.settings_of(ident.tenant_id)
        return composition_pb2.ComposeSettings(
            attachment_words=list(s.attachment_words), error_keywords=list(s.error_keywords)
        )

    async def SetComposeSettings(
        self, request: composition_pb2.ComposeSettings, context: Context
    ) -> composition_pb2.ComposeSettings:
        ident = identity.require_operator()
        identity.require_permission(ident, permissions.MANAGE_TEMPLATES, "change the check words")
        words = checks.clean_words(list(request.attachment_words), "attachment_words")
        keywords = checks.clean_words(list(request.error_keywords), "error_keywords")
        await self._d.repo.put_settings(
            ident.tenant_id, list(words), list(keywords), self._d.clock.now()
        )
        return composition_pb2.ComposeSettings(
            attachment_words=list(words), error_keywords=list(keywords)
        )


def signature_pb(r: Signature) -> composition_pb2.Signature:
    s = composition_pb2.Signature(
        id=str(r.id),
        inbox_id=str(r.inbox_id or ""),
        name=r.name,
        body_text=r.body_text,
        body_html=r.body_html,
    )
    ts(r.updated_at, s.updated_at)
    return s
