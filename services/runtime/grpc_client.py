"""gRPC clients: channels to peer services, with the caller's identity as metadata."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from .identity import MD_FIELD, MD_REASON, Identity

# Retries for calls that never reached a server (UNAVAILABLE), as gRPC's service config
# describes them: a restarting peer costs a short wait, not an error.
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.1s",
                    "maxBackoff": "1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def channel(addr: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        addr,
        options=[
            ("grpc.service_config", _SERVICE_CONFIG),
            ("grpc.enable_retries", 1),
            ("grpc.keepalive_time_ms", 30_000),
            # Raw mails travel back whole (GetRawMessage): allow what SMTP/import allow.
            ("grpc.max_receive_message_length", 256 * 1024 * 1024),
        ],
    )


def call_metadata(ident: Identity) -> list[tuple[str, str]]:
    return ident.metadata()


async def check_health(ch: grpc.aio.Channel, timeout: float = 2.0) -> str:
    """The peer's overall health status name (SERVING, NOT_SERVING, …) or UNREACHABLE."""
    stub: Any = health_pb2_grpc.HealthStub(ch)
    try:
        resp = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return "SERVICE_UNKNOWN"
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status))


_REFUSALS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def refused(err: grpc.aio.AioRpcError) -> bool:
    """The peer refused the request itself (asking again will not help)."""
    return err.code() in _REFUSALS


def passed_on(err: grpc.aio.AioRpcError, service: str) -> DomainError:
    """A peer's refusal as the caller's own (its message and field), or Unavailable."""
    cls = _REFUSALS.get(err.code())
    if cls is not None:
        trailing = dict(err.trailing_metadata() or ())
        field, reason = trailing.get(MD_FIELD), trailing.get(MD_REASON)
        return cls(
            err.details() or f"{service} refused",
            field=str(field) if field else None,
            reason=str(reason) if reason else None,
        )
    return Unavailable(f"{service} unavailable: {err.code().name}")


async def call_peer(
    service: str,
    method: Any,
    request: Any,
    md: Sequence[tuple[str, str]],
    timeout: float = 10,
) -> Any:
    """One call to a peer service (`method`: a stub's method), its refusal raised as the
    caller's own (`passed_on`), anything else as Unavailable."""
    try:
        return await method(request, metadata=list(md), timeout=timeout)
    except grpc.aio.AioRpcError as err:
        raise passed_on(err, service) from err
