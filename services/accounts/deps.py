"""What the accounts API's parts share, built once in the composition root (app.py), and
the conversions to protobuf they all use."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from switchboard.v1 import accounts_pb2, common_pb2

from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.ids import IdGenerator

from .announce import Announcer
from .board import BoardRepo
from .convert import ts
from .domain import OperatorRecord, Throttle
from .repo import AccountsRepo
from .sessions import SessionsRepo


@dataclass
class Deps:
    db: Database
    repo: AccountsRepo
    sessions: SessionsRepo
    board: BoardRepo
    clock: Clock
    ids: IdGenerator
    session_ttl: timedelta
    throttle: Throttle
    announce: Announcer


async def end_sessions(
    d: Deps,
    conn: asyncpg.Connection,
    tenant_id: str,
    operator_id: uuid.UUID,
    *,
    tokens: str,
    reason: str,
    actor: common_pb2.Actor,
    keep: str = "",
) -> int:
    """End an operator's browser sessions (but `keep`) and the API tokens `tokens` says
    (sessions.end_all_of), and announce it in the same transaction: how many ended."""
    ended = await d.sessions.end_all_of(conn, tenant_id, operator_id, keep=keep, tokens=tokens)
    await d.announce.sessions_ended(
        conn,
        tenant_id=tenant_id,
        operator_id=str(operator_id),
        session_ids=ended,
        reason=reason,
        actor=actor,
    )
    return len(ended)


def operator_pb(op: OperatorRecord) -> accounts_pb2.Operator:
    pb = accounts_pb2.Operator(
        id=op.id,
        tenant_id=op.tenant_id,
        login=op.login,
        display_name=op.display_name,
        roles=list(op.roles),
        permissions=sorted(op.permissions),
        inbox_ids=list(op.inbox_ids),
        all_inboxes=op.all_inboxes,
        addresses=list(op.addresses),
        language=op.language,
        time_zone=op.time_zone,
        skills=list(op.skills),
        capacity=op.capacity,
        active=op.active,
        must_change_password=op.must_change_password,
        ip_allowlist=list(op.ip_allowlist),
    )
    ts(op.password_changed_at, pb.password_changed_at)
    ts(op.created_at, pb.created_at)
    ts(op.updated_at, pb.updated_at)
    return pb
