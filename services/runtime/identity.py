"""The caller's identity, carried in gRPC metadata from the gateway to every service.

Services read it from a contextvar set by the server interceptor; domain code gets it as
an argument. Every query is scoped by `tenant_id`: a call without one is refused.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from switchboard.v1 import common_pb2

from .errors import PermissionDenied, Unauthenticated

MD_TENANT = "x-sb-tenant-id"
MD_OPERATOR = "x-sb-operator-id"
MD_ROLES = "x-sb-roles"
MD_CORRELATION = "x-sb-correlation-id"
MD_OPERATOR_NAME = "x-sb-operator-name"  # percent-encoded UTF-8 (metadata is ASCII)
MD_FIELD = "x-sb-field"  # trailing metadata: the request field an error is about


@dataclass(frozen=True)
class Identity:
    tenant_id: str = ""
    operator_id: str = ""
    roles: tuple[str, ...] = field(default_factory=tuple)
    correlation_id: str = ""
    display_name: str = ""

    def metadata(self) -> list[tuple[str, str]]:
        md = [(MD_TENANT, self.tenant_id), (MD_OPERATOR, self.operator_id)]
        if self.roles:
            md.append((MD_ROLES, ",".join(self.roles)))
        if self.correlation_id:
            md.append((MD_CORRELATION, self.correlation_id))
        if self.display_name:
            md.append((MD_OPERATOR_NAME, quote(self.display_name, safe="")))
        return [(k, v) for k, v in md if v]

    @classmethod
    def from_metadata(cls, md: Iterable[tuple[str, str | bytes]] | None) -> Identity:
        values: dict[str, str] = {}
        for key, value in md or ():
            values[key] = value.decode() if isinstance(value, bytes) else value
        roles = tuple(r for r in values.get(MD_ROLES, "").split(",") if r)
        return cls(
            tenant_id=values.get(MD_TENANT, ""),
            operator_id=values.get(MD_OPERATOR, ""),
            roles=roles,
            correlation_id=values.get(MD_CORRELATION, ""),
            display_name=unquote(values.get(MD_OPERATOR_NAME, ""))[:200],
        )


_current: contextvars.ContextVar[Identity] = contextvars.ContextVar(
    "sb_identity",
    default=Identity(),  # noqa: B039 - a frozen dataclass, never mutated
)


def set_current(identity: Identity) -> contextvars.Token[Identity]:
    return _current.set(identity)


def reset(token: contextvars.Token[Identity]) -> None:
    _current.reset(token)


def current() -> Identity:
    return _current.get()


def require_tenant() -> Identity:
    """The caller's identity; UNAUTHENTICATED when the call carries no tenant."""
    ident = _current.get()
    if not ident.tenant_id:
        raise Unauthenticated("the call carries no tenant (x-sb-tenant-id)")
    return ident


def has_role(ident: Identity, roles: Sequence[str]) -> bool:
    return any(r in ident.roles for r in roles)


def require_operator() -> Identity:
    """The caller's identity, which must name an operator (PERMISSION_DENIED otherwise)."""
    ident = require_tenant()
    if not ident.operator_id:
        raise PermissionDenied("this call needs an operator")
    return ident


def operator_actor(ident: Identity) -> common_pb2.Actor:
    """The event/audit actor for an operator's call."""
    return common_pb2.Actor(
        kind=common_pb2.Actor.KIND_OPERATOR,
        id=ident.operator_id,
        display=ident.display_name or ident.operator_id,
    )
