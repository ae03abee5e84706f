"""grpc.aio server bootstrap: health, reflection, logging and identity interceptor, and
domain errors mapped to status codes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import Counter, Histogram

from . import identity, log
from . import metrics as m
from .errors import DomainError
from .ids import IdGenerator

_QUIET = ("/grpc.health.v1.Health/", "/grpc.reflection.")

# The `context` of a servicer method: `async def GetTicket(self, request:
# tickets_pb2.GetTicketRequest, context: Context) -> tickets_pb2.GetTicketResponse`. The
# request and response types are on the method's own parameters already. (grpc's classes
# are generic only in their stubs.)
if TYPE_CHECKING:
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
else:
    Context = grpc.aio.ServicerContext
    _Handler = grpc.RpcMethodHandler


class _CallMetrics:
    """One method's series, bound once: its latency histogram and a counter per code."""

    def __init__(self, requests: Counter, durations: Histogram, method: str) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self._labels = (service, name)
        self._requests = requests
        self._codes: dict[grpc.StatusCode, Counter] = {}
        self.duration = durations.labels(service, name)

    def done(self, code: grpc.StatusCode, seconds: float) -> None:
        counter = self._codes.get(code)
        if counter is None:
            counter = self._codes[code] = self._requests.labels(*self._labels, code.name)
        counter.inc()
        self.duration.observe(seconds)


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Per call: read the caller's identity from metadata into a contextvar, bind log ids
    (the tenant, operator, correlation id, and the request's ticket_id when it has one),
    log the outcome, and turn a DomainError into its status code with the message (and the
    field in trailing metadata). An unexpected exception is logged with a reference and
    answered INTERNAL with only that reference: no traceback leaves the process. Every
    call is counted by method and status code, and timed."""

    def __init__(self, ids: IdGenerator, metrics: m.Metrics) -> None:
        self._ids = ids
        self._log = log.get("grpc")
        self._requests = metrics.counter(m.GRPC_REQUESTS)
        self._durations = metrics.histogram(m.GRPC_DURATION)
        self._calls: dict[str, _CallMetrics] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(_QUIET):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:  # client streaming (uploads): same treatment
            return grpc.stream_unary_rpc_method_handler(
                self._wrap(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:  # server streaming (exports' rows and mails)
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _metrics_of(self, method: str) -> _CallMetrics:
        calls = self._calls.get(method)
        if calls is None:
            calls = self._calls[method] = _CallMetrics(self._requests, self._durations, method)
        return calls

    async def _refuse(self, err: DomainError, context: Context) -> None:
        """Answer a DomainError: its code and message, the field (and reason, retry-after)
        in trailing metadata."""
        self._log.info("rpc refused", code=err.code.name, error=err.message, field=err.field)
        trailing = []
        if err.field:
            trailing.append((identity.MD_FIELD, err.field))
        if err.reason:
            trailing.append((identity.MD_REASON, err.reason))
        retry_after = getattr(err, "retry_after_s", 0)
        if retry_after:
            trailing.append((identity.MD_RETRY_AFTER, str(retry_after)))
        if trailing:
            context.set_trailing_metadata(tuple(trailing))
        await context.abort(err.code, err.message)

    def _wrap_stream(
        self, method: str, behaviour: Callable[..., Any]
    ) -> Callable[..., AsyncIterator[Any]]:
        """A server-streaming method (an async generator): the same identity, logging,
        refusals and metrics as a unary one, for the whole stream."""
        calls = self._metrics_of(method)

        async def wrapped(request: Any, context: Context) -> AsyncIterator[Any]:
            ident = identity.Identity.from_metadata(context.invocation_metadata())
            token = identity.set_current(ident)
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN
            try:
                with log.operation(
                    tenant_id=ident.tenant_id,
                    operator_id=ident.operator_id,
                    correlation_id=ident.correlation_id,
                    rpc=method,
                ):
                    try:
                        async for item in behaviour(request, context):
                            yield item
                    except DomainError as err:
                        code = err.code
                        await self._refuse(err, context)
                    except grpc.aio.AbortError:
                        aborted = context.code()
                        if isinstance(aborted, grpc.StatusCode):
                            code = aborted
                        raise
                    except (asyncio.CancelledError, GeneratorExit):
                        code = grpc.StatusCode.CANCELLED
                        raise
                    except Exception:
                        code = grpc.StatusCode.INTERNAL
                        ref = self._ids.new_str()
                        self._log.exception("rpc failed", error_ref=ref)
                        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")
                    code = grpc.StatusCode.OK
            finally:
                calls.done(code, time.perf_counter() - started)
                with contextlib.suppress(ValueError):  # closed from another context
                    identity.reset(token)

        return wrapped

    def _wrap(self, method: str, behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        calls = self._metrics_of(method)

        # `request` is the message, or the request iterator of a client-streaming call.
        async def wrapped(request: Any, context: Context) -> Any:
            ident = identity.Identity.from_metadata(context.invocation_metadata())
            token = identity.set_current(ident)
            started = time.perf_counter()
            code = grpc.StatusCode.UNKNOWN  # what the caller is answered
            try:
                with log.operation(
                    tenant_id=ident.tenant_id,
                    operator_id=ident.operator_id,
                    correlation_id=ident.correlation_id,
                    rpc=method,
                    # most calls about one ticket name it so; others bind it with log.also
                    ticket_id=getattr(request, "ticket_id", ""),
                ):
                    try:
                        response = await behaviour(request, context)
                    except DomainError as err:
                        code = err.code
                        await self._refuse(err, context)
                    except grpc.aio.AbortError:
                        aborted = context.code()
                        if isinstance(aborted, grpc.StatusCode):
                            code = aborted
                        raise
                    except asyncio.CancelledError:
                        code = grpc.StatusCode.CANCELLED
                        raise
                    except Exception:
                        code = grpc.StatusCode.INTERNAL
                        ref = self._ids.new_str()
                        self._log.exception("rpc failed", error_ref=ref)
                        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")
                    code = grpc.StatusCode.OK
                    self._log.debug("rpc ok", ms=round((time.perf_counter() - started) * 1000, 2))
                    return response
            finally:
                calls.done(code, time.perf_counter() - started)
                identity.reset(token)

        return wrapped


MAX_REQUEST_BYTES = 64 * 1024 * 1024


class GrpcServer:
    """A grpc.aio server with the standard health service and reflection."""

    def __init__(
        self,
        service_name: str,
        host: str,
        port: int,
        ids: IdGenerator,
        metrics: m.Metrics | None = None,
    ) -> None:
        self.service_name = service_name
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(ids, metrics or m.Metrics(service_name))],
            options=[
                ("grpc.so_reuseport", 0),
                # requests carry whole mails (RecordSent: 60 MiB) and channel webhooks'
                # bodies (10 MB): gRPC's default of 4 MiB would refuse them
                ("grpc.max_receive_message_length", MAX_REQUEST_BYTES),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self._names: list[str] = [health.SERVICE_NAME, reflection.SERVICE_NAME]
        self._address = f"{host}:{port}"
        self.port = 0

    def add(
        self, register: Callable[[Any, grpc.aio.Server], None], servicer: Any, name: str
    ) -> None:
        """Register a servicer: `add(tickets_pb2_grpc.add_TicketsServiceServicer_to_server,
        TicketsApi(...), tickets_pb2.DESCRIPTOR.services_by_name['TicketsService'].full_name)`."""
        register(servicer, self.server)
        self._names.append(name)

    async def start(self) -> int:
        reflection.enable_server_reflection(self._names, self.server)
        self.port = self.server.add_insecure_port(self._address)
        if self.port == 0:
            raise OSError(f"cannot listen for gRPC on {self._address}")
        await self.server.start()
        return self.port

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", self.service_name, *self._names[2:]):
            await self.health.set(name, status)

    async def enter_graceful_shutdown(self) -> None:
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)
