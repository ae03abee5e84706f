"""Reports' periods in the viewer's zone (issue 19 §3): a day boundary in Asia/Tokyo and in
America/New_York across DST, ISO weeks, months, hours, the stored buckets each zone needs,
and the parameters refused (each naming itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from switchboard.v1 import reporting_pb2 as pb

from services.reporting import periods
from services.reporting.periods import FACTS, HOUR, QUARTER, report_range, source_for
from services.reporting.reports import query_of
from services.runtime.errors import InvalidArgument

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)  # type: ignore[misc]


def days(zone: str, frm: str, to: str, granularity: str = "day") -> list[periods.Period]:
    return periods.periods(report_range(frm, to, granularity, periods.zone_of(zone), NOW))


def test_a_day_in_tokyo_runs_from_15_00_utc_to_15_00_utc() -> None:
    got = days("Asia/Tokyo", "2026-11-01", "2026-11-02")
    assert [(p.label, p.start, p.end) for p in got] == [
        ("2026-11-01", utc(2026, 10, 31, 15), utc(2026, 11, 1, 15)),
        ("2026-11-02", utc(2026, 11, 1, 15), utc(2026, 11, 2, 15)),
    ]
    assert source_for(got) == HOUR


def test_new_york_has_a_23_hour_day_in_march_and_a_25_hour_day_in_november() -> None:
    spring = days("America/New_York", "2026-03-07", "2026-03-09")
    assert [p.end - p.start for p in spring] == [timedelta(hours=h) for h in (24, 23, 24)]
    assert spring[1].start == utc(2026, 3, 8, 5)  # midnight EST
    assert spring[1].end == utc(2026, 3, 9, 4)  # midnight EDT
    autumn = days("America/New_York", "2026-10-31", "2026-11-02")
    assert [p.end - p.start for p in autumn] == [timedelta(hours=h) for h in (24, 25, 24)]
    assert autumn[1].start == utc(2026, 11, 1, 4) and autumn[1].end == utc(2026, 11, 2, 5)
    assert source_for(spring + autumn) == HOUR


def test_hours_across_the_new_york_fall_back_repeat_the_local_one_oclock() -> None:
    got = days("America/New_York", "2026-11-01T00:00", "2026-11-01T03:00", "hour")
    assert [p.label for p in got] == [
        "2026-11-01T00:00",
        "2026-11-01T01:00",
        "2026-11-01T01:00",
        "2026-11-01T02:00",
    ]
    assert got[0].start == utc(2026, 11, 1, 4) and got[-1].end == utc(2026, 11, 1, 8)


def test_iso_weeks_start_on_monday_and_the_edges_are_cut_to_the_range() -> None:
    got = days("Asia/Tokyo", "2026-11-04", "2026-11-20", "week")  # a Wednesday to a Friday
    assert [p.label for p in got] == ["2026-W45", "2026-W46", "2026-W47"]
    assert got[0].start == utc(2026, 11, 3, 15)  # the range's start, not Monday's
    assert got[1].start == utc(2026, 11, 8, 15)  # Monday 9 November 00:00 JST
    assert got[-1].end == utc(2026, 11, 20, 15)


def test_months_in_new_york_follow_the_local_calendar() -> None:
    got = days("America/New_York", "2026-01-01", "2026-12-31", "month")
    assert [p.label for p in got][:3] == ["2026-01", "2026-02", "2026-03"] and len(got) == 12
    assert got[2].start == utc(2026, 3, 1, 5) and got[3].start == utc(2026, 4, 1, 4)


def test_half_and_quarter_hour_zones_need_the_15_minute_buckets() -> None:
    assert source_for(days("Asia/Kolkata", "2026-11-01", "2026-11-03")) == QUARTER
    assert source_for(days("Asia/Kathmandu", "2026-11-01", "2026-11-03")) == QUARTER
    assert source_for(days("UTC", "2026-11-01T00:07", "2026-11-03")) == FACTS


def test_dates_and_date_times_in_the_zone_or_with_an_offset() -> None:
    zone = periods.zone_of("Asia/Tokyo")
    r = report_range("2026-11-01T09:00", "2026-11-01T10:00:00+00:00", "hour", zone, NOW)
    assert (r.start, r.end) == (utc(2026, 11, 1, 0), utc(2026, 11, 1, 10))
    default = report_range("", "", "", zone, NOW)
    assert default.granularity == "day"
    assert default.end == utc(2026, 12, 7, 15)  # end of 7 December in Tokyo (05:00 there now)
    assert default.end - default.start == timedelta(days=30)  # today and the 29 before


@pytest.mark.parametrize(
    ("frm", "to", "granularity", "field"),
    [
        ("2026-11-05", "2026-11-01", "day", "to"),
        ("2026-11-01T10:00", "2026-11-01T10:00", "day", "to"),
        ("yesterday", "", "day", "from"),
        ("2026-11-01", "2026-13-01", "day", "to"),
        ("2026-01-01", "2026-12-31", "hour", "granularity"),
        ("2020-01-01", "2026-12-31", "day", "to"),
        ("2026-01-01", "2026-01-02", "fortnight", "granularity"),
        ("9999-01-01", "9999-12-31", "month", "to"),
        ("0001-01-01", "0001-02-01", "day", "from"),
        ("9999-12-31T20:00:00-05:00", "", "day", "from"),
    ],
)
def test_a_bad_range_is_refused_naming_the_parameter(
    frm: str, to: str, granularity: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        report_range(frm, to, granularity, periods.zone_of("UTC"), NOW)
    assert err.value.field == field


def test_hour_granularity_over_92_days_is_refused_and_92_are_allowed() -> None:
    zone = periods.zone_of("UTC")
    assert len(periods.periods(report_range("2026-01-01", "2026-04-02", "hour", zone, NOW))) == (
        92 * 24
    )
    with pytest.raises(InvalidArgument) as err:
        report_range("2026-01-01", "2026-04-03", "hour", zone, NOW)
    assert err.value.field == "granularity"


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "Asia/Tokyo\x00", "x" * 80])
def test_an_unknown_zone_is_refused_naming_tz(name: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        periods.zone_of(name)
    assert err.value.field == "tz"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"report": "everything"}, "report"),
        ({"basis": "lunar"}, "basis"),
        ({"top": 51}, "top"),
        ({"time_zone": "Nowhere/City"}, "tz"),
        ({"granularity": "minute"}, "granularity"),
    ],
)
def test_request_validation_names_each_parameter(change: dict[str, object], field: str) -> None:
    req = pb.GetReportRequest(**{"report": "volume", **change})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as err:
        query_of(req, "Asia/Tokyo", NOW, None)
    assert err.value.field == field


def test_the_viewer_zone_is_the_default_and_from_facts_forces_the_facts() -> None:
    req = pb.GetReportRequest(report="volume", granularity="week", from_facts=True)
    q = query_of(req, "America/New_York", NOW, None)
    assert q.range.zone.key == "America/New_York" and q.source == FACTS and q.basis == "wall"
