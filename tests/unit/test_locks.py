"""The reply-lock rules (TKT-3) without Redis or PostgreSQL: keys, the stored value, who
may take a lock over, which fences are current, and the lock events' JSON."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from switchboard.v1 import common_pb2, events_pb2

from gateway import views
from services.runtime import permissions
from services.runtime.errors import InvalidArgument
from services.tickets import lock_rules as rules
from services.tickets.lock_rules import LockValue

ME = "0191f000-0000-7000-8000-0000000000a2"
OTHER = "0191f000-0000-7000-8000-0000000000a3"
NOW = datetime(2026, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)


def test_the_key_names_tenant_and_ticket() -> None:
    assert rules.lock_key("t1", "k1") == "sb:tickets:lock:t1:k1"
    assert rules.lock_key("t1", "k1") != rules.lock_key("t2", "k1")


def test_a_value_survives_encoding_even_with_bars_in_the_name() -> None:
    value = LockValue(42, ME, 1_772_357_415_250, "Aiko | Support 日本")
    assert rules.decode(value.encode()) == value
    assert rules.decode(value.encode().encode()) == value
    assert value.acquired_at == NOW


@pytest.mark.parametrize(
    "raw", [None, b"", b"garbage", b"x|me|1|n", b"1||1|n", b"-3|me|1|n", b"1|me|soon|n"]
)
def test_unreadable_values_are_no_lock(raw: bytes | None) -> None:
    assert rules.decode(raw) is None


def test_a_new_claim_is_pending_with_a_tidy_name() -> None:
    claim = rules.new_claim(ME, "  Aiko\n  Agent ", NOW)
    assert claim.pending and claim.fence == 0
    assert claim.holder_name == "Aiko Agent"
    assert claim.acquired_at == NOW
    assert claim.with_fence(7) == LockValue(7, ME, claim.acquired_ms, "Aiko Agent")
    assert not claim.with_fence(7).pending
    assert len(rules.new_claim(ME, "x" * 500, NOW).holder_name) == rules.NAME_MAX


def test_the_owner_prefix_ends_at_the_holder() -> None:
    value = LockValue(12, ME, 1, "Aiko")
    assert value.encode().startswith(rules.owner_prefix(12, ME))
    # fence 1 must not match a value of fence 12
    assert not value.encode().startswith(rules.owner_prefix(1, ME))
    assert not value.encode().startswith(rules.owner_prefix(12, OTHER))


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("supervisor", True), ("admin", True), ("approver", False), ("agent", False),
     ("trainee", False)],
)  # fmt: skip
def test_only_the_built_in_supervisor_and_admin_roles_take_over(role: str, allowed: bool) -> None:
    granted, _ = permissions.BUILTIN_ROLES[role]
    assert rules.may_take_over(granted) is allowed


@pytest.mark.parametrize("role", ["supervisor", "admin", "approver", "agent", "trainee"])
def test_every_role_may_write_a_reply_and_only_senders_send_it_without_approval(
    role: str,
) -> None:
    """Issue 17: a trainee writes replies too (takes the reply lock); whether the
    primary button sends or requests approval follows send_without_approval."""
    granted, _ = permissions.BUILTIN_ROLES[role]
    ticket = events_pb2.TicketSummary(id="k1")
    actions = views.ticket_actions(frozenset(granted), ticket)
    assert actions["reply"] is True
    assert actions["send_without_approval"] is (role != "trainee")
    merged = events_pb2.TicketSummary(id="k2", merged_into="k1")
    assert views.ticket_actions(frozenset(granted), merged)["reply"] is False


def test_taking_over_needs_the_permission_not_a_role_name() -> None:
    assert rules.may_take_over({"take_over_locks"})
    assert not rules.may_take_over({"supervisor", "admin"})
    assert not rules.may_take_over(set())


@pytest.mark.parametrize("fence", [0, -1, 2**63, True])
def test_a_fence_is_a_positive_bigint(fence: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        rules.checked_fence(fence)
    assert err.value.field == "fence"


def test_a_good_fence_passes() -> None:
    assert rules.checked_fence(1) == 1
    assert rules.checked_fence(2**63 - 1) == 2**63 - 1


def test_the_current_fence_of_the_holder_is_accepted() -> None:
    held = LockValue(9, ME, 1, "Aiko")
    assert rules.fence_problem(held, 9, ME, 9) is None
    assert rules.fence_problem(held, None, ME, 9) is None  # row not yet updated
    assert rules.fence_problem(held, 8, ME, 9) is None  # row still shows the older grant


@pytest.mark.parametrize(
    ("held", "recorded", "who", "fence", "why"),
    [
        (None, 9, ME, 9, "do not hold"),  # expired, released, or Redis lost it
        (LockValue(10, OTHER, 1, "Ben"), 10, ME, 9, "someone else"),  # taken over
        (LockValue(10, ME, 1, "Aiko"), 10, ME, 9, "newer"),  # acquired again later
        (LockValue(0, OTHER, 1, "Ben"), 9, ME, 9, "someone else"),  # being granted to Ben
        (LockValue(9, OTHER, 1, "Ben"), 9, ME, 9, "someone else"),  # not the caller's
        (LockValue(9, ME, 1, "Aiko"), 11, ME, 9, "later lock"),  # Redis rewound
    ],
)
def test_stale_fences_are_refused(
    held: LockValue | None, recorded: int | None, who: str, fence: int, why: str
) -> None:
    problem = rules.fence_problem(held, recorded, who, fence)
    assert problem is not None and why in problem


def test_the_sweep_runs_a_quarter_of_the_ttl_within_bounds() -> None:
    assert rules.sweep_every_s(60) == 5.0
    assert rules.sweep_every_s(8) == 2.0
    assert rules.sweep_every_s(0.1) == 0.2


def _lock(fence: int) -> events_pb2.ReplyLock:
    lock = events_pb2.ReplyLock(
        holder=common_pb2.OperatorRef(id=ME, display_name="Aiko Agent"), fence=fence
    )
    lock.expires_at.FromDatetime(NOW)
    lock.acquired_at.FromDatetime(NOW)
    return lock


def test_the_lock_json() -> None:
    assert views.lock(_lock(5)) == {
        "holder": {"id": ME, "name": "Aiko Agent"},
        "fence": 5,
        "expires_at": "2026-03-01T09:30:15.250000Z",
        "acquired_at": "2026-03-01T09:30:15.250000Z",
    }


def test_a_taken_over_event_names_the_previous_holder() -> None:
    env = events_pb2.EventEnvelope(event_id="e1", type="lock.taken_over", tenant_id="t1")
    env.reply_lock.ticket_id = "k1"
    env.reply_lock.lock.CopyFrom(_lock(6))
    env.reply_lock.previous_holder.CopyFrom(common_pb2.OperatorRef(id=OTHER, display_name="Ben"))
    env.reply_lock.previous_fence = 5
    body = views.event(env)
    assert body is not None
    assert body["type"] == "lock.taken_over" and body["ticket_id"] == "k1"
    assert body["lock"]["fence"] == 6
    assert body["previous_holder"] == {"id": OTHER, "name": "Ben"}
    assert body["previous_fence"] == 5


def test_a_released_event_has_no_lock() -> None:
    env = events_pb2.EventEnvelope(event_id="e2", type="lock.released", tenant_id="t1")
    env.reply_lock.ticket_id = "k1"
    env.reply_lock.previous_holder.CopyFrom(common_pb2.OperatorRef(id=ME, display_name="Aiko"))
    env.reply_lock.previous_fence = 6
    body = views.event(env)
    assert body is not None
    assert body["lock"] is None and body["previous_fence"] == 6
