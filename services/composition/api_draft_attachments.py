"""A draft's attachments (CMP-4): uploaded in chunks (a header first, at most 25 MiB a
file; images may be inline, shown in the body by their Content-ID) and read back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchboard.v1 import composition_pb2

from services.runtime import identity
from services.runtime import mail as mime
from services.runtime.errors import InvalidArgument
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from .api import text_field
from .api_drafts import ATTACHMENT_MAX, DraftsApi, attachment_pb, content_type_of


class DraftAttachmentsApi(DraftsApi):
    async def UploadAttachment(
        self, request_iterator: AsyncIterator[composition_pb2.AttachmentChunk], context: Context
    ) -> composition_pb2.DraftAttachment:
        ident = identity.require_operator()
        d = self._d
        header = None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request_iterator:
            if chunk.WhichOneof("part") == "header":
                if header is not None:
                    raise InvalidArgument("one header, first", field="header")
                header = chunk.header
                continue
            if header is None:
                raise InvalidArgument("the header comes first", field="header")
            size += len(chunk.data)
            if size > ATTACHMENT_MAX:
                raise InvalidArgument("an attachment is at most 25 MiB", field="data")
            chunks.append(chunk.data)
        if header is None:
            raise InvalidArgument("the header is missing", field="header")
        filename = mime.check_header_value(
            text_field(header.filename.strip(), "filename", 255, required=True), "filename"
        )
        content_type = content_type_of(header.content_type)
        if header.inline and not content_type.startswith("image/"):
            raise InvalidArgument("only images are shown inline", field="inline")
        draft = await self._draft(ident, header.draft_id)
        await self._authorise_write(ident, draft, header.fence)
        async with d.db.transaction() as conn:
            await self._fresh_fence(conn, draft, header.fence)
            att_id = d.ids.new()
            row = await d.repo.add_attachment(
                conn,
                tenant_id=ident.tenant_id,
                attachment_id=att_id,
                draft_id=draft.id,
                filename=filename,
                content_type=content_type,
                data=b"".join(chunks),
                inline=header.inline,
                content_id=f"img-{att_id.hex[:16]}@switchboard" if header.inline else "",
                source="upload",
                now=d.clock.now(),
            )
        return attachment_pb(row)

    async def GetDraftAttachment(
        self, request: composition_pb2.GetDraftAttachmentRequest, context: Context
    ) -> composition_pb2.GetDraftAttachmentResponse:
        ident = identity.require_operator()
        draft = await self._draft(ident, request.draft_id)
        row, data = await self._d.repo.attachment_data(
            ident.tenant_id, draft.id, parse_uuid(request.attachment_id, "attachment_id")
        )
        return composition_pb2.GetDraftAttachmentResponse(attachment=attachment_pb(row), data=data)
