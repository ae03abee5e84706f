"""Settings from the environment (prefix `SB_`), validated once at start.

Each service subclasses `ServiceSettings` with its own fields. A bad value stops the
process with one clear line per problem (`SB_GRPC_PORT: ...`), never a traceback.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Env(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


# Default gRPC ports on one machine (`make run`); in Kubernetes every service uses 50051.
DEFAULT_PORTS = {
    "ingestion": 7101,
    "routing": 7102,
    "tickets": 7103,
    "composition": 7104,
    "approval": 7105,
    "outbound": 7106,
    "reporting": 7107,
    "accounts": 7108,
}


class RuntimeSettings(BaseSettings):
    """What every process reads: environment, logging, where NATS, Redis and peers are."""

    model_config = SettingsConfigDict(env_prefix="SB_", extra="ignore", frozen=True)

    env: Env = Env.DEVELOPMENT
    log_format: LogFormat | None = None  # default: console in development, json otherwise
    log_level: LogLevel = LogLevel.INFO
    nats_url: str = "nats://127.0.0.1:4222"
    nats_replicas: int = Field(default=1, ge=1, le=5)  # JetStream stream replicas
    redis_url: str = "redis://127.0.0.1:6379/0"
    shutdown_grace_s: float = Field(default=10.0, ge=0, le=300)

    ingestion_addr: str = f"127.0.0.1:{DEFAULT_PORTS['ingestion']}"
    routing_addr: str = f"127.0.0.1:{DEFAULT_PORTS['routing']}"
    tickets_addr: str = f"127.0.0.1:{DEFAULT_PORTS['tickets']}"
    composition_addr: str = f"127.0.0.1:{DEFAULT_PORTS['composition']}"
    approval_addr: str = f"127.0.0.1:{DEFAULT_PORTS['approval']}"
    outbound_addr: str = f"127.0.0.1:{DEFAULT_PORTS['outbound']}"
    reporting_addr: str = f"127.0.0.1:{DEFAULT_PORTS['reporting']}"
    accounts_addr: str = f"127.0.0.1:{DEFAULT_PORTS['accounts']}"

    def addr_of(self, service: str) -> str:
        return str(getattr(self, f"{service}_addr"))

    @property
    def effective_log_format(self) -> LogFormat:
        if self.log_format is not None:
            return self.log_format
        return LogFormat.CONSOLE if self.env is Env.DEVELOPMENT else LogFormat.JSON


class ServiceSettings(RuntimeSettings):
    """A gRPC service with its own PostgreSQL database."""

    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(default=0, ge=0, le=65535)  # 0: the service's default port
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    database_name: str | None = None  # default: sb_<service>, replacing the URL's database
    database_create: bool = True  # create the database when missing (needs the right)
    database_pool_min: int = Field(default=1, ge=0, le=100)
    database_pool_max: int = Field(default=10, ge=1, le=200)


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S]) -> S:
    """Read `cls` from the environment; on a bad value print what is wrong and exit 2."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = [f"invalid settings ({len(exc.errors())} problem(s)):"]
        for err in exc.errors():
            name = prefix + "_".join(str(p) for p in err["loc"]).upper()
            got = err.get("input")
            lines.append(f"  {name}: {err['msg']} (got {got!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
