"""routing's storage of rules (its own database; every query names the tenant) and the
in-memory cache intake reads them from: a tenant's rules are loaded once and refreshed
after a change — at once on the replica that made it, and on the others when they see
the tenant's revision moved (checked at most every `check_every_s`, not per mail)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg

from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

from .rules import validate
from .rules.model import Rule, RuleDef

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class StoredRule:
    rule: Rule
    created_at: datetime
    updated_at: datetime
    updated_by: str


def _u(value: str) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None


def _stored(row: asyncpg.Record, *, version_row: bool = False) -> StoredRule:
    body = row["body"]
    definition = validate.parse(json.loads(body) if isinstance(body, str) else body)
    if version_row:
        return StoredRule(
            Rule(str(row["rule_id"]), row["position"], row["version"], definition),
            row["saved_at"],
            row["saved_at"],
            str(row["saved_by"] or ""),
        )
    return StoredRule(
        Rule(str(row["id"]), row["position"], row["version"], definition),
        row["created_at"],
        row["updated_at"],
        str(row["updated_by"] or ""),
    )


def _body(definition: RuleDef) -> dict[str, Any]:
    return validate.to_json(definition)


class RuleStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _lock(self, conn: asyncpg.Connection, tenant: str) -> None:
        """Changes of one tenant's rules take turns (positions stay dense)."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('rules:' || $1))", tenant)

    async def _bump(self, conn: asyncpg.Connection, tenant: str) -> None:
        await conn.execute(
            "INSERT INTO rule_revisions (tenant_id, revision) VALUES ($1, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET revision = rule_revisions.revision + 1",
            uuid.UUID(tenant),
        )

    async def _version(
        self, conn: asyncpg.Connection, tenant: str, s: StoredRule, *, deleted: bool = False
    ) -> None:
        await conn.execute(
            "INSERT INTO rule_versions (tenant_id, rule_id, version, body, position, saved_at, "
            "saved_by, deleted) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
            uuid.UUID(tenant),
            uuid.UUID(s.rule.id),
            s.rule.version,
            _body(s.rule.definition),
            s.rule.position,
            s.updated_at,
            _u(s.updated_by),
            deleted,
        )

    async def revision(self, conn: Conn, tenant: str) -> int:
        found = await conn.fetchval(
            "SELECT revision FROM rule_revisions WHERE tenant_id = $1", uuid.UUID(tenant)
        )
        return int(found or 0)

    async def rules(self, conn: Conn, tenant: str) -> list[StoredRule]:
        rows = await conn.fetch(
            "SELECT * FROM rules WHERE tenant_id = $1 ORDER BY position, id", uuid.UUID(tenant)
        )
        return [_stored(r) for r in rows]

    async def rule(self, conn: Conn, tenant: str, rule_id: uuid.UUID) -> StoredRule:
        row = await conn.fetchrow(
            "SELECT * FROM rules WHERE tenant_id = $1 AND id = $2", uuid.UUID(tenant), rule_id
        )
        if row is None:
            raise NotFound("no such rule", field="rule_id")
        return _stored(row)

    async def versions(self, conn: Conn, tenant: str, rule_id: uuid.UUID) -> list[StoredRule]:
        rows = await conn.fetch(
            "SELECT * FROM rule_versions WHERE tenant_id = $1 AND rule_id = $2 AND NOT deleted "
            "ORDER BY version DESC",
            uuid.UUID(tenant),
            rule_id,
        )
        if not rows:
            raise NotFound("no such rule", field="rule_id")
        return [_stored(r, version_row=True) for r in rows]

    async def create(
        self,
        tenant: str,
        rule_id: str,
        definition: RuleDef,
        position: int | None,
        at: datetime,
        by: str,
    ) -> StoredRule:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, tenant)
            count = int(
                await conn.fetchval(
                    "SELECT count(*) FROM rules WHERE tenant_id = $1", uuid.UUID(tenant)
                )
            )
            if position is None or position > count:
                position = count
            if position < 0:
                raise InvalidArgument("must be 0 or more", field="position")
            await conn.execute(
                "UPDATE rules SET position = position + 1 WHERE tenant_id = $1 AND position >= $2",
                uuid.UUID(tenant),
                position,
            )
            s = StoredRule(Rule(rule_id, position, 1, definition), at, at, by)
            await conn.execute(
                "INSERT INTO rules (tenant_id, id, inbox_id, position, version, body, created_at, "
                "updated_at, updated_by) VALUES ($1, $2, $3, $4, 1, $5::jsonb, $6, $6, $7)",
                uuid.UUID(tenant),
                uuid.UUID(rule_id),
                _u(definition.inbox_id),
                position,
                _body(definition),
                at,
                _u(by),
            )
            await self._version(conn, tenant, s)
            await self._bump(conn, tenant)
            return s

    async def update(
        self,
        tenant: str,
        rule_id: uuid.UUID,
        definition: RuleDef,
        version: int,
        at: datetime,
        by: str,
    ) -> StoredRule:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, tenant)
            current = await self.rule(conn, tenant, rule_id)
            if current.rule.version != version:
                raise FailedPrecondition(
                    f"the rule was changed meanwhile (version {current.rule.version}, "
                    f"not {version}): reload it",
                    field="version",
                )
            row = await conn.fetchrow(
                "UPDATE rules SET inbox_id = $3, body = $4::jsonb, version = version + 1, "
                "updated_at = $5, updated_by = $6 WHERE tenant_id = $1 AND id = $2 RETURNING *",
                uuid.UUID(tenant),
                rule_id,
                _u(definition.inbox_id),
                _body(definition),
                at,
                _u(by),
            )
            s = _stored(row)
            await self._version(conn, tenant, s)
            await self._bump(conn, tenant)
            return s

    async def delete(self, tenant: str, rule_id: uuid.UUID, at: datetime, by: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, tenant)
            current = await self.rule(conn, tenant, rule_id)
            await conn.execute(
                "DELETE FROM rules WHERE tenant_id = $1 AND id = $2", uuid.UUID(tenant), rule_id
            )
            await conn.execute(
                "UPDATE rules SET position = position - 1 WHERE tenant_id = $1 AND position > $2",
                uuid.UUID(tenant),
                current.rule.position,
            )
            gone = StoredRule(current.rule, current.created_at, at, by)
            await self._version(conn, tenant, gone, deleted=True)
            await self._bump(conn, tenant)

    async def reorder(self, tenant: str, rule_ids: list[uuid.UUID]) -> list[StoredRule]:
        async with self.pool.acquire() as conn, conn.transaction():
            await self._lock(conn, tenant)
            have = {
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM rules WHERE tenant_id = $1", uuid.UUID(tenant)
                )
            }
            if len(rule_ids) != len(set(rule_ids)) or set(rule_ids) != have:
                raise InvalidArgument(
                    "name every rule of the tenant exactly once, in the new order",
                    field="rule_ids",
                )
            await conn.execute(
                "UPDATE rules r SET position = o.pos - 1 FROM unnest($2::uuid[]) "
                "WITH ORDINALITY AS o(id, pos) WHERE r.tenant_id = $1 AND r.id = o.id",
                uuid.UUID(tenant),
                rule_ids,
            )
            await self._bump(conn, tenant)
            return await self.rules(conn, tenant)

    # -- once per ticket -----------------------------------------------------------------

    async def ran_on(self, conn: Conn, tenant: str, ticket_id: str) -> frozenset[str]:
        if not ticket_id:
            return frozenset()
        rows = await conn.fetch(
            "SELECT rule_id FROM rule_runs WHERE tenant_id = $1 AND ticket_id = $2",
            uuid.UUID(tenant),
            uuid.UUID(ticket_id),
        )
        return frozenset(str(r["rule_id"]) for r in rows)

    async def note_runs(
        self, conn: Conn, tenant: str, ticket_id: str, rule_ids: list[str], at: datetime
    ) -> None:
        if not ticket_id or not rule_ids:
            return
        await conn.execute(
            "INSERT INTO rule_runs (tenant_id, ticket_id, rule_id, ran_at) "
            "SELECT $1, $2, r, $4 FROM unnest($3::uuid[]) AS r ON CONFLICT DO NOTHING",
            uuid.UUID(tenant),
            uuid.UUID(ticket_id),
            [uuid.UUID(r) for r in rule_ids],
            at,
        )


class RuleCache:
    """A tenant's rules in memory, in order; refreshed when the tenant's revision moved."""

    def __init__(self, store: RuleStore, *, check_every_s: float = 2.0) -> None:
        self._store = store
        self._every = check_every_s
        self._cache: dict[str, tuple[int, float, list[Rule]]] = {}
        self._watchers: list[Callable[[str, RuleDef], None]] = []

    def forget(self, tenant: str) -> None:
        self._cache.pop(tenant, None)

    def watch(self, saved: Callable[[str, RuleDef], None]) -> None:
        """`saved(tenant, definition)` after a rule was created or edited here."""
        self._watchers.append(saved)

    def saved(self, tenant: str, definition: RuleDef) -> None:
        self.forget(tenant)
        for saved in self._watchers:
            saved(tenant, definition)

    async def rules(self, tenant: str) -> list[Rule]:
        now = time.monotonic()
        hit = self._cache.get(tenant)
        if hit is not None and now - hit[1] < self._every:
            return hit[2]
        revision = await self._store.revision(self._store.pool, tenant)
        if hit is not None and hit[0] == revision:
            self._cache[tenant] = (revision, now, hit[2])
            return hit[2]
        rules = [s.rule for s in await self._store.rules(self._store.pool, tenant)]
        self._cache[tenant] = (revision, now, rules)
        return rules
