"""composition's composition root: the CompositionService API (templates, signatures,
drafts, checks, previews) and its outbox (template.changed, draft.changed)."""

from __future__ import annotations

from switchboard.v1 import composition_pb2, composition_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from .api import Deps
from .api_drafts import CompositionApi
from .peers import Peers
from .repo import ComposeRepo


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("composition", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    deps = Deps(
        db=db,
        repo=ComposeRepo(db.pool),
        outbox=outbox,
        peers=Peers(rt.channel("tickets"), rt.channel("accounts"), rt.channel("ingestion")),
        clock=rt.clock,
        ids=rt.ids,
    )
    server = rt.grpc_server()
    server.add(
        composition_pb2_grpc.add_CompositionServiceServicer_to_server,
        CompositionApi(deps),
        composition_pb2.DESCRIPTOR.services_by_name["CompositionService"].full_name,
    )
    return await rt.serve()
