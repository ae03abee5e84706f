"""The reply locks' statements (locks.py): the Lua scripts that change a lock in Redis,
each atomic, and the SQL that records a grant, a release or an expiry on the ticket row
with its event in the outbox, in one statement."""

from __future__ import annotations

# KEYS[1] the lock, KEYS[2] when its holder last acquired it again (ms; see _RELEASE);
# ARGV: placeholder, ttl ms, caller id, force ("1": take over), now ms.
# Answers {outcome, value now (or the one replaced, for "taken"), ms left}.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return {'won', ARGV[1], tonumber(ARGV[2])}
end
local fence, holder = string.match(v, '^(%d+)|([^|]*)|')
if holder == ARGV[3] then
  if fence ~= '0' then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[2])
    return {'mine', v, tonumber(ARGV[2])}
  end
  return {'mine_pending', v, redis.call('PTTL', KEYS[1])}
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return {'taken', v, tonumber(ARGV[2])}
end
return {'other', v, redis.call('PTTL', KEYS[1])}
"""
# The placeholder (ARGV[1]) becomes the granted value (ARGV[2]) only if it is still there.
_FINALIZE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# Renew: only the holder's own lock (value starts with "<fence>|<holder>|"); never creates.
_RENEW = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return v
end
return false
"""
# Release: compare-and-delete on the same prefix — unless ARGV[2] (ms, "0": none) is
# before the holder's last acquire again (KEYS[2]): then -1, the lock kept. A send's
# release must not take the lock its author took again for the next reply: acquiring
# what one holds keeps its fence.
_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  local again = redis.call('GET', KEYS[2])
  if ARGV[2] ~= '0' and again and tonumber(again) > tonumber(ARGV[2]) then
    return -1
  end
  redis.call('DEL', KEYS[2])
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Undo a grant that failed: delete the key if it holds exactly one of the given values.
_DROP = """
local v = redis.call('GET', KEYS[1])
for i = 1, #ARGV do
  if v == ARGV[i] then return redis.call('DEL', KEYS[1]) end
end
return 0
"""
_READ = "return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}"
AGAIN_SUFFIX = ":again"  # the key of when a lock's holder last acquired it again (ms)

_LOCK_COLUMNS_CLEARED = (
    "lock_fence = NULL, lock_holder_id = NULL, lock_holder_name = NULL, "
    "lock_acquired_at = NULL, lock_expires_at = NULL"
)


def _outbox_row(n: int) -> str:
    """The event of a lock change: the row Outbox.add writes, inserted by the statement
    that changes the ticket and only if the CTE `changed` has a row. $1 is the tenant;
    $n, $n+1, $n+2 the event id, subject and payload."""
    return (
        "INSERT INTO outbox (event_id, tenant_id, subject, payload) "
        f"SELECT ${n}, $1, ${n + 1}, ${n + 2} FROM changed RETURNING event_id"
    )


# The ticket is the tenant's (else no row), and the fence is drawn — while the caller
# holds the Redis mutex, so fences follow the order of grants.
_DRAW = """
SELECT nextval('reply_lock_fence') AS fence, assignee_id, lock_fence, lock_holder_id,
    lock_holder_name, inbox_id
FROM tickets WHERE tenant_id = $1 AND id = $2 AND ($3::uuid[] IS NULL OR inbox_id = ANY($3))
"""
# Record a grant or a renewal, never over a later grant ($3 fence … $7 expires).
_RECORD_SET = """
UPDATE tickets SET lock_fence = $3, lock_holder_id = $4, lock_holder_name = $5,
    lock_acquired_at = $6, lock_expires_at = $7
WHERE tenant_id = $1 AND id = $2 AND (lock_fence IS NULL OR lock_fence <= $3)
RETURNING id
"""
_RECORD_WITH_EVENT = f"WITH changed AS ({_RECORD_SET}) {_outbox_row(8)}"
# The first grant on an unassigned ticket: the holder becomes the assignee too.
_RECORD_AND_ASSIGN = """
WITH old AS (SELECT id, assignee_id FROM tickets WHERE tenant_id = $1 AND id = $2 FOR UPDATE)
UPDATE tickets t SET lock_fence = $3, lock_holder_id = $4, lock_holder_name = $5,
    lock_acquired_at = $6, lock_expires_at = $7,
    assignee_id = COALESCE(t.assignee_id, $4),
    assignee_name = CASE WHEN t.assignee_id IS NULL THEN $5 ELSE t.assignee_name END,
    updated_at = CASE WHEN t.assignee_id IS NULL THEN $8 ELSE t.updated_at END
FROM old
WHERE t.tenant_id = $1 AND t.id = old.id AND (t.lock_fence IS NULL OR t.lock_fence < $3)
RETURNING t.*, old.assignee_id AS old_assignee_id
"""
# Release: forget the recorded lock if it is the caller's ($3 fence, $4 holder); the event
# goes out when Redis deleted the key ($5) or the row changed.
_CLEAR_WITH_EVENT = f"""
WITH cleared AS (
    UPDATE tickets SET {_LOCK_COLUMNS_CLEARED}
    WHERE tenant_id = $1 AND id = $2 AND lock_fence = $3 AND lock_holder_id = $4
    RETURNING id
), changed AS (
    SELECT 1 WHERE $5::boolean OR EXISTS (SELECT 1 FROM cleared)
)
{_outbox_row(6)}
"""
# Expiry, announced once: only the replica whose UPDATE still finds the fence writes it.
_EXPIRE_WITH_EVENT = f"""
WITH changed AS (
    UPDATE tickets SET {_LOCK_COLUMNS_CLEARED}
    WHERE tenant_id = $1 AND id = $2 AND lock_fence = $3 AND lock_expires_at < $4
    RETURNING id
)
{_outbox_row(5)}
"""
_DUE = """
SELECT tenant_id, id, inbox_id, lock_fence, lock_holder_id, lock_holder_name, lock_expires_at
FROM tickets WHERE lock_expires_at < $1 ORDER BY lock_expires_at LIMIT $2
"""
