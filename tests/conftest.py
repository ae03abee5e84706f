"""Fixtures: real PostgreSQL, NATS (JetStream) and Redis on free ports, started once per
test session under a temporary folder, and the whole system on top of them for the
end-to-end tests. Nothing here is a mock."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.devstack.infra import Nats, Postgres, Redis, free_port
from services.devstack.line_peer import LinePeer
from services.devstack.stack import Ports, Stack, StackConfig
from tests.clamd import Clamd
from tests.dovecot import Dovecot
from tests.smtp_peer import SmtpPeer

os.environ.setdefault("SB_ENV", "test")
DEMO_PASSWORD = "test-demo-password"
SMTP_MAX_BYTES = 512 * 1024
LOGIN_LOCK_S = 12  # outlasts a loaded machine's eleventh attempt and a few clicks
CONNECT_ALLOW = "127.0.0.1"
# Keyword searches per operator and minute: tests search faster than people do (SEC-6).
SEARCH_PER_MINUTE = 120
OUTBOUND_TEST_ENV = {
    "SB_SMTP_TIMEOUT_S": "3",
    "SB_SMTP_DATA_TIMEOUT_S": "2",
    "SB_SEND_LEASE_S": "4",
    "SB_SEND_RETRY_BASE_S": "0.3",
    "SB_SEND_RETRY_CAP_S": "1",
    "SB_SEND_MAX_ATTEMPTS": "3",
    # campaigns' per-domain throttle counts per 2 s instead of a minute (issue 20)
    "SB_CAMPAIGN_THROTTLE_PERIOD_S": "2",
}


@dataclass
class Infra:
    postgres: Postgres
    nats: Nats
    redis: Redis
    base: Path


@pytest.fixture(scope="session")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """A folder for a server that runs as another system user (PostgreSQL, Dovecot's mail
    processes) when the tests run as root. Not under pytest's own folder: every pytest
    start takes the other users' access to /tmp/pytest-of-root away again (it resets the
    folder to 0700), which pulled the data folder from under a PostgreSQL of another test
    run on the same machine. Removed at the end of the session."""
    made: list[Path] = []

    def make(name: str) -> Path:
        if os.geteuid() != 0:
            return tmp_path_factory.mktemp(name)
        path = Path(tempfile.mkdtemp(prefix=f"sb-test-{name}-"))
        made.append(path)
        return path

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def infra(
    tmp_path_factory: pytest.TempPathFactory, server_dir: Callable[[str], Path]
) -> AsyncIterator[Infra]:
    base = tmp_path_factory.mktemp("infra")
    pg = Postgres(free_port(), server_dir("postgres") / "data", fast=True)
    nats = Nats(free_port(), base / "nats")
    redis = Redis(free_port(), base / "redis")
    try:
        await asyncio.gather(pg.start(), nats.start(), redis.start())
        yield Infra(pg, nats, redis, base)
    finally:
        for server in (redis, nats, pg):
            server.stop()


@pytest.fixture(scope="session")
def imap_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The self-signed certificate of the TLS Dovecot, which ingestion is told to trust."""
    from tests.dovecot import self_signed

    return self_signed(tmp_path_factory.mktemp("imap-tls"))


@pytest.fixture(scope="session")
def dovecot(server_dir: Callable[[str], Path]) -> Iterator[Dovecot]:
    server = Dovecot(server_dir("dovecot")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_no_idle(server_dir: Callable[[str], Path]) -> Iterator[Dovecot]:
    server = Dovecot(server_dir("dovecot-poll"), idle=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_tls(
    server_dir: Callable[[str], Path], imap_cert: tuple[Path, Path]
) -> Iterator[Dovecot]:
    server = Dovecot(server_dir("dovecot-tls"), tls=True, cert_pair=imap_cert).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clamd]:
    """The virus scanner the test stack's ingestion uses (EICAR's signature only)."""
    server = Clamd(tmp_path_factory.mktemp("clamd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_peer() -> Iterator[SmtpPeer]:
    """The SMTP server outbound delivers to (the platform relay of the test stack)."""
    peer = SmtpPeer().start()
    yield peer
    peer.stop()


@pytest.fixture(scope="session")
async def line_peer() -> AsyncIterator[LinePeer]:
    """The stand-in for LINE's Messaging API the test stack's ingestion talks to (issue 21;
    the stack's ingestion waits 3 s for an answer)."""
    peer = LinePeer(hang_s=5.0)
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture(scope="session")
async def stack(
    infra: Infra,
    tmp_path_factory: pytest.TempPathFactory,
    imap_cert: tuple[Path, Path],
    smtp_peer: SmtpPeer,
    clamd: Clamd,
    line_peer: LinePeer,
) -> AsyncIterator[Stack]:
    """Every service and the gateway as their own processes, on the session's servers."""
    config = StackConfig(
        data_dir=tmp_path_factory.mktemp("stack"),
        ports=Ports.free(),
        env="test",
        demo_password=DEMO_PASSWORD,
        database_url=infra.postgres.url,
        nats_url=infra.nats.url,
        redis_url=infra.redis.url,
        service_logs_to_files=True,
        smtp_relay=("127.0.0.1", smtp_peer.port),
        # the tests' IMAP and SMTP servers listen on 127.0.0.1: that address only is
        # allowed to administrators' hosts; other loopback addresses stay refused
        connect_allow=CONNECT_ALLOW,
        extra_env={
            # Short SMTP timeouts, leases and back-off, so that failures show in seconds.
            "outbound": OUTBOUND_TEST_ENV,
            "ingestion": {
                "SB_SMTP_MAX_BYTES": str(SMTP_MAX_BYTES),
                "SB_IMAP_CA_FILE": str(imap_cert[0]),
                "SB_IMAP_LEASE_TTL_S": "6",
                "SB_IMAP_IDLE_REFRESH_S": "2",
                "SB_CLAMD_ADDR": clamd.address,
                "SB_CLAMD_RETRY_S": "0.5",  # a stopped clamd is tried again within seconds
                # channel replies (issue 21) retried within a second, dead after 3 attempts
                "SB_CHANNEL_MAX_ATTEMPTS": "3",
                "SB_CHANNEL_RETRY_BASE_S": "0.3",
                "SB_CHANNEL_POLL_S": "0.2",
                "SB_CHANNEL_SEND_TIMEOUT_S": "3",
                # LINE channels talk to the local LINE peer (issue 21)
                "SB_LINE_API_URL": line_peer.url,
                "SB_LINE_DATA_URL": line_peer.url,
                "SB_LINE_TIMEOUT_S": "3",
            },
            "tickets": {"SB_SEARCH_PER_MINUTE": str(SEARCH_PER_MINUTE)},
            # Stage deadlines swept often, so that a reminder shows within a second.
            "approval": {"SB_REMIND_EVERY_S": "0.5"},
            # The assigner looks again often (tiers widen, presences lapse).
            # Webhooks retried within a second, dead after 3 attempts (issue 18).
            "routing": {
                "SB_ASSIGN_EVERY_S": "1",
                "SB_WEBHOOK_MAX_ATTEMPTS": "3",
                "SB_WEBHOOK_RETRY_BASE_S": "0.3",
                "SB_WEBHOOK_POLL_S": "0.2",
                "SB_WEBHOOK_TIMEOUT_S": "3",
            },
            # Tests send X-Forwarded-For to appear from other client addresses (SEC-2).
            "gateway": {"SB_TRUSTED_PROXIES": "127.0.0.1"},
            # A short login lock and small delays, so the brute-force test ends quickly.
            "accounts": {
                "SB_LOGIN_DELAY_S": "0.05",
                "SB_LOGIN_LOCK_S": str(LOGIN_LOCK_S),
                "SB_LOGIN_ADDRESS_LOCK_AFTER": "30",
            },
        },
    )
    s = Stack(config)
    try:
        await s.seed()
        await s.start_services()
        await s.wait_healthy(timeout=90)
        yield s
    finally:
        await asyncio.to_thread(s.stop_services)
