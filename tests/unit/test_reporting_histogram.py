"""The shared histogram of durations (issue 19): buckets on whole minutes, sums that add,
percentiles by interpolation inside a bucket — worked by hand."""

from __future__ import annotations

import pytest

from services.reporting import histogram as h


def test_edges_are_whole_minutes_and_common_thresholds_are_edges() -> None:
    assert all(e % 60 == 0 for e in h.EDGES_S)
    assert list(h.EDGES_S) == sorted(set(h.EDGES_S))
    for minutes in (1, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 2880, 4320, 10080):
        assert h.is_edge(minutes * 60)
    assert not h.is_edge(7 * 60)


def test_bucket_of_puts_an_edge_in_the_bucket_it_opens() -> None:
    assert h.bucket_of(0) == 0
    assert h.bucket_of(-5) == 0
    assert h.bucket_of(59.9) == 0
    assert h.bucket_of(60) == 1
    assert h.bucket_of(299) == 4  # [4 min, 5 min)
    assert h.bucket_of(300) == 5
    assert h.bucket_of(10**9) == h.BUCKETS - 1


def test_histograms_add_element_wise_and_empty_is_zero() -> None:
    a = h.of([30, 90, 90])
    b = h.of([90, 4000])
    s = h.add(a, b)
    assert s[0] == 1 and s[1] == 3 and sum(s) == 5
    assert h.add([], b) == b and h.add(a, []) == a
    with pytest.raises(ValueError):
        h.add([1, 2], [3, 4])


def test_percentile_interpolates_inside_the_bucket() -> None:
    # ten durations in [10 min, 12 min): the median is half-way, 11 minutes
    hist = h.of([600 + i for i in range(10)])
    assert h.median(hist) == pytest.approx(660.0)
    assert h.percentile(hist, 0.9) == pytest.approx(600 + 120 * 0.9)
    # two in [0, 1 min), two in [1, 2 min): the median rank 2 ends the first bucket
    hist = h.of([10, 20, 70, 80])
    assert h.median(hist) == pytest.approx(60.0)
    assert h.percentile(hist, 0.75) == pytest.approx(90.0)
    assert h.percentile(h.empty(), 0.5) is None
    # the open-ended last bucket answers its lower edge
    assert h.percentile(h.of([10**9]), 0.5) == h.EDGES_S[-1]
    with pytest.raises(ValueError):
        h.percentile(hist, 1.5)


def test_count_below_is_exact_on_an_edge() -> None:
    hist = h.of([100, 299, 300, 301, 900, 3600])
    assert h.count_below(hist, 300) == 2  # under 5 minutes
    assert h.count_below(hist, 3600) == 5
    assert h.count_below(hist, 0) == 0
    # 7 minutes is inside [6, 8): only the buckets wholly below it count
    assert h.count_below(hist, 420) == 4
