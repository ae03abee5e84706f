"""ingestion's composition root."""

from __future__ import annotations

from pydantic import Field
from switchboard.v1 import ingestion_pb2, ingestion_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from .api import IngestionApi
from .directory import AddressDirectory
from .intake import IntakePipeline
from .smtp import SmtpHandler, SmtpListener
from .store import RawStore


class IngestionSettings(rt_settings.ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    smtp_hostname: str = "switchboard.local"


async def main() -> int:
    settings = rt_settings.load(IngestionSettings)
    rt = ServiceRuntime("ingestion", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    store = RawStore(db, outbox, rt.ids)
    pipeline = IntakePipeline(store, outbox, rt.clock)

    server = rt.grpc_server()
    server.add(
        ingestion_pb2_grpc.add_IngestionServiceServicer_to_server,
        IngestionApi(store),
        ingestion_pb2.DESCRIPTOR.services_by_name["IngestionService"].full_name,
    )
    directory = AddressDirectory(rt.channel("accounts"))
    listener = SmtpListener(
        SmtpHandler(directory, pipeline, rt.clock),
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_max_bytes,
        settings.smtp_hostname,
    )
    port = await listener.start()
    rt.log.info("smtp listening", port=port, max_bytes=settings.smtp_max_bytes)
    rt.add_intake("smtp", listener.stop)
    return await rt.serve()
