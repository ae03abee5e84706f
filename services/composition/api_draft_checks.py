"""Reading a draft before it goes (CMP-5, CMP-6): the pre-send checks, the preview of the
exact mail as it will be sent, and the diff between two revisions."""

from __future__ import annotations

from switchboard.v1 import composition_pb2

from services.runtime import identity
from services.runtime import mail as mime
from services.runtime.channel_address import is_pseudo_address
from services.runtime.errors import InvalidArgument
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity

from . import checks, diff, richtext
from .api import ts
from .api_drafts import (
    SOURCE_MAX,
    DraftsApi,
    _address_of,
    _address_pb,
    _html_text,
    attachment_pb,
)
from .records import Attachment, Draft, Revision


class DraftChecksApi(DraftsApi):
    # -- checks, preview, diff ---------------------------------------------------------

    async def _current(
        self, ident: Identity, raw_id: str
    ) -> tuple[Draft, Revision, list[Attachment]]:
        d = self._d
        draft = await self._draft(ident, raw_id)
        rev = await d.repo.revision(d.db.pool, ident.tenant_id, draft.id, draft.revision)
        atts = await d.repo.attachments(
            d.db.pool, ident.tenant_id, draft.id, list(rev.attachment_ids)
        )
        return draft, rev, atts

    async def CheckDraft(
        self, request: composition_pb2.CheckDraftRequest, context: Context
    ) -> composition_pb2.CheckDraftResponse:
        ident = identity.require_operator()
        d = self._d
        draft, rev, atts = await self._current(ident, request.draft_id)
        participants: tuple[str, ...] | None = None
        if draft.ticket_id is not None:
            participants = (await d.peers.ticket(ident, str(draft.ticket_id))).participants
        out = checks.Outgoing(
            subject=rev.subject,
            body=rev.body_text + ("\n" + _html_text(rev.body_html) if rev.body_html else ""),
            signature=rev.signature_text,
            to=[_address_of(a, "to") for a in rev.to_addrs],
            cc=[_address_of(a, "cc") for a in rev.cc_addrs],
            bcc=[_address_of(a, "bcc") for a in rev.bcc_addrs],
            attachment_count=sum(1 for a in atts if not a.inline),
            headers=[
                ("subject", rev.subject),
                ("from_name", rev.from_name),
                *(("to", a) for a in rev.to_addrs),
                *(("cc", a) for a in rev.cc_addrs),
                *(("bcc", a) for a in rev.bcc_addrs),
                *(("attachments", a.filename) for a in atts),
            ],
            changed_by_other=(
                checks.Change(draft.changed_by_name, draft.change)
                if draft.changed_by is not None and str(draft.changed_by) != ident.operator_id
                else None
            ),
        )
        findings = checks.run(out, await self.settings_of(ident.tenant_id), participants)
        return composition_pb2.CheckDraftResponse(
            findings=[
                composition_pb2.CheckFinding(
                    code=f.code,
                    severity=f.severity,
                    message=f.message,
                    field=f.field,
                    detail=f.detail,
                )
                for f in findings
            ],
            blocked=any(f.severity == "blocking" for f in findings),
        )

    async def outgoing(
        self, ident: Identity, draft: Draft, rev: Revision, atts: list[Attachment]
    ) -> mime.Outgoing:
        inbox = await self._d.peers.inbox(ident, str(draft.inbox_id))
        # a reply to a channel conversation (issue 21) is plain text: what was written only
        channel = any(is_pseudo_address(a) for a in [*rev.to_addrs, *rev.cc_addrs])
        html = "" if channel else richtext.compose_html(rev, plain_text_only=inbox.plain_text_only)
        shown = set(richtext.cids(html))
        # an inline image is a part of the HTML: without the HTML showing it, it is not sent
        atts = [a for a in atts if not a.inline or a.content_id in shown]
        blobs = await self._d.repo.blobs([bytes(a.sha256) for a in atts])
        return mime.Outgoing(
            sender=mime.Mailbox(rev.from_name, rev.from_address),
            to=mime.parse_addresses(list(rev.to_addrs), "to"),
            cc=mime.parse_addresses(list(rev.cc_addrs), "cc"),
            subject=rev.subject,
            text=richtext.channel_text(rev) if channel else richtext.compose_text(rev),
            html=html,
            parts=[
                mime.Part(
                    a.filename,
                    a.content_type,
                    blobs[bytes(a.sha256)],
                    a.inline,
                    a.content_id,
                )
                for a in atts
            ],
            in_reply_to=draft.in_reply_to,
            references=list(draft.references),
        )

    async def PreviewDraft(
        self, request: composition_pb2.PreviewDraftRequest, context: Context
    ) -> composition_pb2.PreviewDraftResponse:
        """The mail as it will go out, built by the same code outbound will use; only the
        Message-ID and Date here are examples (outbound mints the real ones)."""
        ident = identity.require_operator()
        draft, rev, atts = await self._current(ident, request.draft_id)
        domain = rev.from_address.rpartition("@")[2] or "switchboard.local"
        out = await self.outgoing(ident, draft, rev, atts)
        now = self._d.clock.now()
        msg = mime.build(out, message_id=f"preview.{draft.id}@{domain}", date=now)
        raw = msg.as_bytes()
        text_part = msg.get_body(("plain",))
        html_part = msg.get_body(("html",))
        # the source as text: 8-bit parts are UTF-8 (what build writes), cut where a big
        # attachment would make the answer too large to read or to carry
        source = raw[: SOURCE_MAX + 4].decode("utf-8", "replace")
        resp = composition_pb2.PreviewDraftResponse(
            headers=[composition_pb2.Header(name=n, value=v) for n, v in mime.headers_of(msg)],
            text=text_part.get_content() if text_part is not None else "",
            html=richtext.sanitize(html_part.get_content()) if html_part is not None else "",
            attachments=[attachment_pb(a) for a in atts],
            bcc=list(rev.bcc_addrs),
            size_bytes=len(raw),
            sender=_address_pb(out.sender),
            to=[_address_pb(m) for m in out.to],
            cc=[_address_pb(m) for m in out.cc],
            subject=out.subject,
            source=source[:SOURCE_MAX],
            source_truncated=len(source) > SOURCE_MAX,
        )
        ts(now, resp.date)
        return resp

    async def DiffDraft(
        self, request: composition_pb2.DiffDraftRequest, context: Context
    ) -> composition_pb2.DiffDraftResponse:
        ident = identity.require_operator()
        d = self._d
        draft = await self._draft(ident, request.draft_id)
        if request.from_revision < 1 or request.to_revision < 0:
            raise InvalidArgument("from_revision is 1 or more", field="from_revision")
        a = await d.repo.revision(d.db.pool, ident.tenant_id, draft.id, request.from_revision)
        b = await d.repo.revision(
            d.db.pool, ident.tenant_id, draft.id, request.to_revision or draft.revision
        )
        out = composition_pb2.DiffDraftResponse()
        pairs = {
            "subject": (a.subject, b.subject),
            "body_text": (a.body_text, b.body_text),
            "body_html": (_html_text(a.body_html), _html_text(b.body_html)),
            "signature_text": (a.signature_text, b.signature_text),
            "to": (", ".join(a.to_addrs), ", ".join(b.to_addrs)),
            "cc": (", ".join(a.cc_addrs), ", ".join(b.cc_addrs)),
            "bcc": (", ".join(a.bcc_addrs), ", ".join(b.bcc_addrs)),
        }
        for name, (old, new) in pairs.items():
            if old == new:
                continue
            out.fields.add(
                field=name,
                ops=[composition_pb2.DiffOp(op=o.op, text=o.text) for o in diff.diff(old, new)],
            )
        if list(a.attachment_ids) != list(b.attachment_ids):
            names = {}
            for rev in (a, b):
                for att in await d.repo.attachments(
                    d.db.pool, ident.tenant_id, draft.id, list(rev.attachment_ids)
                ):
                    names[att.id] = att.filename
            old = "\n".join(names[i] for i in a.attachment_ids)
            new = "\n".join(names[i] for i in b.attachment_ids)
            out.fields.add(
                field="attachments",
                ops=[composition_pb2.DiffOp(op=o.op, text=o.text) for o in diff.diff(old, new)],
            )
        return out
