"""composition's composition root: the CompositionService API (templates, signatures,
drafts, checks, previews), its outbox (template.changed, draft.changed) and the
`composition__approvals` consumer (drafts held while their approval is pending)."""

from __future__ import annotations

import argparse

from switchboard.v1 import composition_pb2, composition_pb2_grpc

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime, run

from .api import Deps
from .api_services import CompositionApi
from .approvals import ApprovalHolds
from .peers import Peers
from .repo import ComposeRepo
from .seed import seed_demo


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
    await rt.add_consumer(
        registry.COMPOSITION_APPROVALS,
        ApprovalHolds(db, deps.repo, rt.clock).on_approval,
    )
    server = rt.grpc_server()
    server.add(
        composition_pb2_grpc.add_CompositionServiceServicer_to_server,
        CompositionApi(deps),
        composition_pb2.DESCRIPTOR.services_by_name["CompositionService"].full_name,
    )
    return await rt.serve()


async def seed_main() -> int:
    """The demo tenant's templates, phrases and signatures (services/composition/seed.py)."""
    settings = rt_settings.load(rt_settings.ServiceSettings)
    rt = ServiceRuntime("composition", settings)
    db = await rt.open_database()
    try:
        async with db.pool.acquire() as conn:
            added = await seed_demo(conn, rt.clock.now())
    finally:
        await db.close()
    rt.log.info("demo templates seeded", added=added)
    return 0


def cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.composition")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("seed-demo", help="the demo tenant's templates, phrases and signatures")
    args = parser.parse_args(argv[1:])
    run(seed_main if args.command == "seed-demo" else main)
