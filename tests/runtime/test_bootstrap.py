"""The release bootstrap (the chart's Job): databases, migrations, streams, consumers —
and running it again changes nothing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import nats

from services.devstack.stack import ROOT
from services.runtime import registry
from services.runtime.db import with_database
from tests.conftest import Infra


async def _bootstrap(env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.bootstrap",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_bootstrap_creates_databases_and_streams_and_is_idempotent(infra: Infra) -> None:
    tag = uuid.uuid4().hex[:6]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
    env.update(SB_DATABASE_URL=infra.postgres.url, SB_NATS_URL=infra.nats.url, SB_LOG_FORMAT="json")
    for name in registry.database_services():
        env[f"SB_{name.upper()}_DATABASE_NAME"] = f"bs_{tag}_{name}"
    code, out = await _bootstrap(env)
    assert code == 0, out
    conn = await asyncpg.connect(with_database(infra.postgres.url, f"bs_{tag}_tickets"))
    try:
        applied = {
            r["component"] for r in await conn.fetch("SELECT component FROM schema_migrations")
        }
        assert applied == {"runtime", "tickets"}
        assert await conn.fetchval("SELECT count(*) FROM tickets") == 0
    finally:
        await conn.close()
    nc = await nats.connect(infra.nats.url)
    try:
        js = nc.jetstream()
        names = {s.config.name for s in await js.streams_info()}
        assert {"INGEST", "ROUTING", "TICKETS", "DEADLETTER"} <= names
        assert (await js.consumer_info("INGEST", "routing__messages")).config.durable_name
        assert (await js.consumer_info("ROUTING", "tickets__routed")).config.durable_name
    finally:
        await nc.close()
    code, out = await _bootstrap(env)  # a second run of the same revision's Job
    assert code == 0, out
    assert "migrations applied" not in out
