"""The gRPC bootstrap every service uses, through a real grpc.aio server on a free port:
domain errors become their status codes (with the field), an unexpected exception becomes
INTERNAL with a reference and no traceback, the caller's identity arrives from metadata,
and the gateway turns the codes into HTTP statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gateway.errors import from_grpc
from services.runtime import errors, identity
from services.runtime.grpc_client import check_health
from services.runtime.grpc_server import GrpcServer
from services.runtime.ids import IdGenerator
from services.runtime.log import _drop_secrets
from services.runtime.metrics import GRPC_DURATION, GRPC_REQUESTS, Metrics

RAISE = {
    "invalid": errors.InvalidArgument("limit must be positive", field="limit"),
    "missing": errors.NotFound("no such ticket", field="ticket_id"),
    "stale": errors.FailedPrecondition("the lock is held by someone else"),
    "denied": errors.PermissionDenied("you may not approve"),
    "exists": errors.AlreadyExists("that login is taken", field="login"),
    "who": errors.Unauthenticated("no tenant"),
}


async def behaviour(request: bytes, context: Any) -> bytes:
    what = request.decode()
    if what in RAISE:
        raise RAISE[what]
    if what == "boom":
        raise KeyError("secret internals")
    ident = identity.require_tenant()
    return f"{ident.tenant_id}|{ident.operator_id}|{','.join(ident.roles)}".encode()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics("probe")


@pytest.fixture
async def channel(metrics: Metrics) -> AsyncIterator[grpc.aio.Channel]:
    server = GrpcServer("probe", "127.0.0.1", 0, IdGenerator(), metrics)
    handler = grpc.method_handlers_generic_handler(
        "test.Probe",
        {"Call": grpc.unary_unary_rpc_method_handler(behaviour)},
    )
    server.server.add_generic_rpc_handlers((handler,))
    port = await server.start()
    await server.set_serving(True)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    await server.stop(0)


async def _call(ch: grpc.aio.Channel, what: str, md: list[tuple[str, str]] | None = None) -> bytes:
    method = ch.unary_unary("/test.Probe/Call")
    return await method(what.encode(), metadata=md, timeout=5)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("what", "code", "field", "http"),
    [
        ("invalid", grpc.StatusCode.INVALID_ARGUMENT, "limit", 400),
        ("missing", grpc.StatusCode.NOT_FOUND, "ticket_id", 404),
        ("stale", grpc.StatusCode.FAILED_PRECONDITION, None, 409),
        ("denied", grpc.StatusCode.PERMISSION_DENIED, None, 403),
        ("exists", grpc.StatusCode.ALREADY_EXISTS, "login", 409),
        ("who", grpc.StatusCode.UNAUTHENTICATED, None, 401),
    ],
)
async def test_domain_errors_become_status_codes_with_message_and_field(
    channel: grpc.aio.Channel, what: str, code: grpc.StatusCode, field: str | None, http: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(channel, what)
    assert err.value.code() == code
    assert err.value.details() == RAISE[what].message
    api = from_grpc(err.value)
    assert (api.status, api.field, api.message) == (http, field, RAISE[what].message)


async def test_an_unexpected_exception_is_internal_with_a_reference_only(
    channel: grpc.aio.Channel,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(channel, "boom", [(identity.MD_TENANT, "t1")])
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details().startswith("internal error (ref ")
    assert "secret internals" not in err.value.details()
    assert from_grpc(err.value).status == 502


async def test_the_callers_identity_arrives_from_metadata(channel: grpc.aio.Channel) -> None:
    caller = identity.Identity("tenant-1", "op-7", ("agent", "trainee"), "corr-1")
    assert await _call(channel, "hello", caller.metadata()) == b"tenant-1|op-7|agent,trainee"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(channel, "hello")  # no tenant in the call: refused, never defaulted
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_health_is_served(channel: grpc.aio.Channel) -> None:
    assert await check_health(channel) == "SERVING"


async def test_every_call_is_counted_by_method_and_status_code_and_timed(
    channel: grpc.aio.Channel, metrics: Metrics
) -> None:
    caller = identity.Identity("tenant-1", "op-7", ("agent",), "corr-1").metadata()
    for what in ("hello", "hello", "missing", "boom"):
        try:
            await _call(channel, what, caller)
        except grpc.aio.AioRpcError:
            pass
    await check_health(channel)  # health checks are not counted

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    call = {"grpc_service": "test.Probe", "grpc_method": "Call"}
    assert value(GRPC_REQUESTS.name, **call, grpc_code="OK") == 2
    assert value(GRPC_REQUESTS.name, **call, grpc_code="NOT_FOUND") == 1
    assert value(GRPC_REQUESTS.name, **call, grpc_code="INTERNAL") == 1
    assert value(f"{GRPC_DURATION.name}_count", **call) == 4
    assert value(f"{GRPC_DURATION.name}_bucket", **call, le="+Inf") == 4
    body = metrics.exposition()[0].decode()
    assert "grpc.health" not in body


def test_secrets_never_reach_a_log_line() -> None:
    line = _drop_secrets(None, "info", {"event": "login", "password": "hunter2", "Token": "t"})
    assert line == {"event": "login", "password": "[redacted]", "Token": "[redacted]"}
