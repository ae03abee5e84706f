"""What accounts tells the gateways about who may still see what (SEC-9): sessions and
API tokens that ended, and operators whose access changed. Each announcement is written
to the outbox in the transaction of the change it announces, and the relay is woken once
the transaction commits (`wake`), so the gateways close or re-authorise live sockets and
drop cached sessions within moments of the change, and never for a change that did not
commit."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import events
from services.runtime.clock import Clock
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox

# SessionEnded.reason
LOGOUT = "logout"
REVOKED = "revoked"
TOKEN_REVOKED = "token_revoked"
PASSWORD_CHANGED = "password_changed"
PASSWORD_RESET = "password_reset"
DEACTIVATED = "deactivated"
# AccessChanged.reason (and PASSWORD_RESET)
OPERATOR_CHANGED = "operator_changed"
ROLE_CHANGED = "role_changed"
INBOX_CHANGED = "inbox_changed"
TENANT_SETTINGS = "tenant_settings"


def operator_ref(operator_id: str) -> common_pb2.Actor:
    """The actor of a change an operator made to their own session (logging out)."""
    return common_pb2.Actor(kind=common_pb2.Actor.KIND_OPERATOR, id=operator_id, display="")


class Announcer:
    def __init__(self, outbox: Outbox, ids: IdGenerator, clock: Clock) -> None:
        self._outbox = outbox
        self._ids = ids
        self._clock = clock

    async def sessions_ended(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: str,
        operator_id: str,
        session_ids: Sequence[str],
        reason: str,
        actor: common_pb2.Actor,
    ) -> None:
        if not session_ids:
            return
        payload = events_pb2.SessionEnded(
            operator_id=operator_id, session_ids=list(session_ids), reason=reason
        )
        await self._add(conn, events.SESSION_ENDED, tenant_id, payload, actor)

    async def access_changed(
        self,
        conn: asyncpg.Connection,
        *,
        tenant_id: str,
        operator_ids: Sequence[str] = (),
        whole_tenant: bool = False,
        reason: str,
        actor: common_pb2.Actor,
    ) -> None:
        if not operator_ids and not whole_tenant:
            return
        payload = events_pb2.AccessChanged(
            operator_ids=[] if whole_tenant else sorted(set(operator_ids)),
            whole_tenant=whole_tenant,
            reason=reason,
        )
        await self._add(conn, events.ACCESS_CHANGED, tenant_id, payload, actor)

    def wake(self) -> None:
        """After the commit: the relay publishes now rather than at its next poll."""
        self._outbox.wake()

    async def _add(
        self,
        conn: asyncpg.Connection,
        etype: events.EventType,
        tenant_id: str,
        payload: events_pb2.SessionEnded | events_pb2.AccessChanged,
        actor: common_pb2.Actor,
    ) -> None:
        env = events.envelope(
            etype,
            event_id=self._ids.new_str(),
            tenant_id=tenant_id,
            occurred_at=self._clock.now(),
            payload=payload,
            actor=actor,
        )
        await self._outbox.add(conn, env)
