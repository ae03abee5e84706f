"""The reports' tables from the summed cells (I/O-free): RPT-1 `volume`, RPT-2
`response_times`, RPT-3 `operators`, RPT-4 `topics` (docs/architecture.md, "Reports").

Each report has a `series` table (one row per period, the chart's points) and a `table`
(the table under the chart and the CSV, its totals row last); `response_times` adds
`thresholds`, `topics` `top`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from . import stats
from .periods import Period, local_iso
from .ratings import satisfaction
from .report_model import Cell, Query, Table, Value, Want
from .stats import Durations

WANTS: dict[str, tuple[Want, ...]] = {
    "volume": (Want("", ("received", "sent")),),
    "response_times": (Want("", ("first_reply", "resolution"), per_inbox=True),),
    "operators": (
        Want(
            "operator",
            (
                "sent",
                "reply",
                "approval_request",
                "send_back",
                "approval_given",
                "forward",
                "transfer",
                "trash",
            ),
            timed=("reply",),  # the others are counted only
        ),
    ),
    "topics": (Want("label", ("arrival",)), Want("category", ("arrival",))),
    "satisfaction": (),  # reporting's ratings, not the rollups (ratings_store.py)
}
OTHER = "(other)"
TOTAL = "total"


@dataclass(frozen=True, slots=True)
class Context:
    """What the store does not hold: inboxes' thresholds (ascending minutes, colours),
    operators' names."""

    thresholds: Mapping[str, Sequence[tuple[int, str]]] = field(default_factory=dict)
    operator_names: Mapping[str, str] = field(default_factory=dict)
    inbox_names: Mapping[str, str] = field(default_factory=dict)
    question_texts: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def _when(q: Query, p: Period) -> list[Value]:
    return [p.label, local_iso(p.start, q.range.zone), local_iso(p.end, q.range.zone)]


def _whole(q: Query) -> list[Value]:
    return [TOTAL, local_iso(q.range.start, q.range.zone), local_iso(q.range.end, q.range.zone)]


def _sum(cells: Iterable[Cell], key: Callable[[Cell], object]) -> dict[object, Durations]:
    """The cells' durations added up per key (a missing key reads as nothing)."""
    acc: dict[object, stats.Sum] = {}
    for c in cells:
        k = key(c)
        found = acc.get(k)
        if found is None:
            found = acc[k] = stats.Sum()
        found.add(c.durations)
    out: dict[object, Durations] = defaultdict(Durations)
    out.update((k, s.durations()) for k, s in acc.items())
    return out


def _timing(d: Durations) -> list[Value]:
    return [
        d.count,
        stats.seconds(stats.average(d)),
        stats.seconds(stats.quantile(d, 0.5)),
        stats.seconds(stats.quantile(d, 0.9)),
    ]


def _timing_columns(name: str) -> tuple[str, ...]:
    return tuple(
        f"{name}_{s}" for s in ("count", "average_seconds", "median_seconds", "p90_seconds")
    )


PERIOD_COLUMNS: tuple[str, ...] = ("period", "start", "end")


def volume(q: Query, cells: Sequence[Cell], ctx: Context) -> tuple[Table, ...]:
    metrics = ("received", "sent")
    by = _sum(cells, lambda c: (c.period, c.metric))
    rows = [
        tuple(_when(q, p) + [by[(i, m)].count for m in metrics]) for i, p in enumerate(q.periods)
    ]
    totals = tuple(
        _whole(q) + [sum(by[(i, m)].count for i in range(len(q.periods))) for m in metrics]
    )
    columns = PERIOD_COLUMNS + metrics
    return Table("series", columns, tuple(rows)), Table("table", columns, (*rows, totals))


def _threshold_size(q: Query, ctx: Context, inboxes: Iterable[str]) -> int:
    return max((len(ctx.thresholds.get(i, ())) for i in inboxes), default=0)


def _threshold(ctx: Context, inbox: str, level: int) -> tuple[int, str] | None:
    mine = ctx.thresholds.get(inbox, ())
    return (mine[level - 1][0], mine[level - 1][1]) if len(mine) >= level else None


def response_times(q: Query, cells: Sequence[Cell], ctx: Context) -> tuple[Table, ...]:
    metrics = ("first_reply", "resolution")
    inboxes = sorted({c.inbox_id for c in cells} | set(q.inbox_ids or ()))
    size = _threshold_size(q, ctx, inboxes)
    minutes = {b: [t[0] for t in ctx.thresholds.get(b, ())] for b in inboxes}
    n = len(q.periods)
    # one pass: each (period, inbox) cell into its period's sums and level counts
    sums = {(i, m): stats.Sum() for i in range(n + 1) for m in metrics}  # n: the range
    counts = {(i, m): [0] * (size + 1) for i in range(n + 1) for m in metrics}
    for c in cells:
        if c.metric not in metrics:
            continue
        reached = stats.levels(c.durations, minutes.get(c.inbox_id, []), size)
        for i in (c.period, n):
            sums[(i, c.metric)].add(c.durations)
            into = counts[(i, c.metric)]
            for k, x in enumerate(reached):
                into[k] += x

    def row(head: list[Value], i: int) -> tuple[Value, ...]:
        out = list(head)
        for m in metrics:
            out += _timing(sums[(i, m)].durations())
        for m in metrics:
            out += counts[(i, m)]
        return tuple(out)

    columns: tuple[str, ...] = PERIOD_COLUMNS
    for m in metrics:
        columns += _timing_columns(m)
    for m in metrics:
        columns += tuple(f"{m}_level_{k}" for k in range(size + 1))
    rows = [row(_when(q, p), i) for i, p in enumerate(q.periods)]
    totals = row(_whole(q), n)
    levels: list[tuple[Value, ...]] = []
    for k in range(size + 1):
        seen: set[tuple[int, str] | None] = {
            (0, "") if k == 0 else _threshold(ctx, b, k) for b in inboxes
        }
        same = next(iter(seen)) if len(seen) == 1 else None
        levels.append((k, same[0] if same else None, same[1] if same else None))
    return (
        Table("series", columns, tuple(rows)),
        Table("table", columns, (*rows, totals)),
        Table("thresholds", ("level", "after_minutes", "color"), tuple(levels)),
    )


OPERATOR_COUNTS = (
    ("replies_sent", "sent"),
    ("approval_requests", "approval_request"),
    ("send_backs_received", "send_back"),
    ("approvals_given", "approval_given"),
    ("forwards", "forward"),
    ("transfers", "transfer"),
    ("deletions", "trash"),
)


def operators(q: Query, cells: Sequence[Cell], ctx: Context) -> tuple[Table, ...]:
    per_period = _sum(cells, lambda c: (c.period, c.metric))
    series = tuple(
        tuple(_when(q, p) + [per_period[(i, m)].count for _, m in OPERATOR_COUNTS])
        for i, p in enumerate(q.periods)
    )
    per_op = _sum(cells, lambda c: (c.value, c.metric))
    ops = sorted(
        {c.value for c in cells},
        key=lambda o: (ctx.operator_names.get(o, "").casefold(), o),
    )

    columns = (
        "operator_id",
        "operator",
        "replies_sent",
        "reply_count",
        "reply_average_seconds",
        "reply_median_seconds",
        "reply_p90_seconds",
        *(name for name, _ in OPERATOR_COUNTS[1:]),
    )
    rows: list[tuple[Value, ...]] = []
    for o in ops:
        rows.append(
            (
                o,
                ctx.operator_names.get(o, ""),
                per_op[(o, "sent")].count,
                *_timing(per_op[(o, "reply")]),
                *(per_op[(o, m)].count for _, m in OPERATOR_COUNTS[1:]),
            )
        )
    per_metric = _sum(cells, lambda c: c.metric)
    rows.append(
        (
            TOTAL,
            "",
            per_metric["sent"].count,
            *_timing(per_metric["reply"]),
            *(per_metric[m].count for _, m in OPERATOR_COUNTS[1:]),
        )
    )
    return (
        Table("series", PERIOD_COLUMNS + tuple(n for n, _ in OPERATOR_COUNTS), series),
        Table("table", columns, tuple(rows)),
    )


def _value(c: Cell) -> str:
    return c.value


def topics(q: Query, cells: Sequence[Cell], ctx: Context) -> tuple[Table, ...]:
    """Tickets arriving per label and per category; the `top` of each by name in the
    series and the table, the rest as `(other)`."""
    dims = ("label", "category")
    total_all = 0
    top_rows: list[tuple[Value, ...]] = []
    table_rows: list[tuple[Value, ...]] = []
    series_rows: list[tuple[Value, ...]] = []
    named: dict[str, list[str]] = {}
    for dim in dims:
        mine = [c for c in cells if c.dimension == dim]
        whole = _sum(mine, lambda c: c.value)
        ranked = sorted(whole, key=lambda v: (-whole[v].count, str(v)))
        named[dim] = [str(v) for v in ranked[: q.top]]
        dim_total = sum(d.count for d in whole.values())
        total_all = max(total_all, dim_total)
        for v in ranked[: q.top]:
            share = round(whole[v].count / dim_total, 4) if dim_total else None
            top_rows.append((dim, str(v), whole[v].count, share))
    by_period: dict[tuple[int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in cells:
        by_period[(c.period, c.dimension)][c.value] += c.durations.count
    for i, p in enumerate(q.periods):
        before = len(table_rows)
        for dim in dims:
            per = by_period.get((i, dim), {})
            for v in named[dim]:
                if per.get(v):
                    table_rows.append((*_when(q, p), dim, v, per[v]))
            other = sum(n for k, n in per.items() if k not in named[dim])
            if other:
                table_rows.append((*_when(q, p), dim, OTHER, other))
        # the chart has every period: an empty one as a row of no dimension
        series_rows.extend(table_rows[before:] or [(*_when(q, p), "", "", 0)])
    for dim in dims:
        whole = _sum((c for c in cells if c.dimension == dim), _value)
        for v in named[dim]:
            table_rows.append((*_whole(q), dim, v, whole[v].count))
        other = sum(d.count for k, d in whole.items() if k not in named[dim])
        if other:
            table_rows.append((*_whole(q), dim, OTHER, other))
    columns = (*PERIOD_COLUMNS, "dimension", "topic", "count")
    return (
        Table("series", columns, tuple(series_rows)),
        Table("table", columns, tuple(table_rows)),
        Table("top", ("dimension", "topic", "count", "share"), tuple(top_rows)),
    )


BUILDERS: dict[str, Callable[[Query, Sequence[Cell], Context], tuple[Table, ...]]] = {
    "volume": volume,
    "response_times": response_times,
    "operators": operators,
    "topics": topics,
    "satisfaction": satisfaction,
}
