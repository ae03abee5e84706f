"""Settings from the environment (prefix `SB_`), validated once at start.

Each service subclasses `ServiceSettings` with its own fields. A bad value stops the
process with one clear line per problem (`SB_GRPC_PORT: ...`), never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import AfterValidator, Field, PrivateAttr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from . import registry
from .hosts import ConnectPolicy
from .log import LogFormat, LogLevel

__all__ = ["Env", "LogFormat", "LogLevel", "RuntimeSettings", "ServiceSettings", "load"]


def _allow_list(value: str) -> str:
    ConnectPolicy.parse(value)  # ValueError names the entry that is wrong
    return value


# SB_CONNECT_ALLOW (ingestion, outbound, routing): where operators' IMAP and SMTP hosts
# and rule webhooks may lead beyond global addresses — host names, addresses and CIDR
# ranges (hosts.ConnectPolicy).
ConnectAllow = Annotated[str, Field(max_length=4000), AfterValidator(_allow_list)]


class Env(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


_TARGET = re.compile(r"^\S{1,500}$")  # host:port, or any gRPC target (dns:///…, unix:…)


def peer_env(name: str) -> str:
    """The variable that gives a service's address: SB_<NAME>_ADDR."""
    return f"SB_{name.upper()}_ADDR"


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
    # Prometheus' GET /metrics (services/runtime/metrics.py), on its own port: 0 is the
    # registry's port of the process (9100 for the gateway, a service's gRPC port + 2000).
    metrics_enabled: bool = True
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)

    # Where each gRPC service of the registry is: SB_<NAME>_ADDR (host:port), by default
    # 127.0.0.1 and its port under `make run`. Read from the environment with the rest.
    _peers: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _read_peer_addresses(self) -> RuntimeSettings:
        peers = {}
        for name, port in registry.DEFAULT_PORTS.items():
            value = os.environ.get(peer_env(name), "") or f"127.0.0.1:{port}"
            if not _TARGET.match(value):
                raise ValueError(f"{peer_env(name)} must be host:port (got {value!r})")
            peers[name] = value
        self._peers = peers
        return self

    def addr_of(self, service: str) -> str:
        """host:port of a gRPC service named in the registry."""
        try:
            return self._peers[service]
        except KeyError:
            raise KeyError(f"{service!r} is not a gRPC service of the registry") from None

    def metrics_address(self, component: str) -> tuple[str, int] | None:
        """Where `component` serves /metrics; None when SB_METRICS_ENABLED is false."""
        if not self.metrics_enabled:
            return None
        return self.metrics_host, self.metrics_port or registry.get(component).metrics_port

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
            if not err["loc"]:  # a check across fields names its variables itself
                lines.append(f"  {err['msg'].removeprefix('Value error, ')}")
                continue
            name = prefix + "_".join(str(p) for p in err["loc"]).upper()
            got = err.get("input")
            lines.append(f"  {name}: {err['msg']} (got {got!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
