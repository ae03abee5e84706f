"""Errors as JSON: `{"error": {"code", "message", "field"}}`. gRPC status codes map to
400 / 401 / 403 / 404 / 409 / 503; an unexpected failure is a 500 with only a reference."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from aiohttp import web

from services.runtime import identity, log
from services.runtime.ids import IdGenerator

_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_argument"),
    grpc.StatusCode.OUT_OF_RANGE: (400, "invalid_argument"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "unauthenticated"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_denied"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "already_exists"),
    grpc.StatusCode.ABORTED: (409, "aborted"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "resource_exhausted"),
    grpc.StatusCode.UNAVAILABLE: (503, "unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "unavailable"),
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        *,
        retry_after_s: int = 0,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.retry_after_s = retry_after_s


def error_response(
    status: int, code: str, message: str, field: str | None = None, retry_after_s: int = 0
) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s else None
    return web.json_response({"error": body}, status=status, headers=headers)


def from_grpc(err: grpc.aio.AioRpcError) -> ApiError:
    status, code = _HTTP.get(err.code(), (502, "upstream_error"))
    field = None
    retry_after = 0
    for key, value in err.trailing_metadata() or ():
        text = value if isinstance(value, str) else value.decode()
        if key == identity.MD_FIELD:
            field = text
        elif key == identity.MD_REASON and text:
            code = text
        elif key == identity.MD_RETRY_AFTER and text.isdigit():
            retry_after = min(int(text), 86_400)
    message = err.details() or err.code().name.lower()
    if status == 503:
        message = f"a service did not answer ({err.code().name}); try again"
    elif status >= 500:
        message = f"a service failed ({err.code().name})"
    return ApiError(status, code, message, field, retry_after_s=retry_after)


T = TypeVar("T")


async def renamed(call: Awaitable[T], names: dict[str, str]) -> T:
    """Await a gRPC call; the field of a service's error is renamed to this API's name for
    it (e.g. `source_ticket_id` → `source_id`)."""
    try:
        return await call
    except grpc.aio.AioRpcError as exc:
        err = from_grpc(exc)
        if err.field not in names:
            raise
        err.field = names[err.field]
        raise err from None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_middleware(ids: IdGenerator) -> Any:
    logger = log.get("gateway.http")

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as err:
            return error_response(err.status, err.code, err.message, err.field, err.retry_after_s)
        except grpc.aio.AioRpcError as err:
            api = from_grpc(err)
            if api.status >= 500:
                logger.warning("upstream error", path=request.path, grpc_code=err.code().name)
            return error_response(api.status, api.code, api.message, api.field, api.retry_after_s)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            return error_response(exc.status, code, exc.reason)
        except Exception:
            ref = ids.new_str()
            logger.exception("request failed", path=request.path, error_ref=ref)
            return error_response(500, "internal", f"internal error (ref {ref})")

    return middleware
