"""Reply-lock rules (TKT-3) without I/O: the Redis key of a ticket's lock, what the key
holds, who may take a lock over, and when a fence is current.

The key `sb:tickets:lock:<tenant>:<ticket>` holds `<fence>|<holder id>|<acquired ms>|<name>`.
Fence 0 marks a lock being granted: its holder won the Redis mutex and is drawing a fence
from PostgreSQL's `reply_lock_fence` sequence; nobody can write with fence 0 (fences start
at 1), and a competitor is told who is replying all the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.runtime import permissions
from services.runtime.errors import InvalidArgument

KEY_PREFIX = "sb:tickets:lock:"
FENCE_MAX = 2**63 - 1  # a PostgreSQL bigint
NAME_MAX = 200
PENDING = 0


def lock_key(tenant_id: str, ticket_id: str) -> str:
    """The Redis key of one ticket's lock; the tenant is part of it, so a lock of one
    tenant can never be seen or touched through another tenant's ids."""
    return f"{KEY_PREFIX}{tenant_id}:{ticket_id}"


@dataclass(frozen=True)
class LockValue:
    fence: int
    holder_id: str
    acquired_ms: int
    holder_name: str = ""

    @property
    def pending(self) -> bool:
        return self.fence == PENDING

    def encode(self) -> str:
        return f"{self.fence}|{self.holder_id}|{self.acquired_ms}|{self.holder_name}"

    def with_fence(self, fence: int) -> LockValue:
        return LockValue(fence, self.holder_id, self.acquired_ms, self.holder_name)

    @property
    def acquired_at(self) -> datetime:
        return datetime.fromtimestamp(self.acquired_ms / 1000, UTC)

    @property
    def owner_prefix(self) -> str:
        return owner_prefix(self.fence, self.holder_id)


def owner_prefix(fence: int, holder_id: str) -> str:
    """What a value starts with when it is `holder_id`'s lock with `fence`: renew and
    release compare this (never the whole value), in Redis, atomically."""
    return f"{fence}|{holder_id}|"


def decode(raw: bytes | str | None) -> LockValue | None:
    """A stored value, or None for a missing or unreadable one."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    parts = text.split("|", 3)
    if len(parts) != 4 or not parts[1]:
        return None
    try:
        fence, acquired_ms = int(parts[0]), int(parts[2])
    except ValueError:
        return None
    if fence < 0:
        return None
    return LockValue(fence, parts[1], acquired_ms, parts[3])


def new_claim(holder_id: str, holder_name: str, now: datetime) -> LockValue:
    """The value a caller puts in Redis when it wins the mutex, before it has a fence."""
    name = " ".join(holder_name.split())[:NAME_MAX]
    return LockValue(PENDING, holder_id, int(now.timestamp() * 1000), name)


def may_take_over(granted: Iterable[str]) -> bool:
    """Who holds the permission take_over_locks (supervisors and administrators, as the
    built-in roles stand) may take a lock over from its holder."""
    return permissions.TAKE_OVER_LOCKS in set(granted)


def checked_fence(fence: int, field: str = "fence") -> int:
    """A fence the caller says it holds: a positive whole number."""
    if isinstance(fence, bool) or not isinstance(fence, int) or not 1 <= fence <= FENCE_MAX:
        raise InvalidArgument(f"{field} must be a positive whole number", field=field)
    return fence


def fence_problem(
    held: LockValue | None, recorded_fence: int | None, operator_id: str, fence: int
) -> str | None:
    """Why a reply-related write with `fence` by `operator_id` must be refused, or None when
    `fence` is current: Redis holds exactly this fence for this operator, and PostgreSQL
    has not recorded a later grant (a Redis that lost or rewound its data cannot bring an
    old lock back to life)."""
    if held is None:
        return "you do not hold the reply lock of this ticket (it expired or was released)"
    if held.fence != fence:
        if held.holder_id == operator_id and not held.pending:
            return "this reply lock is stale: you hold a newer one"
        return "this reply lock is stale: someone else holds the reply lock now"
    if held.holder_id != operator_id:
        return "this reply lock belongs to someone else"
    if recorded_fence is not None and recorded_fence > fence:
        return "this reply lock is stale: a later lock was granted"
    return None


def expires_at(now: datetime, ttl_ms: int) -> datetime:
    return now + timedelta(milliseconds=max(ttl_ms, 0))


def sweep_every_s(ttl_s: float) -> float:
    """How often the expiry sweep looks: a quarter of the TTL, between 0.2 and 5 s."""
    return max(0.2, min(5.0, ttl_s / 4))
