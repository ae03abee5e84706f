"""The gateway's session cache on a real Redis (SEC-9): a change of access drops the cached
sessions it concerns and no others, and a resolution that began before the change is not
cached after it — it may have read the state from before the change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import redis.asyncio as aioredis

from gateway.auth import OPERATOR_CHANGED, TENANT_CHANGED, Caller, SessionResolver, cache_key
from services.runtime import redis_client
from tests.conftest import Infra

EXPIRES = datetime.now(UTC) + timedelta(days=1)


@pytest.fixture
async def cache(infra: Infra) -> AsyncIterator[tuple[SessionResolver, aioredis.Redis]]:
    redis = redis_client.connect(infra.redis.url)
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # accounts: not asked in these tests
    yield SessionResolver(channel, redis, cache_s=30), redis
    await channel.close()
    await redis.aclose()


def _caller(tenant_id: str, operator_id: str) -> Caller:
    return Caller(tenant_id, operator_id, "op@desk.example", "Op", ("agent",))


async def _redis_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _cached(redis: aioredis.Redis, token: str) -> bool:
    return await redis.get(cache_key(token)) is not None


async def test_a_change_drops_the_cached_sessions_it_concerns_and_no_others(
    cache: tuple[SessionResolver, aioredis.Redis],
) -> None:
    resolver, redis = cache
    tenant, other_tenant = str(uuid.uuid4()), str(uuid.uuid4())
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    for token, tenant_id, op in (("a1", tenant, a), ("a2", tenant, a), ("b", tenant, b)):
        began = await _redis_ms(redis)
        await resolver.remember(cache_key(token), _caller(tenant_id, op), EXPIRES, began)
    began = await _redis_ms(redis)
    await resolver.remember(cache_key("c"), _caller(other_tenant, c), EXPIRES, began)

    await resolver.invalidate(tenant, [a])  # both of a's sessions
    assert [await _cached(redis, t) for t in ("a1", "a2", "b", "c")] == [
        False,
        False,
        True,
        True,
    ]
    await resolver.invalidate(tenant, whole_tenant=True)
    assert [await _cached(redis, t) for t in ("b", "c")] == [False, True]


async def test_a_resolution_begun_before_a_change_is_not_cached_after_it(
    cache: tuple[SessionResolver, aioredis.Redis],
) -> None:
    resolver, redis = cache
    tenant, op = str(uuid.uuid4()), str(uuid.uuid4())
    began = await _redis_ms(redis)  # accounts answers with what it read then …
    await resolver.invalidate(tenant, [op])  # … the change is announced meanwhile …
    await resolver.remember(cache_key("stale"), _caller(tenant, op), EXPIRES, began)
    assert not await _cached(redis, "stale")  # … so its answer is used once, not cached

    changed = int(await redis.get(OPERATOR_CHANGED + op))
    await resolver.remember(cache_key("fresh"), _caller(tenant, op), EXPIRES, changed + 1)
    assert await _cached(redis, "fresh")

    # a change of the whole tenant holds for each of its operators
    await resolver.invalidate(tenant, whole_tenant=True)
    tenant_changed = int(await redis.get(TENANT_CHANGED + tenant))
    await resolver.remember(cache_key("late"), _caller(tenant, op), EXPIRES, tenant_changed)
    assert not await _cached(redis, "late")
