"""The caller's identity, carried in gRPC metadata from the gateway to every service.

Services read it from a contextvar set by the server interceptor; domain code gets it as
an argument. Every query is scoped by `tenant_id`: a call without one is refused.

An operator's call also carries their permissions (SEC-4) and the inboxes they may see
(SEC-5; `*` for every inbox), both verified by the gateway from accounts. Fail closed: an
operator's call without `x-sb-inboxes` sees no inbox. A call without an operator (one
service asking another, e.g. routing asking tickets) is not scoped to inboxes.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

from switchboard.v1 import common_pb2

from .errors import PermissionDenied, Unauthenticated
from .permissions import SEE_CUSTOMER_ADDRESSES

MD_TENANT = "x-sb-tenant-id"
MD_OPERATOR = "x-sb-operator-id"
MD_ROLES = "x-sb-roles"
MD_CORRELATION = "x-sb-correlation-id"
MD_OPERATOR_NAME = "x-sb-operator-name"  # percent-encoded UTF-8 (metadata is ASCII)
MD_PERMISSIONS = "x-sb-permissions"
MD_INBOXES = "x-sb-inboxes"  # inbox ids, comma-separated; "*" for every inbox
MD_TIME_ZONE = "x-sb-time-zone"  # the operator's (or their tenant's) IANA time zone
MD_LANGUAGE = "x-sb-language"  # the operator's language: ja or en
MD_FIELD = "x-sb-field"  # trailing metadata: the request field an error is about
MD_SESSION = "x-sb-session-id"  # the gateway: the session or API token of the request
MD_RETRY_AFTER = "x-sb-retry-after"  # trailing metadata: seconds until a retry may work
MD_REASON = "x-sb-reason"  # trailing metadata: a refusal's name (e.g. approval_required)
ALL_INBOXES = "*"


def _split(value: str) -> tuple[str, ...]:
    return tuple(v for v in value.split(",") if v)


@dataclass(frozen=True)
class Identity:
    tenant_id: str = ""
    operator_id: str = ""
    roles: tuple[str, ...] = field(default_factory=tuple)
    correlation_id: str = ""
    display_name: str = ""
    permissions: frozenset[str] = field(default_factory=frozenset)
    # the inboxes an operator may see: ids, or None for every inbox (ALL_INBOXES, or a
    # call without an operator)
    inboxes: frozenset[str] | None = None
    time_zone: str = ""
    language: str = ""

    def metadata(self) -> list[tuple[str, str]]:
        md = [(MD_TENANT, self.tenant_id), (MD_OPERATOR, self.operator_id)]
        if self.roles:
            md.append((MD_ROLES, ",".join(self.roles)))
        if self.correlation_id:
            md.append((MD_CORRELATION, self.correlation_id))
        if self.display_name:
            md.append((MD_OPERATOR_NAME, quote(self.display_name, safe="")))
        if self.permissions:
            md.append((MD_PERMISSIONS, ",".join(sorted(self.permissions))))
        if self.operator_id:
            md.append(
                (
                    MD_INBOXES,
                    ALL_INBOXES if self.inboxes is None else ",".join(sorted(self.inboxes)),
                )
            )
        if self.time_zone:
            md.append((MD_TIME_ZONE, self.time_zone))
        if self.language:
            md.append((MD_LANGUAGE, self.language))
        return [(k, v) for k, v in md if v]

    @classmethod
    def from_metadata(cls, md: Iterable[tuple[str, str | bytes]] | None) -> Identity:
        values: dict[str, str] = {}
        for key, value in md or ():
            values[key] = value.decode() if isinstance(value, bytes) else value
        operator_id = values.get(MD_OPERATOR, "")
        inboxes: frozenset[str] | None = None
        raw_inboxes = values.get(MD_INBOXES, "")
        if operator_id and raw_inboxes != ALL_INBOXES:
            inboxes = frozenset(_split(raw_inboxes))  # fail closed: none when absent
        return cls(
            tenant_id=values.get(MD_TENANT, ""),
            operator_id=operator_id,
            roles=_split(values.get(MD_ROLES, "")),
            correlation_id=values.get(MD_CORRELATION, ""),
            display_name=unquote(values.get(MD_OPERATOR_NAME, ""))[:200],
            permissions=frozenset(_split(values.get(MD_PERMISSIONS, ""))),
            inboxes=inboxes,
            time_zone=values.get(MD_TIME_ZONE, "")[:64],
            language=values.get(MD_LANGUAGE, "")[:8],
        )

    def may(self, permission: str) -> bool:
        return permission in self.permissions

    def sees_addresses(self) -> bool:
        """Whether customers' addresses and phone numbers are the caller's to see, and so
        to search and sort by (SEC-6): an operator with see_customer_addresses, or a call
        without an operator (one service asking another)."""
        return not self.operator_id or SEE_CUSTOMER_ADDRESSES in self.permissions

    def sees_inbox(self, inbox_id: object) -> bool:
        """Whether the caller may see tickets and mail of this inbox (SEC-5)."""
        return self.inboxes is None or str(inbox_id) in self.inboxes

    def inbox_filter(self) -> list[str] | None:
        """The inbox ids to restrict a query to, or None when the caller sees them all."""
        return None if self.inboxes is None else sorted(self.inboxes)


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


def require_permission(ident: Identity, permission: str, doing: str = "do this") -> None:
    """PERMISSION_DENIED unless the caller holds `permission`."""
    if not ident.may(permission):
        raise PermissionDenied(f"you may not {doing} (needs the permission {permission})")


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
