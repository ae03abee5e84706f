"""accounts' composition root: the AccountsService API, the operation-log consumer, and
the command line for platform tooling (seed the demo tenant, create a tenant)."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from pydantic import Field
from switchboard.v1 import accounts_pb2, accounts_pb2_grpc

from services.runtime import registry
from services.runtime import settings as rt_settings
from services.runtime.errors import DomainError
from services.runtime.service import ServiceRuntime, run

from . import domain
from .announce import Announcer
from .api import AccountsApi
from .board import BoardRepo, OperationLog
from .deps import Deps
from .repo import AccountsRepo, ensure_builtin_roles
from .seed import create_tenant_with_admin, seed_demo
from .sessions import SessionsRepo

OPERATIONS = registry.ACCOUNTS_OPERATIONS


class AccountsSettings(rt_settings.ServiceSettings):
    session_ttl_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    demo_password: str | None = None
    # the login throttle (SEC-1): see domain.Throttle
    login_window_s: float = Field(default=900.0, ge=10, le=86_400)
    login_slow_after: int = Field(default=5, ge=1, le=1000)
    login_delay_s: float = Field(default=0.5, ge=0, le=10)
    login_lock_after: int = Field(default=10, ge=2, le=1000)
    login_address_lock_after: int = Field(default=50, ge=2, le=100_000)
    login_lock_s: float = Field(default=900.0, ge=1, le=86_400)


def throttle_of(s: AccountsSettings) -> domain.Throttle:
    return domain.Throttle(
        window=timedelta(seconds=s.login_window_s),
        slow_after=s.login_slow_after,
        delay_s=s.login_delay_s,
        lock_after=s.login_lock_after,
        address_lock_after=s.login_address_lock_after,
        lock_for=timedelta(seconds=s.login_lock_s),
    )


async def main() -> int:
    settings = rt_settings.load(AccountsSettings)
    rt = ServiceRuntime("accounts", settings)
    db = await rt.open_database()
    await ensure_builtin_roles(db.pool)  # tenants made before a role was added get it
    await rt.open_bus()
    outbox = rt.open_outbox()
    deps = Deps(
        db=db,
        repo=AccountsRepo(db.pool),
        sessions=SessionsRepo(db.pool),
        board=BoardRepo(db.pool),
        clock=rt.clock,
        ids=rt.ids,
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        throttle=throttle_of(settings),
        announce=Announcer(outbox, rt.ids, rt.clock),
    )
    await rt.add_consumer(OPERATIONS, OperationLog(db).on_event)
    server = rt.grpc_server()
    server.add(
        accounts_pb2_grpc.add_AccountsServiceServicer_to_server,
        AccountsApi(deps),
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


async def create_tenant_main(args: argparse.Namespace) -> int:
    """A new tenant with its built-in roles, one inbox and one administrator whose
    temporary password is printed once (they change it at their first login)."""
    settings = rt_settings.load(AccountsSettings)
    rt = ServiceRuntime("accounts", settings)
    db = await rt.open_database()
    try:
        async with db.pool.acquire() as conn:
            created = await create_tenant_with_admin(
                conn,
                slug=args.slug,
                name=args.name,
                time_zone=args.time_zone,
                inbox_name=args.inbox,
                inbox_addresses=args.address,
                admin_login=args.admin_login,
                admin_name=args.admin_name,
                password=None,
                must_change=True,
                ids=rt.ids,
            )
    except DomainError as err:
        print(f"error: {err.message}", file=sys.stderr)
        return 2
    finally:
        await db.close()
    print(f"tenant   {created.tenant_id}  ({args.slug})")
    print(f"inbox    {created.inbox_id}  {args.inbox}  {' '.join(args.address)}")
    print(f"admin    {args.admin_login}")
    print(f"password {created.password}   (temporary: to be changed at the first login)")
    return 0


def cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.accounts")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("seed-demo", help="create or refresh the demo tenant (SB_DEMO_PASSWORD)")
    ct = sub.add_parser("create-tenant", help="a new tenant with one inbox and an administrator")
    ct.add_argument("--slug", required=True)
    ct.add_argument("--name", required=True)
    ct.add_argument("--time-zone", default="UTC")
    ct.add_argument("--inbox", default="Support")
    ct.add_argument("--address", action="append", default=[], help="an inbox address")
    ct.add_argument("--admin-login", required=True)
    ct.add_argument("--admin-name", default="Administrator")
    args = parser.parse_args(argv[1:])
    if args.command == "seed-demo":
        run(seed_main)
    elif args.command == "create-tenant":
        run(lambda: create_tenant_main(args))
    else:
        run(main)
