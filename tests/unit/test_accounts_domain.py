"""Accounts' rules without I/O: password rules and expiry, generated passwords, the login
throttle, allow-lists, and the built-in roles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.accounts import domain
from services.runtime import permissions
from services.runtime.clock import ManualClock
from services.runtime.errors import InvalidArgument

POLICY = domain.PasswordPolicy(min_length=10, min_classes=2, max_age_days=90)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short1A", "at least 10"),
        ("alllowercase", "2 kinds"),
        ("ops@tenant.example", "login"),
        ("OPS", "at least 10"),
    ],
)
def test_a_new_password_follows_the_tenants_rules(password: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        domain.check_new_password(password, POLICY, login="ops@tenant.example")
    assert problem in err.value.message and err.value.field == "new_password"


def test_a_good_password_passes() -> None:
    domain.check_new_password("Correct horse 9", POLICY, login="ops@tenant.example")


def test_generated_passwords_meet_any_policy() -> None:
    strict = domain.PasswordPolicy(min_length=24, min_classes=4)
    for _ in range(50):
        pw = domain.generate_password(strict)
        assert len(pw) >= 24 and domain.character_classes(pw) == 4
        domain.check_new_password(pw, strict, login="x@y.example")


def _op(**kw: object) -> domain.OperatorRecord:
    base: dict[str, object] = dict(
        id="1",
        tenant_id="t",
        login="a@b.example",
        display_name="A",
        roles=(),
        password_hash="",
        active=True,
    )
    base.update(kw)
    return domain.OperatorRecord(**base)  # type: ignore[arg-type]


def test_a_temporary_or_expired_password_must_be_changed() -> None:
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert domain.password_change_required(_op(must_change_password=True), POLICY, now) == (
        "temporary_password"
    )
    old = _op(password_changed_at=now - timedelta(days=91))
    assert domain.password_change_required(old, POLICY, now) == "password_expired"
    fresh = _op(password_changed_at=now - timedelta(days=89))
    assert domain.password_change_required(fresh, POLICY, now) == ""
    never = domain.PasswordPolicy(max_age_days=0)
    assert domain.password_change_required(old, never, now) == ""


def test_the_throttle_slows_from_the_fifth_failure_and_caps_the_wait() -> None:
    t = domain.Throttle(slow_after=5, delay_s=0.5, max_delay_s=2.0)
    assert [t.delay(n) for n in range(4, 10)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_failures_count_in_a_window_that_slides_with_the_clock() -> None:
    t = domain.Throttle(window=timedelta(minutes=15))
    clock = ManualClock()
    failures = []
    for _ in range(4):  # at 0, 4, 8 and 12 minutes
        failures.append(clock.now())
        clock.advance(minutes=4)
    assert t.counted(failures, now=clock.now(), lock_ended=None) == 3  # 16': the first is out
    clock.advance(minutes=4)
    assert t.counted(failures, now=clock.now(), lock_ended=None) == 2  # 20'
    clock.advance(minutes=8)
    assert t.counted(failures, now=clock.now(), lock_ended=None) == 0  # 28'
    # what is not yet at `now` (another replica's clock ahead) does not count either
    assert t.counted([clock.now() + timedelta(seconds=1)], now=clock.now(), lock_ended=None) == 0


def test_only_the_end_of_a_lock_starts_the_count_over() -> None:
    """Nothing but a lock's end restarts the count: the rule is given no successes to
    reset it with, so an insider's own logins between guesses change nothing."""
    t = domain.Throttle(window=timedelta(minutes=15), lock_after=3, address_lock_after=6)
    clock = ManualClock()
    failures = []
    for _ in range(5):  # one a minute
        failures.append(clock.now())
        clock.advance(minutes=1)
    now = clock.now()
    assert t.counted(failures, now=now, lock_ended=None) == 5
    ended = failures[2] + timedelta(seconds=30)  # a lock ended (or was cleared) after the third
    assert t.counted(failures, now=now, lock_ended=ended) == 2
    assert t.counted(failures, now=now, lock_ended=now - timedelta(hours=1)) == 5


def test_a_failure_locks_what_reached_its_threshold() -> None:
    t = domain.Throttle(slow_after=5, delay_s=0.5, lock_after=10, address_lock_after=50)
    assert t.locks_after_failure(10, 3) == (True, False)
    assert t.locks_after_failure(9, 50) == (False, True)
    assert t.locks_after_failure(9, 49) == (False, False)
    # an address's failures slow it down in proportion to its higher threshold
    assert t.wait(0, 24) == 0.0 and t.wait(0, 25) == 0.5 and t.wait(6, 25) == 1.0


@pytest.mark.parametrize(
    ("client", "allowlist", "allowed"),
    [
        ("203.0.113.5", [], True),
        ("203.0.113.5", ["203.0.113.0/24"], True),
        ("203.0.114.5", ["203.0.113.0/24"], False),
        ("2001:db8::1", ["2001:db8::/32"], True),
        ("::ffff:203.0.113.5", ["203.0.113.5/32"], True),
        ("unknown", ["0.0.0.0/0"], False),
        ("unknown", [], True),
    ],
)
def test_allow_lists_of_addresses_and_ranges(
    client: str, allowlist: list[str], allowed: bool
) -> None:
    assert domain.address_allowed(client, allowlist) is allowed


def test_allow_list_entries_are_normalised_and_bad_ones_refused() -> None:
    assert domain.clean_allowlist(["203.0.113.7", "2001:DB8::/32", "10.0.0.1/8"]) == [
        "203.0.113.7/32",
        "2001:db8::/32",
        "10.0.0.0/8",
    ]
    with pytest.raises(InvalidArgument):
        domain.clean_allowlist(["10.0.0.300"])


def test_the_built_in_roles_use_only_catalogued_permissions_and_admin_has_all() -> None:
    for perms, _ in permissions.BUILTIN_ROLES.values():
        assert perms <= permissions.ALL
    assert permissions.BUILTIN_ROLES["admin"][0] == permissions.ALL
    trainee = permissions.BUILTIN_ROLES["trainee"][0]
    assert permissions.SEE_CUSTOMER_ADDRESSES not in trainee
    assert permissions.SEND_WITHOUT_APPROVAL not in trainee
    with pytest.raises(InvalidArgument):
        domain.check_permissions(["approve", "fly"])
