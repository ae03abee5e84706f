"""Reports' maths and tables (issue 19 §3), by hand-computed cases: averages exact, medians
and p90 from the histograms, counts per threshold level of each inbox's own thresholds,
per-operator rows, top topics; the CSV holds exactly the JSON's table."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from switchboard.v1 import reporting_pb2 as pb

from gateway.routes_reports import report_json
from services.reporting import periods, report_build, stats
from services.reporting.report_csv import csv_lines
from services.reporting.report_model import Cell, Query, Report
from services.reporting.reports import report_pb
from services.reporting.stats import Durations, of_seconds

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
A, B = "0194d3a0-0000-7000-8000-00000000000a", "0194d3a0-0000-7000-8000-00000000000b"
OP1, OP2 = "0194d3a0-0000-7000-8000-0000000000c1", "0194d3a0-0000-7000-8000-0000000000c2"


def query(report: str, frm: str = "2026-11-01", to: str = "2026-11-02", top: int = 10) -> Query:
    r = periods.report_range(frm, to, "day", periods.zone_of("Asia/Tokyo"), NOW)
    bounds = tuple(periods.periods(r))
    return Query(report, r, bounds, "wall", None, periods.source_for(list(bounds)), top)


def count(period: int, metric: str, n: int, inbox: str = A, dim: str = "", value: str = "") -> Cell:
    return Cell(period, metric, inbox, dim, value, Durations(n))


def timed(period: int, metric: str, secs: list[float], inbox: str = A, value: str = "") -> Cell:
    return Cell(period, metric, inbox, "operator" if value else "", value, of_seconds(secs))


def test_average_is_exact_and_quantiles_interpolate_in_the_histogram() -> None:
    d = of_seconds([60, 120, 180, 600])  # buckets [1,2) [2,3) [3,4) [10,12) minutes
    assert stats.average(d) == 240
    assert stats.quantile(d, 0.5) == 180  # rank 2 ends the [2,3) minute bucket
    assert stats.quantile(d, 0.9) == pytest.approx(600 + 120 * 0.6)  # 0.6 into [10,12)
    single = of_seconds([437.0])
    assert stats.quantile(single, 0.5) == stats.quantile(single, 0.9) == 437.0
    assert stats.quantile(stats.EMPTY, 0.5) is None and stats.average(stats.EMPTY) is None
    assert of_seconds([60, 120]) + of_seconds([180, 600]) == d


def test_threshold_levels_on_edges_are_exact() -> None:
    d = of_seconds([5 * 60, 29 * 60, 30 * 60, 45 * 60, 3 * 3600])
    assert stats.levels(d, [30, 120], 2) == [2, 2, 1]  # <30 min, 30–120 min, ≥ 2 h
    assert stats.levels(d, [30], 3) == [2, 3, 0, 0]  # an inbox with fewer thresholds
    assert stats.levels(of_seconds([3 * 60 + 30]), [3], 1) == [0, 1]  # one value: exact


def test_volume_counts_per_period_and_total() -> None:
    q = query("volume")
    cells = [count(0, "received", 3), count(0, "received", 2, B), count(1, "sent", 4)]
    series, table = report_build.volume(q, cells, report_build.Context())
    assert series.columns == ("period", "start", "end", "received", "sent")
    assert [r[3:] for r in table.rows] == [(5, 0), (0, 4), (5, 4)]
    assert table.rows[0][:3] == (
        "2026-11-01",
        "2026-11-01T00:00:00+09:00",
        "2026-11-02T00:00:00+09:00",
    )
    assert table.rows[-1][0] == "total"


def test_response_times_use_each_inboxes_own_thresholds() -> None:
    q = query("response_times", to="2026-11-01")
    cells = [
        timed(0, "first_reply", [10 * 60, 40 * 60], inbox=A),  # A: 30 min → levels 0, 1
        timed(0, "first_reply", [10 * 60, 40 * 60], inbox=B),  # B: 5, 60 min → 1, 1
        timed(0, "resolution", [7200], inbox=A),
    ]
    ctx = report_build.Context(
        thresholds={A: [(30, "#ff0000")], B: [(5, "#00ff00"), (60, "#0000ff")]}
    )
    _series, table, thresholds = report_build.response_times(q, cells, ctx)
    row = dict(zip(table.columns, table.rows[-1], strict=True))
    assert row["first_reply_count"] == 4 and row["first_reply_average_seconds"] == 1500.0
    assert row["first_reply_median_seconds"] == 600 + 120 * 1.0  # rank 2 of 4 ends [10,12) min
    assert [row[f"first_reply_level_{k}"] for k in range(3)] == [1, 3, 0]
    assert [row[f"resolution_level_{k}"] for k in range(3)] == [0, 1, 0]
    assert row["resolution_median_seconds"] == row["resolution_p90_seconds"] == 7200.0
    assert thresholds.rows == ((0, 0, ""), (1, None, None), (2, None, None))


def test_operators_rows_by_name_and_the_totals_row() -> None:
    q = query("operators")
    cells = [
        count(0, "sent", 2, dim="operator", value=OP1),
        timed(0, "reply", [120, 240], value=OP1),
        count(1, "send_back", 1, dim="operator", value=OP2),
        count(1, "approval_given", 1, dim="operator", value=OP1),
        count(1, "trash", 3, dim="operator", value=OP2),
    ]
    ctx = report_build.Context(operator_names={OP1: "Yamada", OP2: "Abe"})
    series, table = report_build.operators(q, cells, ctx)
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    assert [r["operator"] for r in rows] == ["Abe", "Yamada", ""]
    assert rows[1]["replies_sent"] == 2 and rows[1]["reply_average_seconds"] == 180.0
    assert rows[0]["send_backs_received"] == 1 and rows[0]["deletions"] == 3
    assert rows[2]["operator_id"] == "total" and rows[2]["approvals_given"] == 1
    assert [s[3] for s in series.rows] == [2, 0]


def test_topics_name_the_top_ones_and_sum_the_rest() -> None:
    q = query("topics", to="2026-11-03", top=1)
    cells = [
        count(0, "arrival", 3, dim="label", value="配送"),
        count(0, "arrival", 1, dim="label", value="返品"),
        count(1, "arrival", 2, dim="category", value="inquiry"),
    ]
    series, table, top = report_build.topics(q, cells, report_build.Context())
    assert top.rows == (("label", "配送", 3, 0.75), ("category", "inquiry", 2, 1.0))
    assert (*series.rows[0][3:],) == ("label", "配送", 3)
    assert (*series.rows[1][3:],) == ("label", "(other)", 1)
    assert ("total", "label", "配送", 3) == (table.rows[-3][0], *table.rows[-3][3:])
    assert series.rows[-1][0] == "2026-11-03" and series.rows[-1][3:] == ("", "", 0)
    assert all(r[3] for r in table.rows)  # the table has no empty-period rows
    report = Report("topics", q, ((A, "Support"),), "", (series, table, top))
    body = report_json(pb.Report.FromString(report_pb(report).SerializeToString()))
    assert [p["period"] for p in body["series"]] == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert body["series"][2]["labels"] == {} and body["totals"]["labels"] == {
        "配送": 3,
        "(other)": 1,
    }


@pytest.mark.parametrize("name", ["volume", "response_times", "operators", "topics"])
def test_the_csv_holds_exactly_the_json_table(name: str) -> None:
    q = query(name)
    cells = [
        count(0, "received", 3),
        timed(0, "first_reply", [61.25, 3000]),
        count(0, "sent", 2, dim="operator", value=OP1),
        timed(1, "reply", [33.3], value=OP1),
        count(0, "arrival", 3, dim="label", value="=SUM(A1)"),
    ]
    wanted = {w.dimension for w in report_build.WANTS[name]}
    mine = [c for c in cells if c.dimension in wanted]
    ctx = report_build.Context(thresholds={A: [(30, "#f00")]}, operator_names={OP1: "Yamada"})
    report = Report(name, q, ((A, "Support"),), "", report_build.BUILDERS[name](q, mine, ctx))
    message = pb.Report.FromString(report_pb(report).SerializeToString())
    body = report_json(message)
    text = "".join(csv_lines(message))
    assert text.startswith("\ufeff")
    got = list(csv.reader(io.StringIO(text[1:])))
    assert got[0] == body["table"]["columns"]

    def shown(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, str) and v[:1] == "=":
            return "'" + v
        return str(v)

    assert got[1:] == [[shown(v) for v in row] for row in body["table"]["rows"]]
    assert len(got) > 2
