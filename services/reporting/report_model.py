"""What a report is made of (I/O-free): the query as validated, the aggregated cells the
store answers, and the report's tables (what the chart, the table under it and the CSV
show)."""

from __future__ import annotations

from dataclasses import dataclass

from .periods import Period, Range
from .stats import Durations

Value = str | int | float | None

REPORTS = ("volume", "response_times", "operators", "topics", "satisfaction")
BASES = ("wall", "business")
TOP_DEFAULT, TOP_MAX = 10, 50


@dataclass(frozen=True, slots=True)
class Query:
    report: str
    range: Range
    periods: tuple[Period, ...]
    basis: str  # wall | business
    inbox_ids: tuple[str, ...] | None  # None: every inbox of the tenant
    source: str  # periods.HOUR | QUARTER | FACTS
    top: int = TOP_DEFAULT


@dataclass(frozen=True, slots=True)
class Cell:
    """The facts of one metric in one period, inbox and dimension value, summed."""

    period: int  # index into Query.periods
    metric: str
    inbox_id: str
    dimension: str  # '' (the inbox's total), operator, label, category …
    value: str  # the dimension's value ('' for the inbox's total)
    durations: Durations  # in the query's basis; count only for a count-only metric


@dataclass(frozen=True, slots=True)
class Want:
    """Which rows a report reads: these metrics of one dimension."""

    dimension: str
    metrics: tuple[str, ...]
    per_inbox: bool = False  # cells per inbox (each inbox's thresholds), else summed ("")
    # the metrics whose medians, p90 or levels the report shows (their histograms are
    # read); None: every duration metric read
    timed: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Value, ...], ...]


@dataclass(frozen=True, slots=True)
class Report:
    report: str
    query: Query
    inboxes: tuple[tuple[str, str], ...]  # (id, name) of the inboxes counted
    inbox_id: str  # the one asked for, "" for all
    tables: tuple[Table, ...]

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)
