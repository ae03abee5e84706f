"""IngestionService over gRPC."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    common_pb2,
    events_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime import events, identity, permissions
from services.runtime.clock import Clock
from services.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.runtime.grpc_server import Context
from services.runtime.ids import IdGenerator, parse_uuid
from services.runtime.secrets import SecretBox

from . import archive, blocking, forms
from . import mailboxes as mbx
from .admin_repo import AdminRepo, Table
from .channel_intake import Inboxes
from .exports import ExportsApi
from .imap import ImapSupervisor
from .imports import ImportRepo, ImportRunner, NewImport
from .intake import IntakePipeline
from .mailboxes import Mailbox, MailboxRepo, MailboxStatus
from .store import BODIES_PENDING, Intake, RawStore
from .virus import Verdict

MAX_SECRET = 8192


def _administrator() -> identity.Identity:
    """Intake channels are administered by who may manage inboxes (SEC-4)."""
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_INBOXES, "manage intake channels")
    return ident


def _mailbox_pb(mb: Mailbox, row: MailboxStatus | None = None) -> ingestion_pb2.Mailbox:
    out = ingestion_pb2.Mailbox(
        id=mb.id,
        inbox_name=mb.inbox_name,
        settings=ingestion_pb2.MailboxSettings(
            inbox_id=mb.inbox_id,
            host=mb.host,
            port=mb.port,
            security=mb.security,
            username=mb.username,
            auth=mb.auth,
            folder=mb.folder,
            after_fetch=mb.after_fetch,
            move_to=mb.move_to,
            poll_interval_s=mb.poll_interval_s,
            enabled=mb.enabled,
        ),
    )
    if row is not None:
        out.state.state = row.state or ""
        out.state.last_error = row.last_error or ""
        out.state.fetched = row.fetched or 0
        out.state.last_uid = row.last_uid or 0
        if row.last_ok_at is not None:
            out.state.last_ok_at.FromDatetime(row.last_ok_at)
    return out


class IngestionApi(ExportsApi, ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(
        self,
        store: RawStore,
        mailboxes: MailboxRepo,
        secrets: SecretBox,
        supervisor: ImapSupervisor,
        accounts: grpc.aio.Channel,
        clock: Clock,
        ids: IdGenerator,
        imports: ImportRepo,
        runner: ImportRunner,
        import_max_bytes: int,
        pipeline: IntakePipeline,
        tickets: grpc.aio.Channel,
    ) -> None:
        self._pipeline = pipeline
        self._imports = imports
        self._runner = runner
        self._import_max = import_max_bytes
        self._store = store
        self._admin = AdminRepo(store.pool)
        self._mailboxes = mailboxes
        self._secrets = secrets
        self._supervisor = supervisor
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._inboxes = Inboxes(accounts)  # a form's inbox address, cached a minute
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._clock = clock
        self._ids = ids

    async def _inbox_name(self, ident: identity.Identity, inbox_id: str) -> str:
        """The inbox must be one of the caller's tenant (asked of accounts, its owner)."""
        try:
            resp = await self._accounts.ListInboxes(
                accounts_pb2.ListInboxesRequest(all=ident.may(permissions.MANAGE_INBOXES)),
                metadata=ident.metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts unavailable: {err.code().name}") from err
        for inbox in resp.inboxes:
            if inbox.id == inbox_id:
                return str(inbox.name)
        raise NotFound("no such inbox", field="inbox_id")

    async def _require_message(self, ident: identity.Identity, message_id: uuid.UUID) -> None:
        """An operator sees a mail only where tickets, which files it, says they may (the
        ticket it is in now belongs to one of their inboxes): NotFound otherwise."""
        if not ident.operator_id:
            return  # another service asking
        try:
            await self._tickets.CheckMessageAccess(
                tickets_pb2.CheckMessageAccessRequest(message_id=str(message_id)),
                metadata=ident.metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound("no such message", field="message_id") from None
            raise Unavailable(f"tickets unavailable: {err.code().name}") from err

    async def _mailbox_of(
        self,
        ident: identity.Identity,
        request: ingestion_pb2.CreateMailboxRequest | ingestion_pb2.UpdateMailboxRequest,
        mailbox_id: str = "",
        stored_secret: bytes = b"",
    ) -> Mailbox:
        """The mailbox a Create- or UpdateMailboxRequest describes, checked (its secret
        sealed; `stored_secret` is kept when the request has none)."""
        st = request.settings
        inbox_id = str(parse_uuid(st.inbox_id, "inbox_id"))
        folder = st.folder or "INBOX"
        poll = st.poll_interval_s or 60
        mbx.validate(
            host=st.host,
            port=st.port,
            security=st.security,
            username=st.username,
            auth=st.auth,
            folder=folder,
            after_fetch=st.after_fetch or "seen",
            move_to=st.move_to,
            poll_interval_s=poll,
        )
        # where the host leads (issue 16): checked when saved and tried, and again when
        # the fetcher connects
        await self._supervisor.connect_policy.check_host(st.host, "host")
        if len(request.secret) > MAX_SECRET or not (request.secret or stored_secret):
            raise InvalidArgument("secret (password or token) is required", field="secret")
        inbox_name = await self._inbox_name(ident, inbox_id)
        mailbox_id = mailbox_id or self._ids.new_str()
        return Mailbox(
            id=mailbox_id,
            tenant_id=ident.tenant_id,
            inbox_id=inbox_id,
            inbox_name=inbox_name,
            host=st.host,
            port=st.port,
            security=st.security,
            username=st.username,
            auth=st.auth,
            secret=(
                self._secrets.seal(request.secret, mailbox_id) if request.secret else stored_secret
            ),
            folder=folder,
            after_fetch=st.after_fetch or "seen",
            move_to=st.move_to,
            poll_interval_s=poll,
            enabled=st.enabled,
        )

    async def _stored_mailbox(self, ident: identity.Identity, mailbox_id: str) -> Mailbox:
        mb = await self._mailboxes.get(str(parse_uuid(mailbox_id, "mailbox_id")))
        if mb is None or mb.tenant_id != ident.tenant_id:
            raise NotFound("no such mailbox", field="mailbox_id")
        return mb

    async def CreateMailbox(
        self, request: ingestion_pb2.CreateMailboxRequest, context: Context
    ) -> ingestion_pb2.Mailbox:
        ident = _administrator()
        mb = await self._mailbox_of(ident, request)
        await self._mailboxes.create(mb, self._clock.now())
        self._supervisor.wake()
        return _mailbox_pb(mb)

    async def TestMailbox(
        self, request: ingestion_pb2.TestMailboxRequest, context: Context
    ) -> common_pb2.ConnectionTestResult:
        """Connect, log in and select the folder — of a stored mailbox, or of settings
        not saved yet — and say how it went; nothing is fetched or changed."""
        ident = _administrator()
        if request.mailbox_id and request.HasField("settings"):
            stored = await self._stored_mailbox(ident, request.mailbox_id)
            mb = await self._mailbox_of(ident, request.settings, stored.id, stored.secret)
        elif request.mailbox_id:
            mb = await self._stored_mailbox(ident, request.mailbox_id)
        else:
            mb = await self._mailbox_of(ident, request.settings)
        ok, step, detail, elapsed_ms = await self._supervisor.test(mb)
        return common_pb2.ConnectionTestResult(
            ok=ok, step=step, detail=detail, elapsed_ms=elapsed_ms
        )

    async def ListMailboxes(
        self, request: ingestion_pb2.ListMailboxesRequest, context: Context
    ) -> ingestion_pb2.ListMailboxesResponse:
        ident = _administrator()
        rows = await self._mailboxes.list_for_tenant(ident.tenant_id)
        return ingestion_pb2.ListMailboxesResponse(mailboxes=[_mailbox_pb(mb, r) for mb, r in rows])

    async def UpdateMailbox(
        self, request: ingestion_pb2.UpdateMailboxRequest, context: Context
    ) -> ingestion_pb2.Mailbox:
        ident = _administrator()
        stored = await self._stored_mailbox(ident, request.mailbox_id)
        mb = await self._mailbox_of(ident, request, stored.id, stored.secret)
        if not await self._mailboxes.update(mb, self._clock.now()):
            raise NotFound("no such mailbox", field="mailbox_id")
        self._supervisor.wake()
        return _mailbox_pb(mb)

    async def DeleteMailbox(
        self, request: ingestion_pb2.DeleteMailboxRequest, context: Context
    ) -> ingestion_pb2.DeleteMailboxResponse:
        ident = _administrator()
        mailbox_id = parse_uuid(request.mailbox_id, "mailbox_id")
        if not await self._mailboxes.delete(ident.tenant_id, mailbox_id):
            raise NotFound("no such mailbox", field="mailbox_id")
        self._supervisor.wake()
        return ingestion_pb2.DeleteMailboxResponse()

    async def GetRawMessage(
        self, request: ingestion_pb2.GetRawMessageRequest, context: Context
    ) -> ingestion_pb2.GetRawMessageResponse:
        ident = identity.require_tenant()
        message_id = parse_uuid(request.message_id, "message_id")
        if ident.operator_id:  # the original holds every address and attachment
            identity.require_permission(
                ident, permissions.DOWNLOAD_ATTACHMENTS, "download original mails"
            )
            identity.require_permission(
                ident, permissions.SEE_CUSTOMER_ADDRESSES, "download original mails"
            )
        await self._require_message(ident, message_id)
        row = await self._store.get(ident.tenant_id, message_id)
        if row is None:
            raise NotFound("no such message", field="message_id")
        verdict = Verdict.from_row(row)
        if verdict.infected:  # the original holds the infected attachments too
            raise FailedPrecondition(verdict.refusal("its original"), field="message_id")
        resp = ingestion_pb2.GetRawMessageResponse(
            message_id=str(row["id"]),
            raw=bytes(row["raw"] or b""),
            channel=row["channel"],
        )
        if row["summary"] is not None:
            resp.mail.CopyFrom(events_pb2.MailSummary.FromString(bytes(row["summary"])))
        resp.received_at.FromDatetime(row["received_at"])
        return resp

    async def GetMessage(
        self, request: ingestion_pb2.GetMessageRequest, context: Context
    ) -> ingestion_pb2.GetMessageResponse:
        ident = identity.require_tenant()
        message_id = parse_uuid(request.message_id, "message_id")
        await self._require_message(ident, message_id)
        row = await self._store.get(ident.tenant_id, message_id)
        if row is None:
            raise NotFound("no such message", field="message_id")
        if row["state"] == "stored":
            # message.received is published just before the completion commits: a reader
            # that quick (routing, for a rule reading attachments) asks again shortly.
            raise Unavailable("the mail is still being parsed; try again shortly")
        parsed = row["parsed"]
        if parsed and parsed.get(BODIES_PENDING):
            # Intake kept the document without its bodies: they are parsed again from the
            # raw bytes now (the HTML sanitised), and the whole document kept from now on.
            parsed = (await self._pipeline.parse(bytes(row["raw"] or b""), full=True)).to_json()
            await self._store.keep_document(ident.tenant_id, message_id, parsed)
        if parsed is not None:  # the verdict may come after the parse: read it now
            parsed = {**parsed, "virus_scan": Verdict.from_row(row).to_json()}
        resp = ingestion_pb2.GetMessageResponse(
            message_id=str(row["id"]),
            channel=row["channel"],
            parsed_json=json.dumps(parsed, ensure_ascii=False) if parsed else "",
        )
        resp.received_at.FromDatetime(row["received_at"])
        return resp

    async def GetAttachment(
        self, request: ingestion_pb2.GetAttachmentRequest, context: Context
    ) -> ingestion_pb2.GetAttachmentResponse:
        ident = identity.require_tenant()
        message_id = parse_uuid(request.message_id, "message_id")
        if ident.operator_id:
            identity.require_permission(
                ident, permissions.DOWNLOAD_ATTACHMENTS, "download attachments"
            )
        await self._require_message(ident, message_id)
        row = await self._store.attachment(ident.tenant_id, message_id, request.index)
        if row is None:
            raise NotFound("no such attachment", field="index")
        verdict = Verdict.from_row(row)
        if verdict.infected:  # every attachment of such a mail: what else it hides is unknown
            raise FailedPrecondition(verdict.refusal("its attachments"), field="message_id")
        meta = row["meta"]
        return ingestion_pb2.GetAttachmentResponse(
            filename=str(meta.get("filename") or f"attachment-{request.index}"),
            content_type=str(meta.get("content_type") or "application/octet-stream"),
            data=bytes(row["data"]),
        )

    async def CreateImport(
        self, request_iterator: AsyncIterator[ingestion_pb2.ImportChunk], context: Context
    ) -> ingestion_pb2.ImportJob:
        ident = _administrator()
        header: ingestion_pb2.ImportHeader | None = None
        parts: list[bytes] = []
        size = 0
        async for chunk in request_iterator:
            if header is None:
                if not chunk.HasField("header"):
                    raise InvalidArgument("the first chunk must carry the header", field="header")
                header = chunk.header
            size += len(chunk.data)
            if size > self._import_max:
                raise InvalidArgument(
                    f"the file is larger than {self._import_max} bytes", field="data"
                )
            parts.append(chunk.data)
        if header is None:
            raise InvalidArgument("no file was sent", field="data")
        data = b"".join(parts)
        if not data:
            raise InvalidArgument("the file is empty", field="data")
        inbox_id = str(parse_uuid(header.inbox_id, "inbox_id"))
        filename = "".join(c for c in header.filename if c.isprintable())[:255] or "upload"
        kind = header.kind or archive.detect(data, filename)
        if kind not in archive.KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(archive.KINDS)}", field="kind")
        inbox_name = await self._inbox_name(ident, inbox_id)
        job_id = self._ids.new_str()
        job = await self._imports.create(
            NewImport(job_id, ident.tenant_id, inbox_id, inbox_name, filename, kind, data),
            self._clock.now(),
        )
        self._runner.hand_over(uuid.UUID(job_id), data)
        return job

    async def GetImport(
        self, request: ingestion_pb2.GetImportRequest, context: Context
    ) -> ingestion_pb2.ImportJob:
        ident = _administrator()
        job = await self._imports.get(ident.tenant_id, parse_uuid(request.import_id, "import_id"))
        if job is None:
            raise NotFound("no such import", field="import_id")
        return job

    async def ListImports(
        self, request: ingestion_pb2.ListImportsRequest, context: Context
    ) -> ingestion_pb2.ListImportsResponse:
        ident = _administrator()
        jobs = await self._imports.list_for_tenant(ident.tenant_id)
        return ingestion_pb2.ListImportsResponse(imports=jobs)

    # -- web inquiry forms -------------------------------------------------------------

    async def CreateForm(
        self, request: ingestion_pb2.CreateFormRequest, context: Context
    ) -> ingestion_pb2.Form:
        ident = _administrator()
        name = forms._ONE_LINE.sub(" ", request.name).strip()
        if not name or len(name) > 200:
            raise InvalidArgument("name is required (at most 200 characters)", field="name")
        redirect = forms.check_redirect(request.redirect_url)
        inbox_id = str(parse_uuid(request.inbox_id, "inbox_id"))
        inbox_name = await self._inbox_name(ident, inbox_id)
        return await self._admin.create_form(
            form_id=self._ids.new(),
            tenant_id=ident.tenant_id,
            inbox=common_pb2.InboxRef(id=inbox_id, name=inbox_name),
            name=name,
            redirect_url=redirect,
            now=self._clock.now(),
        )

    async def _delete_owned(self, table: Table, raw_id: str, field: str, what: str) -> None:
        ident = _administrator()
        if not await self._admin.delete(table, ident.tenant_id, parse_uuid(raw_id, field)):
            raise NotFound(f"no such {what}", field=field)

    async def ListForms(
        self, request: ingestion_pb2.ListFormsRequest, context: Context
    ) -> ingestion_pb2.ListFormsResponse:
        ident = _administrator()
        return ingestion_pb2.ListFormsResponse(forms=await self._admin.forms(ident.tenant_id))

    async def DeleteForm(
        self, request: ingestion_pb2.DeleteFormRequest, context: Context
    ) -> ingestion_pb2.DeleteFormResponse:
        await self._delete_owned("forms", request.form_id, "form_id", "form")
        return ingestion_pb2.DeleteFormResponse()

    async def SubmitForm(
        self, request: ingestion_pb2.SubmitFormRequest, context: Context
    ) -> ingestion_pb2.SubmitFormResponse:
        """Public: the form id alone names the tenant and the inbox."""
        form = await self._admin.enabled_form(parse_uuid(request.form_id, "form_id"))
        if form is None:
            raise NotFound("no such form", field="form_id")
        submission = forms.read([(f.name, f.value) for f in request.fields])
        submission_id = self._ids.new_str()
        if submission.is_bot:  # answered like a success, kept nowhere
            return ingestion_pb2.SubmitFormResponse(
                submission_id=submission_id, redirect_url=form.redirect_url
            )
        tenant_id = str(form.tenant_id)
        inbox = form.inbox
        _, address = await self._inboxes.get(tenant_id, inbox.id)
        raw = forms.to_mail(
            submission,
            form_name=form.name,
            inbox_address=address,
            submission_id=submission_id,
            now=self._clock.now(),
            client_address=request.client_address,
        )
        submitter = common_pb2.Address(name=submission.name, address=submission.email)

        def followups(message_id: str, received: events_pb2.EventEnvelope) -> list[Any]:
            payload = events_pb2.FormSubmitted(
                form_id=str(form.id),
                form_name=form.name,
                submission_id=submission_id,
                message_id=message_id,
                inbox=inbox,
                submitter=submitter,
            )
            return [
                events.caused_by(
                    events.FORM_SUBMITTED,
                    received,
                    event_id=self._ids.new_str(),
                    occurred_at=self._clock.now(),
                    payload=payload,
                    actor=common_pb2.Actor(
                        kind=common_pb2.Actor.KIND_CUSTOMER,
                        id=submission.email,
                        display=submission.name or submission.email,
                    ),
                )
            ]

        [accepted] = await self._pipeline.accept(
            [
                Intake(
                    tenant_id=tenant_id,
                    inbox=inbox,
                    channel="form",
                    raw=raw,
                    envelope_from=submission.email,
                    envelope_recipients=[address],
                    followups=followups,
                )
            ]
        )
        return ingestion_pb2.SubmitFormResponse(
            submission_id=submission_id,
            message_id=accepted.message_id,
            redirect_url=form.redirect_url,
        )

    async def RecordSent(
        self, request: ingestion_pb2.RecordSentRequest, context: Context
    ) -> ingestion_pb2.RecordSentResponse:
        ident = identity.require_tenant()
        if ident.operator_id:
            raise PermissionDenied("only outbound records sent mail")
        if not request.raw or len(request.raw) > 60 * 1024 * 1024:
            raise InvalidArgument("raw is required (at most 60 MiB)", field="raw")
        inbox_id = str(parse_uuid(request.inbox_id, "inbox_id"))
        ticket_id = str(parse_uuid(request.ticket_id, "ticket_id")) if request.ticket_id else ""
        name = await self._inbox_name(ident, inbox_id)
        sent_at = None
        if request.HasField("sent_at"):
            sent_at = min(request.sent_at.ToDatetime(tzinfo=UTC), self._clock.now())
        [accepted] = await self._pipeline.accept(
            [
                Intake(
                    tenant_id=ident.tenant_id,
                    inbox=common_pb2.InboxRef(id=inbox_id, name=name),
                    channel="sent",
                    raw=bytes(request.raw),
                    envelope_from=request.envelope_from[:998],
                    envelope_recipients=[r[:998] for r in request.recipients[:200]],
                    use_mail_date=True,
                    received_at=sent_at,
                    ticket_id=ticket_id,
                )
            ]
        )
        return ingestion_pb2.RecordSentResponse(
            message_id=accepted.message_id, duplicate=accepted.duplicate
        )

    # -- blocked senders ---------------------------------------------------------------

    async def AddBlock(
        self, request: ingestion_pb2.AddBlockRequest, context: Context
    ) -> ingestion_pb2.Block:
        ident = _administrator()
        value = blocking.normalise(request.kind, request.value)
        inbox = None
        if request.inbox_id:
            inbox = uuid.UUID(str(parse_uuid(request.inbox_id, "inbox_id")))
            await self._inbox_name(ident, str(inbox))
        return await self._admin.add_block(
            block_id=self._ids.new(),
            tenant_id=ident.tenant_id,
            inbox_id=inbox,
            kind=request.kind,
            value=value,
            now=self._clock.now(),
        )

    async def ListBlocks(
        self, request: ingestion_pb2.ListBlocksRequest, context: Context
    ) -> ingestion_pb2.ListBlocksResponse:
        ident = _administrator()
        return ingestion_pb2.ListBlocksResponse(blocks=await self._admin.blocks(ident.tenant_id))

    async def DeleteBlock(
        self, request: ingestion_pb2.DeleteBlockRequest, context: Context
    ) -> ingestion_pb2.DeleteBlockResponse:
        await self._delete_owned("blocklist", request.block_id, "block_id", "block")
        return ingestion_pb2.DeleteBlockResponse()
