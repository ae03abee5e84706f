"""The one histogram of durations that facts, rollups and reports share (issue 19), free
of I/O.

A histogram is a list of counts, one per bucket: bucket `i` holds the durations `d` with
`EDGES_S[i] <= d < EDGES_S[i + 1]`, the last bucket everything from `EDGES_S[-1]` on.
The edges lie on whole minutes — every inbox threshold one would pick (5, 10, 15, 30
minutes, 1, 2, 4, 8 hours, 1, 2, 3 days, a week …) is an edge — so a count "within N
minutes" is exact for such an N (`count_below`). Two histograms of the same buckets add
element-wise (`add`): a report sums the rollups' histograms of its range, then reads
averages from the sums and medians, p90 … from the summed histogram (`percentile`), by
linear interpolation inside the bucket the rank falls in.

Changing the edges changes what every stored histogram means: it needs a rebuild of the
rollups (`python -m services.reporting.rebuild`), and a new migration of nothing else.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

_MINUTES = (
    # the first hour, finely
    0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 60,
    # the working day
    75, 90, 105, 120, 150, 180, 210, 240, 300, 360, 420, 480, 540, 600, 720,
    # days
    900, 1080, 1200, 1440, 1800, 2160, 2880, 3600, 4320, 5760, 7200, 8640, 10080,
    # weeks and months
    14400, 20160, 30240, 43200, 64800, 86400, 129600,
)  # fmt: skip
# The lower edge of each bucket, in seconds; the last bucket is open-ended (90 days on).
EDGES_S: tuple[int, ...] = tuple(m * 60 for m in _MINUTES)
BUCKETS = len(EDGES_S)


def empty() -> list[int]:
    return [0] * BUCKETS


def bucket_of(seconds: float) -> int:
    """The index of the bucket holding a duration of `seconds` (a negative one, which a
    clock step could make, counts as 0)."""
    if seconds <= 0:
        return 0
    return bisect_right(EDGES_S, seconds) - 1


def of(durations: Sequence[float]) -> list[int]:
    """The histogram of some durations, in seconds."""
    out = empty()
    for d in durations:
        out[bucket_of(d)] += 1
    return out


def add(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """Two histograms summed; an empty list (a count-only rollup) is the zero histogram."""
    if not a:
        return list(b) if b else []
    if not b:
        return list(a)
    if len(a) != BUCKETS or len(b) != BUCKETS:
        raise ValueError(f"a histogram has {BUCKETS} buckets, not {len(a)} / {len(b)}")
    return [x + y for x, y in zip(a, b, strict=True)]


def total(hist: Sequence[int]) -> int:
    return sum(hist)


def percentile(hist: Sequence[int], q: float) -> float | None:
    """The `q`-quantile (0 ≤ q ≤ 1: 0.5 the median, 0.9 the p90) in seconds, None for an
    empty histogram. The rank q·n falls in some bucket; the value is interpolated
    linearly between that bucket's edges by how far into its count the rank is. The
    open-ended last bucket answers its lower edge (a lower bound: "90 days or more")."""
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must lie in [0, 1]")
    n = sum(hist)
    if n == 0:
        return None
    rank = q * n
    seen = 0
    for i, c in enumerate(hist):
        if c == 0:
            continue
        if seen + c >= rank:
            lo = EDGES_S[i]
            if i + 1 >= BUCKETS:
                return float(lo)
            hi = EDGES_S[i + 1]
            return lo + (hi - lo) * max(rank - seen, 0.0) / c
        seen += c
    return float(EDGES_S[len(hist) - 1])  # pragma: no cover - rank ≤ n always lands above


def median(hist: Sequence[int]) -> float | None:
    return percentile(hist, 0.5)


def count_below(hist: Sequence[int], seconds: int) -> int:
    """How many durations were shorter than `seconds` — exact when `seconds` is an edge
    (a whole-minute threshold in `EDGES_S`), else the buckets wholly below it."""
    if seconds <= 0:
        return 0
    # the bucket holding `seconds`: wholly below it only when `seconds` is its lower edge
    return sum(hist[: bisect_right(EDGES_S, seconds) - 1])


def is_edge(seconds: int) -> bool:
    """Whether a threshold of `seconds` falls on an edge (its counts are exact)."""
    i = bisect_right(EDGES_S, seconds) - 1
    return i >= 0 and EDGES_S[i] == seconds
