"""Drafts (CMP-4…6): reply, reply all, forward and new mail; every save a revision; the
reply-lock fence checked with tickets on every write to a ticket's draft, and kept with
each revision so that a write with an older fence than the last one is refused here too
(the store checks the token, not only the lock service). The pre-send checks, the preview
and the diff are in api_draft_checks.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from switchboard.v1 import common_pb2, composition_pb2, events_pb2

from services.runtime import events, identity, log, masking, permissions
from services.runtime import mail as mime
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import holds, recipients, reserved, richtext
from .api import TemplatesApi, context_of, text_field, ts
from .peers import Parsed, TicketView
from .records import Attachment, Draft, Revision

# the longest raw source a preview carries (characters): the headers and text parts of
# any reply, not every byte of a large attachment's base64
SOURCE_MAX = 256 * 1024


def _address_pb(m: mime.Mailbox) -> common_pb2.Address:
    return common_pb2.Address(name=m.name, address=m.address)


DRAFT_KINDS = {
    composition_pb2.DRAFT_KIND_REPLY: "reply",
    composition_pb2.DRAFT_KIND_REPLY_ALL: "reply_all",
    composition_pb2.DRAFT_KIND_FORWARD: "forward",
    composition_pb2.DRAFT_KIND_NEW: "new",
}
DRAFT_KIND_VALUES = {v: k for k, v in DRAFT_KINDS.items()}
BODY_MAX = 1_000_000
HTML_MAX = 2_000_000
ATTACHMENT_MAX = 25 * 1024 * 1024  # one file
ATTACHMENTS_MAX = 25 * 1024 * 1024  # all of one mail
ATTACHMENTS_COUNT = 50


def _ref(op_id: Any, name: str) -> common_pb2.OperatorRef:
    return common_pb2.OperatorRef(id=str(op_id), display_name=name)


def attachment_pb(r: Attachment) -> composition_pb2.DraftAttachment:
    return composition_pb2.DraftAttachment(
        id=str(r.id),
        filename=r.filename,
        content_type=r.content_type,
        size=r.size,
        sha256=bytes(r.sha256).hex(),
        inline=r.inline,
        content_id=r.content_id,
        source=r.source,
    )


class DraftsApi(TemplatesApi):
    # -- plumbing ----------------------------------------------------------------------

    async def _draft(
        self, ident: Identity, raw_id: str, conn: Any = None, *, lock: bool = False
    ) -> Draft:
        d = self._d
        row = await d.repo.draft(
            conn or d.db.pool, ident.tenant_id, parse_uuid(raw_id, "draft_id"), for_update=lock
        )
        if not ident.sees_inbox(row.inbox_id):
            raise NotFound("no such draft", field="draft_id")
        log.also(draft_id=str(row.id), ticket_id=str(row.ticket_id or ""))
        return row

    async def _authorise_write(self, ident: Identity, draft: Draft, fence: int) -> None:
        """A ticket's draft: the caller holds its reply lock with `fence` (tickets says so);
        a new mail without a ticket: only its author writes it. While it awaits approval
        (issue 17): not its author, only an approver (`holds.check_write`) — of a new mail
        one who sees its inbox."""
        self._check_state(ident, draft)
        if draft.ticket_id is not None:
            await self._d.peers.check_fence(ident, str(draft.ticket_id), fence)
        elif draft.state == holds.OPEN and str(draft.author_id) != ident.operator_id:
            raise PermissionDenied("only its author may change this draft")

    @staticmethod
    def _check_state(ident: Identity, draft: Draft) -> None:
        holds.check_write(
            draft.state,
            is_author=str(draft.author_id) == ident.operator_id,
            granted=ident.permissions,
        )

    async def _draft_changed(
        self, conn: Any, ident: Identity, draft: Draft, state: str, revision: int
    ) -> None:
        if draft.ticket_id is None:
            return  # only a ticket is marked as editing
        await self._emit(
            conn,
            ident,
            events.DRAFT_CHANGED,
            events_pb2.DraftChanged(
                draft_id=str(draft.id),
                ticket_id=str(draft.ticket_id),
                inbox_id=str(draft.inbox_id),
                state=state,
                revision=revision,
                author=_ref(draft.author_id, draft.author_name),
            ),
        )

    async def _revision_pb(
        self, ident: Identity, draft: Draft, rev: Revision
    ) -> composition_pb2.DraftRevision:
        d = self._d
        atts = await d.repo.attachments(
            d.db.pool, ident.tenant_id, draft.id, list(rev.attachment_ids)
        )
        out = composition_pb2.DraftRevision(
            revision=rev.revision,
            saved_by=_ref(rev.saved_by, rev.saved_by_name),
            from_address=rev.from_address,
            from_name=rev.from_name,
            to=list(rev.to_addrs),
            cc=list(rev.cc_addrs),
            bcc=list(rev.bcc_addrs),
            subject=rev.subject,
            body_text=rev.body_text,
            body_html=rev.body_html,
            signature_text=rev.signature_text,
            signature_html=rev.signature_html,
            quote_text=rev.quote_text,
            include_quote=rev.include_quote,
            attachments=[attachment_pb(a) for a in atts],
        )
        ts(rev.saved_at, out.saved_at)
        return out

    async def _draft_pb(
        self, ident: Identity, draft: Draft, revision: int = 0, *, history: bool = True
    ) -> composition_pb2.Draft:
        d = self._d
        rev = await d.repo.revision(
            d.db.pool, ident.tenant_id, draft.id, revision or draft.revision
        )
        out = composition_pb2.Draft(
            id=str(draft.id),
            ticket_id=str(draft.ticket_id or ""),
            inbox_id=str(draft.inbox_id),
            kind=DRAFT_KIND_VALUES[draft.kind],
            answering_message_id=str(draft.answering_message_id or ""),
            author=_ref(draft.author_id, draft.author_name),
            state=draft.state,
            current=await self._revision_pb(ident, draft, rev),
            in_reply_to=draft.in_reply_to,
            references=list(draft.references),
            approval_request_id=str(draft.approval_request_id or ""),
        )
        if draft.changed_by is not None:
            out.last_change.by.CopyFrom(_ref(draft.changed_by, draft.changed_by_name))
            out.last_change.action = draft.change
            ts(draft.changed_at, out.last_change.at)
        ts(draft.created_at, out.created_at)
        ts(draft.updated_at, out.updated_at)
        if history:
            for r in await d.repo.revisions(ident.tenant_id, draft.id):
                info = out.revisions.add(
                    revision=r.revision, saved_by=_ref(r.saved_by, r.saved_by_name)
                )
                ts(r.saved_at, info.saved_at)
        return out

    @staticmethod
    def _unmasked(ident: Identity, sent: list[str], last: Revision) -> list[str]:
        """An operator who may not see customers' addresses was shown them masked
        (SEC-6); the ones they send back unchanged are the addresses of the last revision."""
        if ident.may(permissions.SEE_CUSTOMER_ADDRESSES):
            return sent
        known = [*last.to_addrs, *last.cc_addrs, *last.bcc_addrs]
        try:
            return masking.unmask_recipients(sent, known)
        except ValueError as err:
            raise InvalidArgument(
                f"{err} is a masked address that is not one of the draft's recipients",
                field="to",
            ) from None

    async def _fresh_fence(self, conn: Any, draft: Draft, fence: int) -> None:
        """The store's own fencing check: never a write with a fence older than the one the
        last revision was saved with (a holder who lost the lock and was replaced)."""
        if draft.ticket_id is None:
            return
        last = await conn.fetchval(
            "SELECT max(fence) FROM draft_revisions WHERE draft_id = $1", draft.id
        )
        if last is not None and fence < last:
            raise FailedPrecondition(
                "a later reply lock has written this draft; your lock is stale", field="fence"
            )

    # -- creating ----------------------------------------------------------------------

    async def CreateDraft(
        self, request: composition_pb2.CreateDraftRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        d = self._d
        kind = DRAFT_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument("kind must be reply, reply_all, forward or new", field="kind")
        if request.language not in ("", "ja", "en"):
            raise InvalidArgument("language must be ja or en", field="language")
        view: TicketView | None = None
        answering = None
        parsed = Parsed()
        if request.ticket_id:
            ticket_id = str(parse_uuid(request.ticket_id, "ticket_id"))
            await d.peers.check_fence(ident, ticket_id, request.fence)
            view = await d.peers.ticket(ident, ticket_id)
            inbox_id = view.inbox_id
            if kind != "new":
                answering = view.mail(request.message_id)
                parsed = await d.peers.parsed(ident, answering.message_id)
        elif kind == "new":
            inbox_id = str(parse_uuid(request.inbox_id, "inbox_id"))
        else:
            raise InvalidArgument(f"a {kind} needs the ticket_id", field="ticket_id")
        inbox = await d.peers.inbox(ident, inbox_id)
        inbox_name, inbox_addresses = inbox.name, list(inbox.addresses)
        if not inbox_addresses:
            raise FailedPrecondition("the inbox has no address to send from", field="inbox_id")
        ours = {a.lower() for a in inbox_addresses}
        received_at = [
            a for _, a in parsed.addresses("to") + parsed.addresses("cc") if a.lower() in ours
        ]
        sender = received_at[0] if received_at else inbox_addresses[0]
        now = d.clock.now()
        ctx = context_of(
            ident,
            now,
            ticket=view,
            answering=answering.message_id if answering else "",
            inbox_name=inbox_name,
            inbox_address=sender,
            operator_address=await d.peers.operator_address(ident),
        )
        to, cc = recipients.default_recipients(
            kind,
            recipients.Customer(view.customer.name, view.customer.address, view.first_written_to())
            if view
            else None,
            recipients.Answered(
                sender=(answering.sender.name, answering.sender.address),
                reply_to=parsed.addresses("reply_to"),
                to=parsed.addresses("to"),
                cc=parsed.addresses("cc"),
                stranger=answering.stranger,
                verified=answering.verified,
            )
            if answering
            else None,
            ours,
        )
        subject = ""
        quote_text = ""
        if answering is not None:
            subject = (mime.forward_subject if kind == "forward" else mime.reply_subject)(
                mime.header_text(answering.subject)
            )
            when = (
                answering.date.astimezone(ctx.zone()).strftime("%Y-%m-%d %H:%M")
                if answering.date
                else ""
            )
            who = str(mime.Mailbox(answering.sender.name, answering.sender.address))
            # "… wrote:" in the language the operator works in (the UI says which), else
            # their profile's
            quote_text = mime.quote(parsed.text, who, when, request.language or ctx.language)
        body_text = body_html = ""
        if request.template_id:
            tpl = await self._template(ident, request.template_id)
            rendered = await self._render_row(ident, tpl, ctx, use=True)
            body_text = rendered.body_text
            # an inbox that sends plain text uses the template's text, never its HTML
            body_html = "" if inbox.plain_text_only else richtext.sanitize(rendered.body_html)
            if body_html and not body_text.strip():
                body_text = ""  # generated from the HTML when the mail is built
            subject = rendered.subject or subject  # made header-safe by _render_row
        signature = await d.repo.signature_for(ident.tenant_id, uuid.UUID(inbox_id))
        signature_text = reserved.render(signature.body_text, ctx).text if signature else ""
        signature_html = (
            richtext.sanitize(reserved.render(signature.body_html, ctx).text)
            if signature and not inbox.plain_text_only
            else ""
        )
        draft_id = d.ids.new()
        draft = {
            "tenant_id": uuid.UUID(ident.tenant_id),
            "id": draft_id,
            "ticket_id": uuid.UUID(view.id) if view else None,
            "inbox_id": uuid.UUID(inbox_id),
            "kind": kind,
            "answering_message_id": uuid.UUID(answering.message_id) if answering else None,
            # a stranger's Message-ID that cannot be written safely threads nothing
            "in_reply_to": "".join(mime.usable_message_ids([answering.rfc822_id]))
            if answering
            else "",
            "references": mime.usable_message_ids([*answering.references, answering.rfc822_id])[
                -20:
            ]
            if answering and answering.rfc822_id
            else [],
            "author_id": uuid.UUID(ident.operator_id),
            "author_name": ident.display_name,
            "created_at": now,
            "updated_at": now,
        }
        carried: list[uuid.UUID] = []
        async with d.db.transaction() as conn:
            await d.repo.insert_draft(conn, draft)
            if kind == "forward" and answering is not None:
                carried = await self._carry_over(
                    conn, ident, draft_id, answering.message_id, parsed, now
                )
            await d.repo.insert_revision(
                conn,
                {
                    "tenant_id": draft["tenant_id"],
                    "draft_id": draft_id,
                    "revision": 1,
                    "saved_at": now,
                    "saved_by": draft["author_id"],
                    "saved_by_name": ident.display_name,
                    "fence": request.fence or None,
                    "from_address": sender,
                    "from_name": mime.header_text(inbox_name),
                    "to_addrs": to,
                    "cc_addrs": cc,
                    "bcc_addrs": [],
                    "subject": subject,
                    "body_text": body_text,
                    "body_html": body_html,
                    "signature_text": signature_text,
                    "signature_html": signature_html,
                    "quote_text": quote_text,
                    "include_quote": bool(request.include_quote and quote_text),
                    "attachment_ids": carried,
                },
            )
            row = await d.repo.draft(conn, ident.tenant_id, draft_id)
            await self._draft_changed(conn, ident, row, "open", 1)
        d.outbox.wake()
        return await self._draft_pb(ident, row)

    async def _carry_over(
        self,
        conn: Any,
        ident: Identity,
        draft_id: uuid.UUID,
        message_id: str,
        parsed: Parsed,
        now: datetime,
    ) -> list[uuid.UUID]:
        """Forwarding: the original's attachments (those ingestion could decode) become
        the draft's, copied into composition's own store."""
        ids = []
        for meta in parsed.doc.get("attachments") or []:
            if not meta.get("decoded", True) or meta.get("disposition") == "inline":
                continue
            name, ctype, data = await self._d.peers.attachment(
                ident, message_id, int(meta["index"])
            )
            att_id = self._d.ids.new()
            await self._d.repo.add_attachment(
                conn,
                tenant_id=ident.tenant_id,
                attachment_id=att_id,
                draft_id=draft_id,
                filename=mime.header_text(name[:255]).strip() or "attachment",
                content_type=content_type_of(ctype),
                data=data,
                inline=False,
                content_id="",
                source="original",
                now=now,
            )
            ids.append(att_id)
        return ids

    # -- reading -----------------------------------------------------------------------

    async def GetDraft(
        self, request: composition_pb2.GetDraftRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        draft = await self._draft(ident, request.draft_id)
        if request.revision < 0:
            raise InvalidArgument("revision must not be negative", field="revision")
        return await self._draft_pb(ident, draft, request.revision)

    async def ListDrafts(
        self, request: composition_pb2.ListDraftsRequest, context: Context
    ) -> composition_pb2.ListDraftsResponse:
        ident = identity.require_operator()
        d = self._d
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        await d.peers.ticket(ident, str(ticket_id))  # NotFound unless the caller sees it
        rows = await d.repo.drafts_of(ident.tenant_id, ticket_id)
        return composition_pb2.ListDraftsResponse(
            drafts=[await self._draft_pb(ident, r, history=False) for r in rows]
        )

    # -- saving ------------------------------------------------------------------------

    async def SaveDraft(
        self, request: composition_pb2.SaveDraftRequest, context: Context
    ) -> composition_pb2.Draft:
        ident = identity.require_operator()
        d = self._d
        draft = await self._draft(ident, request.draft_id)
        await self._authorise_write(ident, draft, request.fence)
        inbox = await d.peers.inbox(ident, str(draft.inbox_id))
        addresses = inbox.addresses
        sender = mime.parse_address(request.from_address, "from_address")
        if sender.address.lower() not in {a.lower() for a in addresses}:
            raise InvalidArgument(
                "from_address must be one of the inbox's addresses", field="from_address"
            )
        from_name = mime.check_header_value(
            text_field(request.from_name.strip(), "from_name", 200), "from_name"
        )
        last = await d.repo.revision(d.db.pool, ident.tenant_id, draft.id, draft.revision)
        to, cc, bcc = (
            mime.parse_addresses(self._unmasked(ident, list(getattr(request, f)), last), f)
            for f in ("to", "cc", "bcc")
        )
        subject = mime.check_subject(request.subject)
        body_text = text_field(request.body_text, "body_text", BODY_MAX)
        body_html = _body_html(
            text_field(request.body_html, "body_html", HTML_MAX), inbox.plain_text_only
        )
        signature_text = text_field(request.signature_text, "signature_text", 20_000)
        signature_html = richtext.sanitize(
            text_field(request.signature_html, "signature_html", 50_000)
        )
        if len(request.attachment_ids) > ATTACHMENTS_COUNT:
            raise InvalidArgument(
                f"at most {ATTACHMENTS_COUNT} attachments", field="attachment_ids"
            )
        attachment_ids = list(
            dict.fromkeys(parse_uuid(a, "attachment_ids") for a in request.attachment_ids)
        )
        now = d.clock.now()
        async with d.db.transaction() as conn:
            draft = await self._draft(ident, request.draft_id, conn, lock=True)
            self._check_state(ident, draft)
            if request.base_revision and request.base_revision != draft.revision:
                raise FailedPrecondition(
                    f"the draft was saved meanwhile (revision {draft.revision}); reload it",
                    field="base_revision",
                )
            await self._fresh_fence(conn, draft, request.fence)
            atts = await d.repo.attachments(conn, ident.tenant_id, draft.id, attachment_ids)
            _check_images(body_html, atts)
            if sum(a.size for a in atts) > ATTACHMENTS_MAX:
                raise InvalidArgument(
                    "the attachments are larger than 25 MiB together", field="attachment_ids"
                )
            last = await d.repo.revision(conn, ident.tenant_id, draft.id, draft.revision)
            revision = draft.revision + 1
            await d.repo.insert_revision(
                conn,
                {
                    "tenant_id": draft.tenant_id,
                    "draft_id": draft.id,
                    "revision": revision,
                    "saved_at": now,
                    "saved_by": uuid.UUID(ident.operator_id),
                    "saved_by_name": ident.display_name,
                    "fence": request.fence or None,
                    "from_address": sender.address,
                    "from_name": from_name,
                    "to_addrs": [str(m) for m in to],
                    "cc_addrs": [str(m) for m in cc],
                    "bcc_addrs": [str(m) for m in bcc],
                    "subject": subject,
                    "body_text": body_text,
                    "body_html": body_html,
                    "signature_text": signature_text,
                    "signature_html": signature_html,
                    "quote_text": last.quote_text,
                    "include_quote": request.include_quote and bool(last.quote_text),
                    "attachment_ids": attachment_ids,
                },
            )
            draft = await d.repo.draft(conn, ident.tenant_id, draft.id)
            await self._draft_changed(conn, ident, draft, "open", revision)
        d.outbox.wake()
        return await self._draft_pb(ident, draft)

    async def DiscardDraft(
        self, request: composition_pb2.DiscardDraftRequest, context: Context
    ) -> composition_pb2.DiscardDraftResponse:
        ident = identity.require_operator()
        d = self._d
        draft = await self._draft(ident, request.draft_id)
        holds.check_discard(draft.state)
        await self._authorise_write(ident, draft, request.fence)
        async with d.db.transaction() as conn:
            draft = await self._draft(ident, request.draft_id, conn, lock=True)
            holds.check_discard(draft.state)
            await self._fresh_fence(conn, draft, request.fence)
            await d.repo.set_state(conn, ident.tenant_id, draft.id, "discarded", d.clock.now())
            await self._draft_changed(conn, ident, draft, "closed", draft.revision)
        d.outbox.wake()
        return composition_pb2.DiscardDraftResponse()


def _address_of(entry: str, field: str) -> str:
    """The address of a saved recipient entry (one saved before a check was added and
    refused now is judged by the checks' unsafe_header finding, not a 400 here)."""
    try:
        return mime.parse_address(entry, field).address
    except InvalidArgument:
        return entry.rpartition("<")[2].rstrip(">").strip()


def content_type_of(value: str) -> str:
    ctype = value.strip().lower() or "application/octet-stream"
    main, _, sub = ctype.partition("/")
    if not main or not sub or any(not (c.isalnum() or c in "-+.") for c in main + sub):
        return "application/octet-stream"
    return f"{main}/{sub}"[:100]


def _body_html(html: str, plain_text_only: bool) -> str:
    """A draft's HTML as stored: sanitised; "" when it shows nothing. An inbox that sends
    plain text only refuses HTML (the editor offers plain text there)."""
    clean = richtext.sanitize(html)
    if not richtext.has_content(clean):
        return ""
    if plain_text_only:
        raise InvalidArgument(
            "this inbox sends plain text only; send body_text without body_html",
            field="body_html",
        )
    return clean


def _check_images(html: str, atts: list[Attachment]) -> None:
    """Every cid: image of the HTML is an inline attachment of the draft."""
    inline = {a.content_id for a in atts if a.inline and a.content_id}
    for cid in richtext.cids(html):
        if cid not in inline:
            raise InvalidArgument(
                f"the image cid:{cid} is not an inline attachment of this draft; "
                "upload it with inline=true and list it in attachment_ids",
                field="body_html",
            )


def _html_text(html: str) -> str:
    """The text of HTML (for checks and diffs)."""
    return richtext.to_text(html)
