"""The exports' part of TicketsService (issue 19, DAT-1): every ticket, or every message
filed in one, received in a period, streamed in batches of rows (reporting's export jobs
write them to CSV). Scoped by the caller's tenant and the inboxes they see."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from switchboard.v1 import tickets_pb2

from services.runtime import identity
from services.runtime.errors import InvalidArgument
from services.runtime.export_rows import (
    decode_cursor,
    inbox_scope,
    period_bounds,
    prefetching,
)
from services.runtime.grpc_server import Context

from .api_tickets import TicketsCoreApi
from .export_rows import ExportRows, Scope

BATCH_DEFAULT = 5000
BATCH_MAX = 10_000
B = TypeVar("B", tickets_pb2.TicketExportBatch, tickets_pb2.MessageExportBatch)


async def _stream(
    request: tickets_pb2.ExportRowsRequest,
    fetch: Callable[..., Awaitable[B]],
    count: Callable[..., Awaitable[int]],
    empty: Callable[[], B],
) -> AsyncIterator[B]:
    """Batches until the period is exhausted; the first (possibly empty) carries the
    total when the stream starts without a cursor. A batch's next_cursor is where the
    next begins ("" on an empty batch)."""
    ident = identity.require_tenant()
    start, end = period_bounds(request.period)
    size = request.batch_size or BATCH_DEFAULT
    if not 1 <= size <= BATCH_MAX:
        raise InvalidArgument(f"batch_size is 1..{BATCH_MAX}", field="batch_size")
    after = decode_cursor(request.cursor)
    inboxes = inbox_scope(ident, request.inbox_ids)
    if inboxes is not None and not inboxes:  # none of the inboxes asked is the caller's
        yield empty()
        return
    scope = Scope(ident.tenant_id, start, end, inboxes)
    total = await count(scope) if after is None else 0

    def following(batch: B) -> Awaitable[B] | None:
        if len(batch.id) < size:
            return None
        return fetch(scope, decode_cursor(batch.next_cursor), size)

    first = True
    async for batch in prefetching(fetch(scope, after, size), following):
        if first:
            batch.total = total
        if len(batch.id) or first:
            yield batch
        first = False


class ExportsApi(TicketsCoreApi):
    async def ExportTickets(
        self, request: tickets_pb2.ExportRowsRequest, context: Context
    ) -> AsyncIterator[tickets_pb2.TicketExportBatch]:
        rows = ExportRows(self._deps.db.pool)
        async for batch in _stream(
            request, rows.tickets, rows.count_tickets, tickets_pb2.TicketExportBatch
        ):
            yield batch

    async def ExportMessages(
        self, request: tickets_pb2.ExportRowsRequest, context: Context
    ) -> AsyncIterator[tickets_pb2.MessageExportBatch]:
        rows = ExportRows(self._deps.db.pool)
        async for batch in _stream(
            request, rows.messages, rows.count_messages, tickets_pb2.MessageExportBatch
        ):
            yield batch
