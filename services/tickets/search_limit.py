"""The rate of searches per operator (SEC-6): at most `per_minute` keyword searches —
a ticket list with `q`, a contact list with `q` — in any 60 seconds, a sliding window kept
in Redis (one sorted set per operator, shared by every tickets replica). One search over
the limit is refused with RESOURCE_EXHAUSTED and the seconds until the oldest search of
the window leaves it (the gateway answers 429 with Retry-After); a refused search is not
counted, so a client that waits as told is served.

Searching is how a hidden value is guessed at one try after another; the masking rules
already keep every address and phone number out of the reach of an operator who may not
see them, and this limit bounds how fast anyone can probe anything else. Calls without
an operator (one service asking another) are not counted. Should Redis not answer, the
search is served and a warning logged: the masking rules hold without the limit.
"""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.errors import ResourceExhausted
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator

WINDOW_MS = 60_000

# KEYS[1] the operator's window; ARGV: now (ms), window (ms), limit, a unique member.
# 0 when counted; else the milliseconds until the oldest search of the window leaves it.
_COUNT = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


def retry_after_s(wait_ms: int) -> int:
    """Whole seconds to wait (at least one) for `wait_ms` milliseconds."""
    return max(1, math.ceil(wait_ms / 1000))


class SearchLimiter:
    def __init__(
        self, redis: aioredis.Redis, clock: Clock, ids: IdGenerator, per_minute: int
    ) -> None:
        self._count = redis.register_script(_COUNT)
        self._clock = clock
        self._ids = ids
        self.per_minute = per_minute
        self._log = log.get("tickets.search")

    async def count(self, ident: Identity) -> None:
        """Count one search of the caller; RESOURCE_EXHAUSTED (naming `q`) over the limit."""
        if not ident.operator_id:
            return
        now_ms = int(self._clock.now().timestamp() * 1000)
        key = f"sb:tickets:search-rate:{ident.tenant_id}:{ident.operator_id}"
        try:
            wait_ms = int(
                await self._count(
                    keys=[key], args=[now_ms, WINDOW_MS, self.per_minute, self._ids.new_str()]
                )
            )
        except (aioredis.RedisError, OSError) as exc:
            self._log.warning("search rate not counted", error=type(exc).__name__)
            return
        if wait_ms > 0:
            seconds = retry_after_s(wait_ms)
            self._log.warning("search refused: too many", retry_after_s=seconds)
            raise ResourceExhausted(
                f"too many searches (at most {self.per_minute} a minute); try again in {seconds} s",
                field="q",
                retry_after_s=seconds,
            )
