"""accounts' composition root."""

from __future__ import annotations

import sys
from datetime import timedelta

from pydantic import Field
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc

from services.runtime import settings as rt_settings
from services.runtime.service import ServiceRuntime, run

from .api import AccountsApi
from .repo import AccountsRepo
from .seed import seed_demo


class AccountsSettings(rt_settings.ServiceSettings):
    session_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    demo_password: str | None = None


async def main() -> int:
    settings = rt_settings.load(AccountsSettings)
    rt = ServiceRuntime("accounts", settings)
    db = await rt.open_database()
    server = rt.grpc_server()
    server.add(
        accounts_pb2_grpc.add_AccountsServiceServicer_to_server,
        AccountsApi(
            AccountsRepo(db.pool), rt.clock, rt.ids, timedelta(hours=settings.session_ttl_hours)
        ),
        accounts_pb2.DESCRIPTOR.services_by_name["AccountsService"].full_name,
    )
    return await rt.serve()


async def seed_main() -> int:
    settings = rt_settings.load(AccountsSettings)
    rt = ServiceRuntime("accounts", settings)
    if not settings.demo_password:
        print("SB_DEMO_PASSWORD is required to seed the demo tenant", file=sys.stderr)
        return 2
    db = await rt.open_database()
    async with db.pool.acquire() as conn:
        await seed_demo(conn, settings.demo_password)
    await db.close()
    rt.log.info("demo tenant seeded")
    return 0


def cli(argv: list[str]) -> None:
    if argv[1:] == ["seed-demo"]:
        run(seed_main)
    elif argv[1:]:
        print("usage: python -m services.accounts [seed-demo]", file=sys.stderr)
        sys.exit(2)
    else:
        run(main)
