"""The CSV-import part of TicketsService (issue 20, OUT-6): a file streamed in, stored as
a job at once and applied in the background (`contact_imports.ContactImportRunner`); the
job's progress and errors per line. manage_outreach."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator

from switchboard.v1 import tickets_pb2

from services.runtime import log
from services.runtime.errors import InvalidArgument, ResourceExhausted
from services.runtime.grpc_server import Context
from services.runtime.ids import parse_uuid

from . import contact_csv, contact_imports, outreach_repo
from .api_outreach import require_outreach
from .deps import Deps


class ImportsApi:
    _deps: Deps

    async def StartContactImport(
        self, request_iterator: AsyncIterator[tickets_pb2.ContactImportChunk], context: Context
    ) -> tickets_pb2.ContactImport:
        ident = require_outreach()
        list_id: str | None = None
        parts: list[bytes] = []
        size = 0
        async for chunk in request_iterator:
            if list_id is None:
                if chunk.WhichOneof("part") != "list_id":
                    raise InvalidArgument("the first chunk must name the list", field="list_id")
                list_id = chunk.list_id
                continue
            size += len(chunk.data)
            if size > contact_csv.MAX_BYTES:
                raise ResourceExhausted(
                    f"a CSV file is at most {contact_csv.MAX_BYTES} bytes", field="csv"
                )
            parts.append(chunk.data)
        if list_id is None:
            raise InvalidArgument("no file was sent", field="csv")
        lid = parse_uuid(list_id, "list_id")
        d = self._deps
        data = b"".join(parts)
        await outreach_repo.get_list(d.db.pool, ident.tenant_id, lid)
        # the file as a whole is checked now (encoding, a header naming the address column);
        # its lines in the background
        text = contact_csv.decode(data)
        header = next(csv.reader(io.StringIO(text[:100_000], newline="")), None)
        if header is None:
            raise InvalidArgument("the file is empty", field="csv")
        contact_csv.columns(header, await outreach_repo.fields(d.db.pool, ident.tenant_id))
        async with d.db.transaction() as conn:
            await outreach_repo.get_list(conn, ident.tenant_id, lid, lock=True)
            job = await contact_imports.create(
                conn, ident.tenant_id, d.ids.new(), lid, data, ident.operator_id, d.clock.now()
            )
        if d.wake_imports is not None:
            d.wake_imports()
        log.get("tickets.imports").info(
            "contact import started", import_id=job.id, list_id=str(lid), size=len(data)
        )
        return job

    async def GetContactImport(
        self, request: tickets_pb2.GetContactImportRequest, context: Context
    ) -> tickets_pb2.ContactImport:
        ident = require_outreach()
        import_id = parse_uuid(request.import_id, "import_id")
        return await contact_imports.get(self._deps.db.pool, ident.tenant_id, import_id)
