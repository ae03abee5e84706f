"""The Reports section names every column of every report in both languages (issue 19): the
table under each chart shows the report's `table` columns (the CSV's), each by its
`rep.col.<name>` in gateway/ui/src/i18nReports.ts, so no API column name is the only text a
person reads. The threshold levels (`first_reply_level_<k>`) are worded from their measure."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from gateway import app as gateway_app
from services.reporting import periods, report_build
from services.reporting.report_model import Query

UI = Path(gateway_app.__file__).with_name("ui") / "src"
# ids and instants the screen does not show (ReportTable.tsx: HIDDEN)
HIDDEN = {"start", "end", "operator_id", "id"}


def columns_of(report: str) -> set[str]:
    now = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    r = periods.report_range("2026-11-01", "2026-11-02", "day", periods.zone_of("UTC"), now)
    bounds = tuple(periods.periods(r))
    q = Query(report, r, bounds, "wall", None, periods.source_for(list(bounds)), 10)
    tables = report_build.BUILDERS[report](q, [], report_build.Context())
    table = next(t for t in tables if t.name == "table")
    return set(table.columns)


def test_every_column_of_every_report_has_words_in_english_and_japanese() -> None:
    words = (UI / "i18nReports.ts").read_text(encoding="utf-8")
    shown: set[str] = set()
    for report in report_build.BUILDERS:
        shown |= columns_of(report) - HIDDEN
    assert {"period", "received", "replies_sent", "topic", "average_rating"} <= shown  # all read
    levels = {c for c in shown if re.fullmatch(r"(first_reply|resolution)_level_\d+", c)}
    missing = [c for c in sorted(shown - levels) if words.count(f'"rep.col.{c}":') != 2]
    assert missing == []
    for measure in ("first_reply", "resolution"):  # what a level's words are made of
        assert words.count(f'"rep.col.{measure}_count":') == 2
