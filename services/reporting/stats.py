"""Averages, medians, p90 and threshold levels of durations kept as a count, a sum and a
histogram (services/reporting/histogram.py's buckets), I/O-free.

The average is exact (sum / count); a quantile comes from the summed histogram
(`histogram.percentile`: linear inside the bucket the rank falls in), except that a single
duration is its own median and p90 exactly (it is the sum). A threshold count is exact on a
histogram edge (every whole-minute threshold one picks is one); a threshold inside a bucket
splits that bucket's count in proportion."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

from . import histogram


@dataclass(frozen=True, slots=True)
class Durations:
    count: int = 0
    total: float = 0.0  # seconds
    hist: tuple[int, ...] = ()

    def __add__(self, other: Durations) -> Durations:
        if not other.count:
            return self
        if not self.count:
            return other
        return Durations(
            self.count + other.count,
            self.total + other.total,
            tuple(histogram.add(self.hist, other.hist)),
        )


EMPTY = Durations()


class Sum:
    """Durations added up in place (a report's many cells into one period)."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.hist: list[int] = []

    def add(self, d: Durations) -> None:
        if not d.count:
            return
        self.count += d.count
        self.total += d.total
        if d.hist:
            if len(self.hist) == len(d.hist):
                self.hist = list(map(operator.add, self.hist, d.hist))
            else:
                self.hist = histogram.add(self.hist, d.hist)

    def durations(self) -> Durations:
        return Durations(self.count, self.total, tuple(self.hist))


def of_seconds(values: Sequence[float]) -> Durations:
    """The Durations of individual durations."""
    return Durations(len(values), float(sum(values)), tuple(histogram.of(values)))


def seconds(value: float | None) -> float | None:
    """Seconds as reports show them: one decimal."""
    return None if value is None else round(value, 1)


def average(d: Durations) -> float | None:
    return d.total / d.count if d.count else None


def quantile(d: Durations, q: float) -> float | None:
    """The q-quantile of the durations (0.5 the median, 0.9 the p90)."""
    if not d.count:
        return None
    if d.count == 1:
        return d.total
    return histogram.percentile(d.hist, q)


def _at_least(d: Durations, limit: float) -> float:
    """How many durations are ≥ limit seconds: the buckets from the one holding `limit`
    on, that one in proportion when `limit` is not its lower edge."""
    if limit <= 0:
        return float(d.count)
    edges = histogram.EDGES_S
    i = histogram.bucket_of(limit)
    whole = float(sum(d.hist[i + 1 :]))
    if i >= len(d.hist) or edges[i] == limit or i + 1 >= len(edges):
        return whole + (d.hist[i] if i < len(d.hist) and edges[i] == limit else 0)
    low, high = edges[i], edges[i + 1]
    return whole + d.hist[i] * (high - limit) / (high - low)


def levels(d: Durations, thresholds_minutes: Sequence[int], size: int) -> list[int]:
    """Counts per elapsed-time level 0…size: level k = reached threshold k (1-based, of
    the inbox's ascending thresholds) and not k+1; level 0 = below the first."""
    if d.count == 1:  # one duration: known exactly (the sum)
        reached = [1] + [int(d.total >= m * 60) for m in thresholds_minutes]
    else:
        reached = [d.count] + [round(_at_least(d, m * 60)) for m in thresholds_minutes]
    reached += [0] * (size + 1 - len(reached))
    return [reached[k] - (reached[k + 1] if k + 1 < len(reached) else 0) for k in range(size + 1)]
