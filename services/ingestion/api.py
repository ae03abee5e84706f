"""IngestionService over gRPC."""

from __future__ import annotations

from typing import Any

from switchboard.v1 import events_pb2, ingestion_pb2, ingestion_pb2_grpc

from services.runtime import identity
from services.runtime.errors import NotFound
from services.runtime.ids import parse_uuid

from .store import RawStore


class IngestionApi(ingestion_pb2_grpc.IngestionServiceServicer):
    def __init__(self, store: RawStore) -> None:
        self._store = store

    async def GetRawMessage(
        self, request: Any, context: Any
    ) -> ingestion_pb2.GetRawMessageResponse:
        ident = identity.require_tenant()
        message_id = parse_uuid(request.message_id, "message_id")
        row = await self._store.get(ident.tenant_id, message_id)
        if row is None:
            raise NotFound("no such message", field="message_id")
        resp = ingestion_pb2.GetRawMessageResponse(
            message_id=str(row["id"]),
            raw=bytes(row["raw"]),
            channel=row["channel"],
            mail=events_pb2.MailSummary.FromString(bytes(row["summary"])),
        )
        resp.received_at.FromDatetime(row["received_at"])
        return resp
