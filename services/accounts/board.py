"""Notices, the bulletin board (SEC-8) and the operation log (SEC-7): accounts' storage.

The operation log is written from `sb.gateway.operation.performed` events (the gateway
sees every state-changing request); `OperationLog.on_event` applies each once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
from switchboard.v1 import accounts_pb2, events_pb2

from services.runtime import events, log, registry
from services.runtime.bus import Delivery
from services.runtime.db import Database
from services.runtime.errors import NotFound
from services.runtime.outbox import first_time
from services.runtime.paging import Cursor

from .convert import operator_ref, ts

OPERATIONS_DURABLE = registry.ACCOUNTS_OPERATIONS.durable


def notice_pb(r: asyncpg.Record) -> accounts_pb2.Notice:
    n = accounts_pb2.Notice(
        id=str(r["id"]),
        title=r["title"],
        body=r["body"],
        author=operator_ref(r["author_id"], r["author_name"]),
    )
    for name in ("starts_at", "ends_at", "created_at", "updated_at"):
        ts(r[name], getattr(n, name))
    return n


def post_pb(r: asyncpg.Record) -> accounts_pb2.Post:
    p = accounts_pb2.Post(
        id=str(r["id"]),
        title=r["title"],
        body=r["body"],
        author=operator_ref(r["author_id"], r["author_name"]),
        comment_count=r["comment_count"],
    )
    ts(r["created_at"], p.created_at)
    return p


def comment_pb(r: asyncpg.Record) -> accounts_pb2.PostComment:
    c = accounts_pb2.PostComment(
        id=str(r["id"]),
        post_id=str(r["post_id"]),
        author=operator_ref(r["author_id"], r["author_name"]),
        body=r["body"],
    )
    ts(r["created_at"], c.created_at)
    return c


def operation_pb(r: asyncpg.Record) -> accounts_pb2.Operation:
    op = accounts_pb2.Operation(
        id=str(r["id"]),
        operator=operator_ref(r["operator_id"], r["operator_name"]),
        action=r["action"],
        method=r["method"],
        path=r["path"],
        target=r["target"],
        status=r["status"],
        client_address=r["client_address"],
        request_id=r["request_id"],
    )
    op.at.FromDatetime(r["at"])
    return op


class BoardRepo:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # -- notices -----------------------------------------------------------------------

    async def notices(self, tenant_id: str, now: datetime | None) -> list[accounts_pb2.Notice]:
        """All notices of the tenant (newest first), or those showing at `now`."""
        return [
            notice_pb(r)
            for r in await self._pool.fetch(
                "SELECT * FROM notices WHERE tenant_id = $1 "
                "AND ($2::timestamptz IS NULL OR (starts_at <= $2 AND ends_at > $2)) "
                "ORDER BY starts_at DESC, id DESC LIMIT 500",
                uuid.UUID(tenant_id),
                now,
            )
        ]

    async def put_notice(
        self,
        *,
        tenant_id: str,
        notice_id: uuid.UUID,
        new: bool,
        title: str,
        body: str,
        starts_at: datetime,
        ends_at: datetime,
        author_id: str,
        author_name: str,
        now: datetime,
    ) -> accounts_pb2.Notice:
        if new:
            row = await self._pool.fetchrow(
                "INSERT INTO notices (id, tenant_id, title, body, starts_at, ends_at, author_id, "
                "author_name, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$9) "
                "RETURNING *",
                notice_id,
                uuid.UUID(tenant_id),
                title,
                body,
                starts_at,
                ends_at,
                uuid.UUID(author_id),
                author_name,
                now,
            )
            return notice_pb(row)
        row = await self._pool.fetchrow(
            "UPDATE notices SET title = $3, body = $4, starts_at = $5, ends_at = $6, "
            "updated_at = $7 WHERE tenant_id = $1 AND id = $2 RETURNING *",
            uuid.UUID(tenant_id),
            notice_id,
            title,
            body,
            starts_at,
            ends_at,
            now,
        )
        if row is None:
            raise NotFound("no such notice", field="notice_id")
        return notice_pb(row)

    async def delete_notice(self, tenant_id: str, notice_id: uuid.UUID) -> None:
        status = await self._pool.execute(
            "DELETE FROM notices WHERE tenant_id = $1 AND id = $2", uuid.UUID(tenant_id), notice_id
        )
        if status == "DELETE 0":
            raise NotFound("no such notice", field="notice_id")

    # -- the bulletin board ------------------------------------------------------------

    async def posts(
        self, tenant_id: str, after: Cursor | None, limit: int
    ) -> list[accounts_pb2.Post]:
        return [
            post_pb(r)
            for r in await self._pool.fetch(
                "SELECT p.*, (SELECT count(*) FROM post_comments c WHERE c.tenant_id = p.tenant_id "
                "AND c.post_id = p.id) AS comment_count FROM posts p "
                "WHERE p.tenant_id = $1 AND p.deleted_at IS NULL "
                "AND ($2::timestamptz IS NULL OR (p.created_at, p.id) < ($2, $3)) "
                "ORDER BY p.created_at DESC, p.id DESC LIMIT $4",
                uuid.UUID(tenant_id),
                after.received_at if after else None,
                after.id if after else None,
                limit,
            )
        ]

    async def post(self, tenant_id: str, post_id: uuid.UUID) -> accounts_pb2.Post:
        """A post with its comments."""
        tenant = uuid.UUID(tenant_id)
        row = await self._pool.fetchrow(
            "SELECT p.*, (SELECT count(*) FROM post_comments c WHERE c.tenant_id = p.tenant_id "
            "AND c.post_id = p.id) AS comment_count FROM posts p "
            "WHERE p.tenant_id = $1 AND p.id = $2 AND p.deleted_at IS NULL",
            tenant,
            post_id,
        )
        if row is None:
            raise NotFound("no such post", field="post_id")
        comments = await self._pool.fetch(
            "SELECT * FROM post_comments WHERE tenant_id = $1 AND post_id = $2 "
            "ORDER BY created_at, id LIMIT 1000",
            tenant,
            post_id,
        )
        post = post_pb(row)
        post.comments.extend(comment_pb(c) for c in comments)
        return post

    async def create_post(
        self,
        *,
        tenant_id: str,
        post_id: uuid.UUID,
        title: str,
        body: str,
        author_id: str,
        author_name: str,
        now: datetime,
    ) -> accounts_pb2.Post:
        row = await self._pool.fetchrow(
            "INSERT INTO posts (id, tenant_id, title, body, author_id, author_name, created_at) "
            "VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING *, 0 AS comment_count",
            post_id,
            uuid.UUID(tenant_id),
            title,
            body,
            uuid.UUID(author_id),
            author_name,
            now,
        )
        return post_pb(row)

    async def add_comment(
        self,
        *,
        tenant_id: str,
        comment_id: uuid.UUID,
        post_id: uuid.UUID,
        body: str,
        author_id: str,
        author_name: str,
        now: datetime,
    ) -> accounts_pb2.PostComment:
        row = await self._pool.fetchrow(
            "INSERT INTO post_comments (id, tenant_id, post_id, body, author_id, author_name, "
            "created_at) SELECT $1, $2, p.id, $4, $5, $6, $7 FROM posts p "
            "WHERE p.tenant_id = $2 AND p.id = $3 AND p.deleted_at IS NULL RETURNING *",
            comment_id,
            uuid.UUID(tenant_id),
            post_id,
            body,
            uuid.UUID(author_id),
            author_name,
            now,
        )
        if row is None:
            raise NotFound("no such post", field="post_id")
        return comment_pb(row)

    async def post_author(self, tenant_id: str, post_id: uuid.UUID) -> str:
        author = await self._pool.fetchval(
            "SELECT author_id FROM posts WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL",
            uuid.UUID(tenant_id),
            post_id,
        )
        if author is None:
            raise NotFound("no such post", field="post_id")
        return str(author)

    async def delete_post(self, tenant_id: str, post_id: uuid.UUID, now: datetime) -> None:
        await self._pool.execute(
            "UPDATE posts SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(tenant_id),
            post_id,
            now,
        )

    # -- the operation log -------------------------------------------------------------

    async def operations(
        self,
        tenant_id: str,
        *,
        operator_id: uuid.UUID | None,
        action: str,
        target: str,
        start: datetime | None,
        end: datetime | None,
        text: str,
        after: Cursor | None,
        limit: int,
    ) -> list[accounts_pb2.Operation]:
        like = None
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return [
            operation_pb(r)
            for r in await self._pool.fetch(
                "SELECT * FROM operation_log WHERE tenant_id = $1 "
                "AND ($2::uuid IS NULL OR operator_id = $2) "
                "AND ($3 = '' OR starts_with(action, $3)) AND ($4 = '' OR target = $4) "
                "AND ($5::timestamptz IS NULL OR at >= $5) "
                "AND ($6::timestamptz IS NULL OR at < $6) "
                "AND ($7::text IS NULL OR action ILIKE $7 OR path ILIKE $7 OR target ILIKE $7 "
                "     OR operator_name ILIKE $7) "
                "AND ($8::timestamptz IS NULL OR (at, id) < ($8, $9)) "
                "ORDER BY at DESC, id DESC LIMIT $10",
                uuid.UUID(tenant_id),
                operator_id,
                action,
                target,
                start,
                end,
                like,
                after.received_at if after else None,
                after.id if after else None,
                limit,
            )
        ]


class OperationLog:
    """The consumer of sb.gateway.operation.performed: one row per event, exactly once."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._log = log.get("accounts.oplog")

    async def on_event(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        op = events.payload_of(env, events.OPERATION_PERFORMED)
        async with self._db.transaction() as conn:
            if not await first_time(conn, OPERATIONS_DURABLE, env):
                return
            await conn.execute(
                "INSERT INTO operation_log (id, tenant_id, at, operator_id, operator_name, action, "
                "method, path, target, status, client_address, request_id) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) ON CONFLICT (id) DO NOTHING",
                uuid.UUID(env.event_id),
                uuid.UUID(env.tenant_id),
                env.occurred_at.ToDatetime(tzinfo=UTC),
                uuid.UUID(env.actor.id) if env.actor.id else None,
                env.actor.display[:200],
                op.action[:100],
                op.method[:10],
                op.path[:2000],
                op.target[:200],
                op.status,
                op.client_address[:100],
                op.request_id[:100],
            )
