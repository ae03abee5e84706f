"""The whole system as child processes: infrastructure, every service, the gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aiohttp

from services.runtime import registry
from services.runtime.secrets import new_key
from services.runtime.settings import peer_env

from .infra import Nats, Postgres, Redis, free_port, port_in_use, spawn, stop_process

ROOT = Path(__file__).resolve().parents[2]
SERVICES = registry.SERVICE_NAMES  # the gRPC services: ingestion … accounts
PROCESSES = tuple(c.name for c in registry.COMPONENTS)  # and the gateway
# Started in this order: the services a component calls come before it.
START_ORDER = registry.start_order()
# The authserv-id whose Authentication-Results ingestion trusts on this machine (ADR 0009):
# there is no MTA in front of `make run` or the tests, so mail that claims this id is
# taken at its word — the demo and the tests write it into the mail they send.
TRUSTED_AUTHSERV_ID = "mx.switchboard.test"


@dataclass
class Ports:
    postgres: int = 55432
    nats: int = 4222
    redis: int = 6379
    http: int = 8080
    smtp: int = 2525
    grpc: dict[str, int] = field(default_factory=lambda: dict(registry.DEFAULT_PORTS))
    # where each process serves Prometheus' /metrics (the gateway's too)
    metrics: dict[str, int] = field(
        default_factory=lambda: {c.name: c.metrics_port for c in registry.COMPONENTS}
    )

    @classmethod
    def free(cls) -> Ports:
        return cls(
            postgres=free_port(),
            nats=free_port(),
            redis=free_port(),
            http=free_port(),
            smtp=free_port(),
            grpc={name: free_port() for name in SERVICES},
            metrics={name: free_port() for name in PROCESSES},
        )


@dataclass
class StackConfig:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    env: str = "development"
    demo_password: str = "switchboard-demo"
    database_url: str | None = None  # an existing PostgreSQL server instead of our own
    nats_url: str | None = None
    redis_url: str | None = None
    service_logs_to_files: bool = False  # tests: logs/<service>.log; `make run`: the terminal
    fast_postgres: bool = False  # fsync off: tests only
    log_level: str = "info"
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per process
    secret_key: str = field(default_factory=new_key)  # ingestion's key for credentials
    smtp_relay: tuple[str, int] | None = None  # where outbound sends when no route says
    # SB_CONNECT_ALLOW of ingestion and outbound: where administrators' IMAP and SMTP hosts
    # may lead beyond global addresses (issue 16); "" refuses loopback and private ranges
    connect_allow: str = ""


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        d = config.data_dir
        p = config.ports
        self.postgres = (
            None
            if config.database_url
            else Postgres(p.postgres, d / "postgres", fast=config.fast_postgres)
        )
        self.nats = None if config.nats_url else Nats(p.nats, d / "nats")
        self.redis = None if config.redis_url else Redis(p.redis, d / "redis")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    # -- addresses -----------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return self.config.database_url or (self.postgres.url if self.postgres else "")

    @property
    def nats_url(self) -> str:
        return self.config.nats_url or (self.nats.url if self.nats else "")

    @property
    def redis_url(self) -> str:
        return self.config.redis_url or (self.redis.url if self.redis else "")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.config.ports.http}"

    @property
    def smtp_port(self) -> int:
        return self.config.ports.smtp

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.config.ports.metrics[name]}/metrics"

    def log_path(self, name: str) -> Path:
        return self.config.data_dir / "logs" / f"{name}.log"

    def env_for(self, name: str) -> dict[str, str]:
        p = self.config.ports
        env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")}
        env.update(
            SB_ENV=self.config.env,
            SB_LOG_LEVEL=self.config.log_level,
            SB_NATS_URL=self.nats_url,
            SB_REDIS_URL=self.redis_url,
            SB_DATABASE_URL=self.database_url,
            PYTHONUNBUFFERED="1",
        )
        if os.environ.get("SB_LOG_FORMAT"):
            env["SB_LOG_FORMAT"] = os.environ["SB_LOG_FORMAT"]
        for svc in SERVICES:
            env[peer_env(svc)] = f"127.0.0.1:{p.grpc[svc]}"
        env["SB_METRICS_PORT"] = str(p.metrics[name])
        if name in SERVICES:
            env["SB_GRPC_PORT"] = str(p.grpc[name])
        if name in ("ingestion", "outbound", "routing") and self.config.connect_allow:
            env["SB_CONNECT_ALLOW"] = self.config.connect_allow
        if name == "ingestion":
            env["SB_SMTP_PORT"] = str(p.smtp)
            env["SB_SECRET_KEY"] = self.config.secret_key
            env["SB_TRUSTED_AUTHSERV_IDS"] = TRUSTED_AUTHSERV_ID
        if name == "outbound":
            env["SB_SECRET_KEY"] = self.config.secret_key
            env["SB_PUBLIC_URL"] = self.gateway_url  # the survey mails' links (issue 20)
            if self.config.smtp_relay:
                env["SB_SMTP_RELAY_HOST"] = self.config.smtp_relay[0]
                env["SB_SMTP_RELAY_PORT"] = str(self.config.smtp_relay[1])
        if name == "tickets":
            env["SB_SECRET_KEY"] = self.config.secret_key  # lookup header secrets (issue 21)
            # the local stack signs Message-IDs with a key derived from the same secret
            env["SB_THREAD_KEY"] = "thread:" + self.config.secret_key
        if name == "reporting":  # export files (issue 19) under the stack's data
            env["SB_EXPORT_DIR"] = str(self.config.data_dir / "exports")
        if name == "gateway":
            env["SB_HTTP_PORT"] = str(p.http)
        if name == "accounts":
            env["SB_DEMO_PASSWORD"] = self.config.demo_password
        env.update(self.config.extra_env.get(name, {}))
        return env

    # -- lifecycle -----------------------------------------------------------------

    async def start_infra(self) -> None:
        await asyncio.gather(*(s.start() for s in (self.postgres, self.nats, self.redis) if s))

    async def seed(self) -> None:
        """The demo tenant, each service seeding its own part through its own command:
        accounts the tenant, inboxes and operators; composition the templates, phrases
        and signatures."""
        for service in ("accounts", "composition"):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                f"services.{service}",
                "seed-demo",
                env=self.env_for(service),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"seeding {service} failed:\n{out.decode(errors='replace')}")

    def start_process(self, name: str) -> subprocess.Popen[bytes]:
        module = registry.get(name).module
        log: IO[bytes] | None = None
        if self.config.service_logs_to_files:
            path = self.log_path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            log = self._logs.get(name) or open(path, "ab")
            self._logs[name] = log
        proc = spawn([sys.executable, "-m", module], env=self.env_for(name), log=log, cwd=ROOT)
        self.procs[name] = proc
        return proc

    async def start_services(self, names: tuple[str, ...] = START_ORDER) -> None:
        p = self.config.ports
        for name in names:
            port = p.http if name == "gateway" else p.grpc[name]
            for taken in (port, p.metrics[name]):
                if port_in_use(taken):
                    raise RuntimeError(
                        f"port {taken} for {name} is in use (is another `make run` up?)"
                    )
            self.start_process(name)

    async def health(self) -> tuple[int, dict[str, object]]:
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{self.gateway_url}/healthz", timeout=aiohttp.ClientTimeout(total=5)
            ) as resp:
                return resp.status, await resp.json()

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: object = None
        while loop.time() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}{self._tail(name)}")
            try:
                status, body = await self.health()
                if status == 200:
                    return
                last = body
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
        raise TimeoutError(f"the system is not healthy after {timeout:.0f}s: {last}")

    def _tail(self, name: str) -> str:
        path = self.log_path(name)
        if self.config.service_logs_to_files and path.exists():
            return "\n" + path.read_text(errors="replace")[-3000:]
        return ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(30)

    async def start(self) -> None:
        await self.start_infra()
        await self.seed()
        await self.start_services()
        await self.wait_healthy()

    def stop_services(self) -> None:
        """Services first (they drain their work), in reverse start order."""
        order = [n for n in reversed(START_ORDER) if n in self.procs]
        for name in order:
            proc = self.procs[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name in order:
            stop_process(self.procs[name], timeout=20)
        for log in self._logs.values():
            log.close()
        self._logs.clear()

    def stop(self) -> None:
        self.stop_services()
        for server in (self.redis, self.nats, self.postgres):
            if server is not None:
                server.stop()
