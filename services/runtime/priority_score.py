"""The priority score (RTE-3), one formula for tickets (the score on the ticket, lists
sorted by it) and routing (the assigner's queue): one point is one minute of waiting.

    score = whole minutes waited + the priority's points + the contact's customer value

The priority counts as minutes already waited (low 0, normal 60, high 240, urgent 960)
and so does the customer value (a contact field, 0 … 1,000,000; none counts 0). A score
grows with time, so it is kept as its origin: the moment it was 0, `waiting_since` minus
the points. Then score = minutes since the origin at any time, and ordering by the origin
(earliest first) is ordering by the score (highest first) — one column, one index."""

from __future__ import annotations

from datetime import datetime, timedelta

from switchboard.v1 import common_pb2

PRIORITY_POINTS: dict[int, int] = {
    common_pb2.PRIORITY_LOW: 0,
    common_pb2.PRIORITY_NORMAL: 60,
    common_pb2.PRIORITY_HIGH: 240,
    common_pb2.PRIORITY_URGENT: 960,
}
CUSTOMER_VALUE_MAX = 1_000_000


def points(priority: int, customer_value: int | None) -> int:
    """What a ticket's priority and its contact's customer value add to the minutes waited."""
    value = min(max(customer_value or 0, 0), CUSTOMER_VALUE_MAX)
    return PRIORITY_POINTS.get(priority, PRIORITY_POINTS[common_pb2.PRIORITY_NORMAL]) + value


def origin(waiting_since: datetime, priority: int, customer_value: int | None) -> datetime:
    """The moment the score was 0."""
    return waiting_since - timedelta(minutes=points(priority, customer_value))


def score(since: datetime, now: datetime) -> int:
    """The score now of a ticket whose score origin is `since`."""
    return int((now - since).total_seconds() // 60)
