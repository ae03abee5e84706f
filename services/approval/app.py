"""approval's composition root: the ApprovalService API (policies, operator flags, the
evaluation outbound asks before a send, requests and decisions) and its outbox
(`approval.*` events)."""

from __future__ import annotations

from switchboard.v1 import approval_pb2, approval_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from .api import ApprovalApi
from .api_policies import Deps
from .peers import Peers
from .repo import ApprovalRepo


async def main() -> int:
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("approval", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    deps = Deps(
        db=db,
        repo=ApprovalRepo(db.pool),
        outbox=outbox,
        peers=Peers(rt.channel("composition"), rt.channel("tickets"), rt.channel("accounts")),
        clock=rt.clock,
        ids=rt.ids,
    )
    server = rt.grpc_server()
    server.add(
        approval_pb2_grpc.add_ApprovalServiceServicer_to_server,
        ApprovalApi(deps),
        approval_pb2.DESCRIPTOR.services_by_name["ApprovalService"].full_name,
    )
    return await rt.serve()
