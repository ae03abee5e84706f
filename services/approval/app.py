"""approval's composition root: the ApprovalService API (policies, operator flags, the
evaluation outbound asks before a send, requests and decisions), its outbox
(`approval.*` events), the consumer of outbound's `send.changed` (a request handed to
outbound becomes `sent`) and the sweep of stage deadlines (`approval.reminded`)."""

from __future__ import annotations

from pydantic import Field
from switchboard.v1 import approval_pb2, approval_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime

from .api import ApprovalApi
from .api_policies import Deps
from .consumers import SENDS, Sends
from .peers import Peers
from .reminders import Reminders
from .repo import ApprovalRepo


class ApprovalSettings(rt_settings.ServiceSettings):
    # how often the stage deadlines are swept (a reminder is at most this late)
    remind_every_s: float = Field(default=30.0, gt=0, le=3600)


async def main() -> int:
    settings = rt_settings.load(ApprovalSettings)
    rt = ServiceRuntime("approval", settings)
    db = await rt.open_database()
    await rt.open_bus()
    outbox = rt.open_outbox()
    repo = ApprovalRepo(db.pool)
    deps = Deps(
        db=db,
        repo=repo,
        outbox=outbox,
        peers=Peers(rt.channel("composition"), rt.channel("tickets"), rt.channel("accounts")),
        clock=rt.clock,
        ids=rt.ids,
    )
    reminders = Reminders(db, repo, outbox, rt.clock, rt.ids, every_s=settings.remind_every_s)
    rt.add_background(reminders.name, reminders.start, reminders.stop)
    await rt.add_consumer(SENDS, Sends(deps).on_send_changed)
    server = rt.grpc_server()
    server.add(
        approval_pb2_grpc.add_ApprovalServiceServicer_to_server,
        ApprovalApi(deps),
        approval_pb2.DESCRIPTOR.services_by_name["ApprovalService"].full_name,
    )
    return await rt.serve()
