"""ExportRawMails (issue 19, DAT-1): the raw bytes of every mail kept for some inboxes
(received, and sent through RecordSent) in a period, exactly as stored, oldest first by
(received_at, id) — reporting's export jobs write them into a zip of .eml files or an
mbox. Read by the keyset index of migration 010; infected mails are left out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg
from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import ingestion_pb2

from services.runtime import identity, permissions
from services.runtime.errors import InvalidArgument
from services.runtime.events import INFECTED
from services.runtime.export_rows import (
    decode_cursor,
    encode_cursor,
    inbox_scope,
    period_bounds,
    prefetching,
)
from services.runtime.grpc_server import Context

if TYPE_CHECKING:
    from .store import RawStore

BATCH_BYTES_DEFAULT = 4 * 1024 * 1024
BATCH_BYTES_MAX = 64 * 1024 * 1024
ROWS_PER_QUERY = 500

_WHERE = (
    "m.tenant_id = $1 AND m.received_at >= $2 AND m.received_at < $3 "
    "AND ($4::uuid[] IS NULL OR m.inbox_id = ANY($4::uuid[])) "
    f"AND m.scan_state <> '{INFECTED}'"
)
_AFTER = " AND (m.received_at, m.id) > ($7, $8)"
# The next rows in order, then only as many as fit in the batch's bytes (at least one),
# with their bytes (inline, or their content-addressed blob).
_PAGE = (
    "WITH page AS (SELECT m.id, m.received_at, m.size_bytes FROM raw_messages m "
    "WHERE {where} ORDER BY m.received_at, m.id LIMIT $6), "
    "sized AS (SELECT id, received_at, size_bytes, "
    "sum(size_bytes) OVER (ORDER BY received_at, id) AS upto FROM page) "
    "SELECT m.id::text AS id, m.inbox_id::text AS inbox_id, m.channel, m.received_at, "
    "(extract(epoch FROM m.received_at) * 1000000)::int8 AS us, "
    "m.envelope_from, coalesce(m.raw, b.data, b.data_plain) AS raw "
    "FROM sized s JOIN raw_messages m ON m.tenant_id = $1 AND m.id = s.id "
    "LEFT JOIN blobs b ON b.sha256 = m.sha256 "
    "WHERE s.upto - s.size_bytes < $5 ORDER BY s.received_at, s.id"
)


class RawExports:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def count(
        self, tenant_id: str, start: datetime, end: datetime, inboxes: list[uuid.UUID] | None
    ) -> int:
        sql = f"SELECT count(*) FROM raw_messages m WHERE {_WHERE}"
        return int(await self._pool.fetchval(sql, uuid.UUID(tenant_id), start, end, inboxes))

    async def batch(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        inboxes: list[uuid.UUID] | None,
        after: tuple[datetime, uuid.UUID] | None,
        max_bytes: int,
        packed: bool,
        rows: int = ROWS_PER_QUERY,
    ) -> ingestion_pb2.RawMailBatch:
        """The next mails after `after`: at most `rows` of them, as many as fit in
        `max_bytes` (one at least)."""
        args: list[object] = [uuid.UUID(tenant_id), start, end, inboxes, max_bytes, rows]
        where = _WHERE
        if after is not None:
            where += _AFTER
            args += list(after)
        found = await self._pool.fetch(_PAGE.format(where=where), *args)
        if packed:
            return _packed(found)
        out = ingestion_pb2.RawMailBatch()
        for r in found:
            us = r["us"]
            out.mails.add(
                message_id=r["id"],
                inbox_id=r["inbox_id"],
                channel=r["channel"],
                envelope_from=r["envelope_from"],
                raw=r["raw"] or b"",
                received_at=Timestamp(seconds=us // 1_000_000, nanos=us % 1_000_000 * 1000),
            )
        if found:
            out.next_cursor = encode_cursor(found[-1]["received_at"], found[-1]["id"])
        return out


def _packed(rows: list[asyncpg.Record]) -> ingestion_pb2.RawMailBatch:
    """The rows as one packed batch: their bytes joined once, a list per field."""
    raws = [r["raw"] or b"" for r in rows]
    return ingestion_pb2.RawMailBatch(
        raws=b"".join(raws),
        sizes=list(map(len, raws)),
        message_ids=[r["id"] for r in rows],
        received_at_us=[r["us"] for r in rows],
        envelope_froms=[r["envelope_from"] for r in rows],
        next_cursor=f"{rows[-1]['us']}:{rows[-1]['id']}" if rows else "",
    )


class ExportsApi:
    """The mixin of IngestionApi that answers ExportRawMails."""

    _store: RawStore

    async def ExportRawMails(
        self, request: ingestion_pb2.ExportRawMailsRequest, context: Context
    ) -> AsyncIterator[ingestion_pb2.RawMailBatch]:
        ident = identity.require_tenant()
        if ident.operator_id:  # the originals hold every address and attachment
            identity.require_permission(
                ident, permissions.DOWNLOAD_ATTACHMENTS, "download original mails"
            )
            identity.require_permission(
                ident, permissions.SEE_CUSTOMER_ADDRESSES, "download original mails"
            )
        start, end = period_bounds(request.period)
        max_bytes = request.max_batch_bytes or BATCH_BYTES_DEFAULT
        if not 1 <= max_bytes <= BATCH_BYTES_MAX:
            raise InvalidArgument(
                f"max_batch_bytes is 1..{BATCH_BYTES_MAX}", field="max_batch_bytes"
            )
        after = decode_cursor(request.cursor)
        inboxes = inbox_scope(ident, request.inbox_ids)
        if inboxes is not None and not inboxes:  # none of the inboxes asked is the caller's
            yield ingestion_pb2.RawMailBatch()
            return
        exports = RawExports(self._store.pool)
        args = (ident.tenant_id, start, end, inboxes)
        packed = request.packed
        total = await exports.count(*args) if request.with_total else 0

        rows = ROWS_PER_QUERY

        def following(
            batch: ingestion_pb2.RawMailBatch,
        ) -> Awaitable[ingestion_pb2.RawMailBatch] | None:
            nonlocal rows
            count = len(batch.sizes) or len(batch.mails)
            if not count:
                return None
            # as many rows as the bytes let in last time, and a few more (all of them
            # again when the rows, not the bytes, were the limit)
            rows = ROWS_PER_QUERY if count >= rows else min(ROWS_PER_QUERY, count * 5 // 4 + 8)
            after = decode_cursor(batch.next_cursor)
            return exports.batch(*args, after, max_bytes, packed, rows)

        first = True
        async for batch in prefetching(exports.batch(*args, after, max_bytes, packed), following):
            if first:
                batch.total = total
            if batch.mails or batch.sizes or first:
                yield batch
            first = False
