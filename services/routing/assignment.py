"""Assignment (RTE-2), free of I/O: which present operator gets which waiting ticket.

`plan` takes the waiting tickets of a tenant (the caller's order does not matter: they
are taken highest priority first, then oldest), the operators with their presence, loads,
capacities and fairness counts, and the inboxes' policies, and answers the assignments to
make, never over any capacity:

- an operator receives only while online, and only when every limit holds: their own
  capacity (all inboxes) and per-channel capacity, the inbox's capacity per operator and
  per channel, and the inbox's fairness limit (at most K tickets in a rolling hour);
- without tiers, the inbox's members may receive; with tiers, only the tiers open to the
  ticket: tier 0 at once, tier i+1 once the ticket has waited the sum of the
  `widen_after_minutes` of tiers 0..i (a bullseye). The first open tier with someone who
  can take the ticket wins; the strategy picks inside it;
- round robin takes the next operator after the inbox's cursor (the last one it gave a
  ticket to) in a stable order; least loaded takes the one with the fewest open + pending
  tickets (then the fewest of this inbox, then the fewest new this hour, then the id).

Every assignment planned counts at once against the limits of the ones after it.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.runtime import priority_score
from services.runtime.errors import InvalidArgument

from .assign_match import Fits


class Strategy(enum.StrEnum):
    MANUAL = "manual"
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


class Presence(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


ONLINE_FOR = timedelta(seconds=90)  # an online presence lapses this long after its last heartbeat
HOUR = timedelta(hours=1)
CAPACITY_MAX = 1000
MINUTES_MAX = 10_080  # a week
TIERS_MAX = 10
TIER_OPERATORS_MAX = 200
CHANNELS_MAX = 20
SKILLS_MAX = 50
LANGUAGES_MAX = 20
LEVEL_MAX = 5


def effective_presence(status: Presence, expires_at: datetime | None, now: datetime) -> Presence:
    """What counts now: an online presence whose heartbeat lapsed is offline."""
    if status is Presence.ONLINE and expires_at is not None and expires_at <= now:
        return Presence.OFFLINE
    return status


@dataclass(frozen=True, slots=True)
class Tier:
    operator_ids: tuple[str, ...]
    widen_after_minutes: int = 0


@dataclass(frozen=True, slots=True)
class InboxPolicy:
    inbox_id: str
    strategy: Strategy = Strategy.MANUAL
    capacity: int | None = None  # per operator, tickets of this inbox
    channel_capacity: Mapping[str, int] = field(default_factory=dict)
    tiers: tuple[Tier, ...] = ()
    reassign_after_minutes: int | None = None
    max_new_per_hour: int | None = None

    def open_tiers(self, waited: timedelta) -> tuple[Tier, ...]:
        """The tiers a ticket that has waited `waited` may go to, first tier first."""
        opened: list[Tier] = []
        threshold = timedelta(0)
        for tier in self.tiers:
            if waited < threshold:
                break
            opened.append(tier)
            threshold += timedelta(minutes=tier.widen_after_minutes)
        return tuple(opened)


@dataclass(frozen=True, slots=True)
class Waiting:
    """An open, unassigned ticket of an inbox with a strategy."""

    ticket_id: str
    inbox_id: str
    channel: str
    waiting_since: datetime
    priority: int = 2  # 1 low … 4 urgent (common.Priority)
    exclude: frozenset[str] = frozenset()  # operators it must not go to (taken back from)
    handed: bool = False  # a rule handed it to the inbox's strategy (even a manual one)
    # issue 18: its detected language, the skills its assignee needs (assign_match) and
    # its contact's customer value (the score)
    language: str = ""
    skills: tuple[tuple[str, int], ...] = ()
    customer_value: int = 0


@dataclass(frozen=True, slots=True)
class OperatorState:
    operator_id: str
    presence: Presence
    inboxes: frozenset[str]  # the inboxes they are a member of
    capacity: int | None = None  # all inboxes; None: no limit
    channel_capacity: Mapping[str, int] = field(default_factory=dict)
    # open + pending tickets assigned to them, by (inbox, channel)
    loads: Mapping[tuple[str, str], int] = field(default_factory=dict)
    new_last_hour: int = 0  # tickets the strategy gave them in the last hour
    # issue 18: their profile's skills (folded name → level) and languages
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Assignment:
    ticket_id: str
    inbox_id: str
    channel: str
    operator_id: str
    strategy: Strategy


@dataclass(frozen=True, slots=True)
class Plan:
    assignments: tuple[Assignment, ...]
    cursors: Mapping[str, str]  # inbox → the operator round robin gave a ticket to last


class _Loads:
    """The operators' loads while a plan is made: each planned assignment counts."""

    def __init__(self, operators: Iterable[OperatorState]) -> None:
        self.by_key: Counter[tuple[str, str, str]] = Counter()
        self.totals: Counter[str] = Counter()
        self.inboxes: Counter[tuple[str, str]] = Counter()
        self.channels: Counter[tuple[str, str]] = Counter()
        self.new: Counter[str] = Counter()
        self._capacity: dict[str, int | None] = {}
        self.spent: set[str] = set()  # at their own capacity: nothing more in this plan
        for op in operators:
            for (inbox, channel), n in op.loads.items():
                self._count(op.operator_id, inbox, channel, n)
            self.new[op.operator_id] = op.new_last_hour
            self._capacity[op.operator_id] = op.capacity
            self._check(op.operator_id)

    def _check(self, op: str) -> None:
        capacity = self._capacity.get(op)
        if capacity is not None and self.totals[op] >= capacity:
            self.spent.add(op)

    def _count(self, op: str, inbox: str, channel: str, n: int) -> None:
        self.by_key[(op, inbox, channel)] += n
        self.totals[op] += n
        self.inboxes[(op, inbox)] += n
        self.channels[(op, channel)] += n

    def add(self, op: str, inbox: str, channel: str) -> None:
        self._count(op, inbox, channel, 1)
        self.new[op] += 1
        self._check(op)


def _below(limit: int | None, load: int) -> bool:
    return limit is None or load < limit


def can_take(op: OperatorState, ticket: Waiting, policy: InboxPolicy, loads: _Loads) -> bool:
    """Whether `op` may receive `ticket` now without exceeding any limit."""
    o = op.operator_id
    return (
        op.presence is Presence.ONLINE
        and o not in ticket.exclude
        and _below(op.capacity, loads.totals[o])
        and _below(op.channel_capacity.get(ticket.channel), loads.channels[(o, ticket.channel)])
        and _below(policy.capacity, loads.inboxes[(o, ticket.inbox_id)])
        and _below(
            policy.channel_capacity.get(ticket.channel),
            loads.by_key[(o, ticket.inbox_id, ticket.channel)],
        )
        and _below(policy.max_new_per_hour, loads.new[o])
    )


class _Groups:
    """The operators to try for a ticket, in order: the open tiers, or the inbox's members
    (online only, each group sorted by id; computed once per inbox and number of open
    tiers while a plan is made)."""

    def __init__(self, ops: Mapping[str, OperatorState]) -> None:
        self._ops = ops
        self._cache: dict[tuple[str, int], list[list[OperatorState]]] = {}

    def of(self, ticket: Waiting, policy: InboxPolicy, now: datetime) -> list[list[OperatorState]]:
        if not policy.tiers:
            key = (ticket.inbox_id, -1)
            if key not in self._cache:
                members = [op for op in self._ops.values() if ticket.inbox_id in op.inboxes]
                self._cache[key] = [members]
            return self._cache[key]
        tiers = policy.open_tiers(max(timedelta(0), now - ticket.waiting_since))
        key = (ticket.inbox_id, len(tiers))
        if key not in self._cache:
            self._cache[key] = [
                sorted(
                    (self._ops[o] for o in tier.operator_ids if o in self._ops),
                    key=lambda op: op.operator_id,
                )
                for tier in tiers
            ]
        return self._cache[key]


def _round_robin(
    group: Sequence[OperatorState],
    cursor: str | None,
    ticket: Waiting,
    policy: InboxPolicy,
    loads: _Loads,
) -> OperatorState | None:
    """The first operator after the cursor (by id, going round) who can take the ticket."""
    ids = [op.operator_id for op in group]
    start = bisect.bisect_right(ids, cursor) if cursor is not None else 0
    for op in itertools.chain(group[start:], group[:start]):
        if op.operator_id not in loads.spent and can_take(op, ticket, policy, loads):
            return op
    return None


_Entry = tuple[tuple[int, int, int, str], OperatorState]


class _LeastLoaded:
    """Least loaded's choice: the operator with the fewest open + pending tickets (then
    fewest of this inbox, then fewest new this hour, then by id) who can take the ticket.
    Each group of an inbox is a heap by that order, so a choice costs a few heap steps, not
    a look at every operator: loads only grow while a plan is made, so an entry whose
    order went stale is pushed back with its order now (the first fresh one on top is the
    least loaded); an operator at their capacity or not online leaves the heap for good;
    those who may not take this ticket (a limit of its channel or inbox, taken back from
    them) are passed over and put back."""

    def __init__(self, loads: _Loads) -> None:
        self._loads = loads
        self._heaps: dict[tuple[int, str], list[_Entry]] = {}

    def _order(self, op: OperatorState, inbox: str) -> tuple[int, int, int, str]:
        o = op.operator_id
        loads = self._loads
        return (loads.totals[o], loads.inboxes[(o, inbox)], loads.new[o], o)

    def pick(
        self, group: Sequence[OperatorState], ticket: Waiting, policy: InboxPolicy
    ) -> OperatorState | None:
        inbox = ticket.inbox_id
        heap = self._heaps.get((id(group), inbox))
        if heap is None:
            heap = [(self._order(op, inbox), op) for op in group]
            heapq.heapify(heap)
            self._heaps[(id(group), inbox)] = heap
        passed: list[_Entry] = []
        chosen: OperatorState | None = None
        loads = self._loads
        while heap:
            order, op = heap[0]
            if op.operator_id in loads.spent or op.presence is not Presence.ONLINE:
                heapq.heappop(heap)
                continue
            now = self._order(op, inbox)
            if now != order:
                heapq.heapreplace(heap, (now, op))
                continue
            if can_take(op, ticket, policy, loads):
                chosen = op
                break
            passed.append(heapq.heappop(heap))
        for entry in passed:
            heapq.heappush(heap, entry)
        return chosen


# The priority score (RTE-3) of a waiting ticket (services/runtime/priority_score.py): one
# point is one minute of waiting, and the ticket's priority (which rules and operators set)
# and its contact's customer value count as minutes waited already: an urgent ticket goes
# before a normal one that has waited up to 15 hours longer.
PRIORITY_POINTS = priority_score.PRIORITY_POINTS  # low, normal, high, urgent


def score(ticket: Waiting, now: datetime) -> int:
    """Minutes waited plus the priority's points and the customer value."""
    waited = max(0, int((now - ticket.waiting_since).total_seconds() // 60))
    return waited + priority_score.points(ticket.priority, ticket.customer_value)


def ranked_since(ticket: Waiting) -> datetime:
    """The moment from which the ticket's score counts as waiting alone: sorting by it
    (earliest first) is sorting by score (highest first), whatever the time now."""
    return priority_score.origin(ticket.waiting_since, ticket.priority, ticket.customer_value)


def queue_order(tickets: Iterable[Waiting]) -> list[Waiting]:
    """The highest score first (ties: the longest waiting)."""
    return sorted(tickets, key=lambda t: (ranked_since(t), t.waiting_since, t.ticket_id))


def policy_for(ticket: Waiting, policies: Mapping[str, InboxPolicy]) -> InboxPolicy | None:
    """How a waiting ticket is assigned: its inbox's policy; a ticket a rule handed to the
    strategy of an inbox whose strategy is manual (or never set) goes by least loaded
    with the inbox's limits and tiers; None: it waits for a person."""
    policy = policies.get(ticket.inbox_id) or InboxPolicy(ticket.inbox_id)
    if policy.strategy is not Strategy.MANUAL:
        return policy
    return replace(policy, strategy=Strategy.LEAST_LOADED) if ticket.handed else None


def plan(
    waiting: Iterable[Waiting],
    operators: Iterable[OperatorState],
    policies: Mapping[str, InboxPolicy],
    cursors: Mapping[str, str],
    now: datetime,
) -> Plan:
    everyone = list(operators)
    ops = {op.operator_id: op for op in everyone if op.presence is Presence.ONLINE}
    ops = dict(sorted(ops.items()))
    loads = _Loads(ops.values())
    least = _LeastLoaded(loads)
    groups = _Groups(ops)
    fits = Fits(everyone)
    cursor = dict(cursors)
    out: list[Assignment] = []
    for ticket in queue_order(waiting):
        if len(loads.spent) == len(ops):
            break  # everyone is at their capacity
        policy = policy_for(ticket, policies)
        if policy is None:
            continue
        for group in fits.of(ticket, groups.of(ticket, policy, now)):
            chosen: OperatorState | None
            if policy.strategy is Strategy.ROUND_ROBIN:
                chosen = _round_robin(group, cursor.get(ticket.inbox_id), ticket, policy, loads)
                if chosen is not None:
                    cursor[ticket.inbox_id] = chosen.operator_id
            else:
                chosen = least.pick(group, ticket, policy)
            if chosen is None:
                continue
            loads.add(chosen.operator_id, ticket.inbox_id, ticket.channel)
            out.append(
                Assignment(
                    ticket.ticket_id,
                    ticket.inbox_id,
                    ticket.channel,
                    chosen.operator_id,
                    policy.strategy,
                )
            )
            break
    return Plan(tuple(out), cursor)


def next_widening(
    waiting: Iterable[Waiting], policies: Mapping[str, InboxPolicy], now: datetime
) -> datetime | None:
    """The earliest moment a waiting ticket's tiers widen (when to plan again)."""
    soonest: datetime | None = None
    for ticket in waiting:
        policy = policy_for(ticket, policies)
        if policy is None:
            continue
        at = ticket.waiting_since
        for tier in policy.tiers[:-1]:
            at += timedelta(minutes=tier.widen_after_minutes)
            if at > now:
                soonest = at if soonest is None else min(soonest, at)
                break
    return soonest


def due_for_reassignment(
    assigned_at: datetime, replied: bool, policy: InboxPolicy | None, now: datetime
) -> bool:
    """A ticket the strategy assigned, with no reply from us within the inbox's limit."""
    if policy is None or policy.reassign_after_minutes is None or replied:
        return False
    if policy.strategy is Strategy.MANUAL:
        return False
    return now - assigned_at >= timedelta(minutes=policy.reassign_after_minutes)


def strategy_label(strategy: Strategy) -> str:
    """The audit comment of an automatic assignment."""
    return f"assigned by {strategy.value.replace('_', ' ')}"


# -- validation of what administrators save ----------------------------------------------


def _limit(value: int | None, name: str, low: int = 0, high: int = CAPACITY_MAX) -> int | None:
    if value is None:
        return None
    if not low <= value <= high:
        raise InvalidArgument(f"{name} must be {low} to {high} (or null: no limit)", field=name)
    return value


def _channel_capacity(values: Mapping[str, int], name: str) -> dict[str, int]:
    if len(values) > CHANNELS_MAX:
        raise InvalidArgument(f"at most {CHANNELS_MAX} channels", field=name)
    out: dict[str, int] = {}
    for channel, n in values.items():
        ok = 0 < len(channel) <= 32 and all(
            c.isascii() and (c.isalnum() or c in "_-") for c in channel
        )
        if not ok or channel != channel.lower():
            raise InvalidArgument(f"{channel!r} is not a channel name", field=name)
        if not 0 <= n <= CAPACITY_MAX:
            raise InvalidArgument(f"{name} of {channel} must be 0 to {CAPACITY_MAX}", field=name)
        out[channel] = n
    return out


def validated_policy(policy: InboxPolicy, may_receive: frozenset[str]) -> InboxPolicy:
    """The policy, checked; `may_receive` = the active operators who can see the inbox."""
    if len(policy.tiers) > TIERS_MAX:
        raise InvalidArgument(f"at most {TIERS_MAX} tiers", field="tiers")
    seen: set[str] = set()
    for i, tier in enumerate(policy.tiers):
        ids_field = f"tiers[{i}].operator_ids"  # the row, so the UI can mark it
        if not tier.operator_ids:
            raise InvalidArgument(f"tier {i + 1} needs at least one operator", field=ids_field)
        if len(tier.operator_ids) > TIER_OPERATORS_MAX:
            raise InvalidArgument(
                f"tier {i + 1}: at most {TIER_OPERATORS_MAX} operators", field=ids_field
            )
        for op in tier.operator_ids:
            if op in seen:
                raise InvalidArgument(
                    f"tier {i + 1}: {op} is already in an earlier tier", field=ids_field
                )
            if op not in may_receive:
                raise InvalidArgument(
                    f"tier {i + 1}: {op} is no active operator who sees this inbox", field=ids_field
                )
            seen.add(op)
        _limit(tier.widen_after_minutes, f"tiers[{i}].widen_after_minutes", 0, MINUTES_MAX)
    return InboxPolicy(
        inbox_id=policy.inbox_id,
        strategy=policy.strategy,
        capacity=_limit(policy.capacity, "capacity"),
        channel_capacity=_channel_capacity(policy.channel_capacity, "channel_capacity"),
        tiers=policy.tiers,
        reassign_after_minutes=_limit(
            policy.reassign_after_minutes, "reassign_after_minutes", 1, MINUTES_MAX
        ),
        max_new_per_hour=_limit(policy.max_new_per_hour, "max_new_per_hour", 1),
    )


@dataclass(frozen=True, slots=True)
class Skill:
    name: str
    level: int


@dataclass(frozen=True, slots=True)
class Profile:
    """An operator's routing profile."""

    operator_id: str
    capacity: int | None = None
    channel_capacity: Mapping[str, int] = field(default_factory=dict)
    skills: tuple[Skill, ...] = ()
    languages: tuple[str, ...] = ()


def validated_profile(profile: Profile) -> Profile:
    if len(profile.skills) > SKILLS_MAX:
        raise InvalidArgument(f"at most {SKILLS_MAX} skills", field="skills")
    names: set[str] = set()
    skills: list[Skill] = []
    for i, skill in enumerate(profile.skills):
        name = skill.name.strip()
        if not 0 < len(name) <= 64:
            raise InvalidArgument(
                f"skill {i + 1}: a name is 1 to 64 characters", field="skills.name"
            )
        if name.casefold() in names:
            raise InvalidArgument(f"the skill {name!r} twice", field="skills.name")
        names.add(name.casefold())
        _limit(skill.level, "skills.level", 1, LEVEL_MAX)
        skills.append(Skill(name, skill.level))
    if len(profile.languages) > LANGUAGES_MAX:
        raise InvalidArgument(f"at most {LANGUAGES_MAX} languages", field="languages")
    languages: list[str] = []
    for lang in profile.languages:
        if not (len(lang) == 2 and lang.isascii() and lang.isalpha() and lang.islower()):
            raise InvalidArgument(
                f"{lang!r} is not an ISO 639-1 code such as ja", field="languages"
            )
        if lang not in languages:
            languages.append(lang)
    return Profile(
        operator_id=profile.operator_id,
        capacity=_limit(profile.capacity, "capacity"),
        channel_capacity=_channel_capacity(profile.channel_capacity, "channel_capacity"),
        skills=tuple(skills),
        languages=tuple(languages),
    )
