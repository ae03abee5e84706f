"""routing's rule storage on a real PostgreSQL (services/routing/rule_store.py): versions
kept, positions dense, a stale edit refused, a bad order refused with nothing changed,
once-per-ticket runs, and a second replica's cache seeing a change made elsewhere."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from services.routing.rule_store import RuleCache, RuleStore
from services.routing.rules import validate
from services.routing.rules.model import RuleDef
from services.runtime.db import Database, load_migrations, runtime_migrations, with_database
from services.runtime.errors import FailedPrecondition, InvalidArgument
from tests.conftest import Infra

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
BY = "0190f0d2-0000-7000-8000-0000000000cc"


@pytest.fixture(scope="module")
async def db(infra: Infra) -> AsyncIterator[Database]:
    d = Database(with_database(infra.postgres.url, f"test_rules_{uuid.uuid4().hex[:8]}"))
    await d.open(runtime_migrations() + load_migrations("routing", "services.routing.migrations"))
    yield d
    await d.close()


def definition(name: str) -> RuleDef:
    return validate.parse(
        {
            "name": name,
            "triggers": ["new_ticket"],
            "actions": [{"type": "add_label", "value": name}],
        }
    )


async def make(store: RuleStore, tenant: str, name: str, position: int | None = None) -> str:
    rid = str(uuid.uuid4())
    await store.create(tenant, rid, definition(name), position, AT, BY)
    return rid


async def names(store: RuleStore, tenant: str) -> list[tuple[str, int]]:
    return [(s.rule.name, s.rule.position) for s in await store.rules(store.pool, tenant)]


async def test_positions_versions_conflicts_and_order(db: Database) -> None:
    store = RuleStore(db.pool)
    tenant = str(uuid.uuid4())
    a = await make(store, tenant, "a")
    b = await make(store, tenant, "b")
    c = await make(store, tenant, "c", position=0)
    assert await names(store, tenant) == [("c", 0), ("a", 1), ("b", 2)]

    edited = await store.update(tenant, uuid.UUID(a), definition("a2"), 1, AT, BY)
    assert edited.rule.version == 2
    with pytest.raises(FailedPrecondition) as stale:
        await store.update(tenant, uuid.UUID(a), definition("a3"), 1, AT, BY)
    assert stale.value.field == "version"
    versions = await store.versions(store.pool, tenant, uuid.UUID(a))
    assert [(v.rule.version, v.rule.name) for v in versions] == [(2, "a2"), (1, "a")]

    with pytest.raises(InvalidArgument) as bad:
        await store.reorder(tenant, [uuid.UUID(a), uuid.UUID(b)])
    assert bad.value.field == "rule_ids"
    assert await names(store, tenant) == [("c", 0), ("a2", 1), ("b", 2)]  # unchanged
    await store.reorder(tenant, [uuid.UUID(b), uuid.UUID(a), uuid.UUID(c)])
    assert await names(store, tenant) == [("b", 0), ("a2", 1), ("c", 2)]

    await store.delete(tenant, uuid.UUID(b), AT, BY)
    assert await names(store, tenant) == [("a2", 0), ("c", 1)]
    assert [v.rule.name for v in await store.versions(store.pool, tenant, uuid.UUID(b))] == ["b"]
    assert await names(store, str(uuid.uuid4())) == []  # another tenant has none


async def test_once_per_ticket_runs_are_kept_per_ticket(db: Database) -> None:
    store = RuleStore(db.pool)
    tenant, ticket, other = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    rid = await make(store, tenant, "once")
    await store.note_runs(store.pool, tenant, ticket, [rid], AT)
    await store.note_runs(store.pool, tenant, ticket, [rid], AT)  # again: no error
    assert await store.ran_on(store.pool, tenant, ticket) == frozenset({rid})
    assert await store.ran_on(store.pool, tenant, other) == frozenset()


async def test_a_second_replicas_cache_sees_a_change_made_elsewhere(db: Database) -> None:
    mine, theirs = RuleStore(db.pool), RuleStore(db.pool)
    cache = RuleCache(mine, check_every_s=0)  # checks the revision on every read
    tenant = str(uuid.uuid4())
    assert await cache.rules(tenant) == []
    first = await cache.rules(tenant)
    assert await cache.rules(tenant) is first  # unchanged: the same list, not reloaded
    await make(theirs, tenant, "elsewhere")
    assert [r.name for r in await cache.rules(tenant)] == ["elsewhere"]
    slow = RuleCache(mine, check_every_s=3600)
    assert [r.name for r in await slow.rules(tenant)] == ["elsewhere"]
    await make(theirs, tenant, "later")
    assert [r.name for r in await slow.rules(tenant)] == ["elsewhere"]  # not checked yet
    slow.forget(tenant)  # what a change on this replica does
    assert [r.name for r in await slow.rules(tenant)] == ["elsewhere", "later"]
