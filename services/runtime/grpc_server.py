"""grpc.aio server bootstrap: health, reflection, logging and identity interceptor, and
domain errors mapped to status codes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import identity, log
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


class ServerInterceptor(grpc.aio.ServerInterceptor):
    """Per call: read the caller's identity from metadata into a contextvar, bind log ids,
    log the outcome, and turn a DomainError into its status code with the message (and the
    field in trailing metadata). An unexpected exception is logged with a reference and
    answered INTERNAL with only that reference: no traceback leaves the process."""

    def __init__(self, ids: IdGenerator) -> None:
        self._ids = ids
        self._log = log.get("grpc")

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
        return handler

    def _wrap(self, method: str, behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        # `request` is the message, or the request iterator of a client-streaming call.
        async def wrapped(request: Any, context: Context) -> Any:
            ident = identity.Identity.from_metadata(context.invocation_metadata())
            token = identity.set_current(ident)
            started = time.perf_counter()
            try:
                with log.bound(
                    tenant_id=ident.tenant_id,
                    operator_id=ident.operator_id,
                    correlation_id=ident.correlation_id,
                    rpc=method,
                ):
                    try:
                        response = await behaviour(request, context)
                    except DomainError as err:
                        self._log.info(
                            "rpc refused", code=err.code.name, error=err.message, field=err.field
                        )
                        trailing = []
                        if err.field:
                            trailing.append((identity.MD_FIELD, err.field))
                        retry_after = getattr(err, "retry_after_s", 0)
                        if retry_after:
                            trailing.append((identity.MD_RETRY_AFTER, str(retry_after)))
                        if trailing:
                            context.set_trailing_metadata(tuple(trailing))
                        await context.abort(err.code, err.message)
                    except grpc.aio.AbortError:
                        raise
                    except Exception:
                        ref = self._ids.new_str()
                        self._log.exception("rpc failed", error_ref=ref)
                        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")
                    self._log.debug("rpc ok", ms=round((time.perf_counter() - started) * 1000, 2))
                    return response
            finally:
                identity.reset(token)

        return wrapped


class GrpcServer:
    """A grpc.aio server with the standard health service and reflection."""

    def __init__(self, service_name: str, host: str, port: int, ids: IdGenerator) -> None:
        self.service_name = service_name
        self.server = grpc.aio.server(
            interceptors=[ServerInterceptor(ids)],
            options=[("grpc.so_reuseport", 0)],
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
