"""Domain errors. Services raise these; the gRPC layer maps them to status codes and the
gateway maps those to HTTP (400 / 404 / 409 / 403 / 401) with a JSON error body."""

from __future__ import annotations

import grpc


class DomainError(Exception):
    """`reason`, when set, is a machine-readable name for this refusal (e.g.
    `approval_required`), sent as trailing metadata and answered by the gateway as the
    error's `code` instead of the status code's name."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self, message: str, *, field: str | None = None, reason: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.reason = reason


class InvalidArgument(DomainError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND


class FailedPrecondition(DomainError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(DomainError):
    """Too many attempts: try again after `retry_after_s` (sent as trailing metadata and
    answered by the gateway as 429 with Retry-After)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: int = 0) -> None:
        super().__init__(message, field=field)
        self.retry_after_s = retry_after_s


class Poison(Exception):
    """An event can never be handled (bad bytes, the wrong payload): dead-letter it now."""


class Unavailable(DomainError):
    """A dependency is down; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE
