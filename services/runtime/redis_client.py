"""The Redis client every process uses (redis-py's asyncio client)."""

from __future__ import annotations

import redis.asyncio as aioredis


def connect(url: str) -> aioredis.Redis:
    """A pooled client; connections open lazily. Bytes in, bytes out."""
    return aioredis.from_url(
        url, decode_responses=False, socket_connect_timeout=2, health_check_interval=30
    )
