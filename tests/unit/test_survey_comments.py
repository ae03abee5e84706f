"""The satisfaction surveys' comments (issue 20), I/O-free: the list's cursor reads back
what it wrote and refuses anything else naming `cursor`; the report's CSV holds the table,
then the additional questions and the comments each after an empty line."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime

import pytest
from switchboard.v1 import reporting_pb2 as pb

from services.reporting import report_csv
from services.reporting import survey_comments as sc
from services.runtime.errors import InvalidArgument


def test_the_cursor_reads_back_and_refuses_anything_else() -> None:
    c = sc.Comment(
        survey_id=uuid.uuid4(), ticket_id=uuid.uuid4(), ticket_number=3, inbox_id="i",
        operator_id="", operator_name="", rating=2, comment="x",
        answered_at=datetime(2026, 12, 1, 9, 30, 1, 123456, tzinfo=UTC),
    )  # fmt: skip
    assert sc.read_cursor(sc.cursor_of(c)) == (c.answered_at, c.survey_id)
    for bad in ("", "not-base64!", "WzFd", sc.cursor_of(c)[:-4]):
        with pytest.raises(InvalidArgument) as err:
            sc.read_cursor(bad)
        assert err.value.field == "cursor", bad


def table(name: str, columns: list[str], *rows: list[str]) -> pb.ReportTable:
    return pb.ReportTable(
        name=name,
        columns=columns,
        rows=[pb.ReportRow(values=[pb.ReportValue(text=v) for v in r]) for r in rows],
    )


def test_the_csv_holds_the_questions_and_the_comments_after_the_table() -> None:
    report = pb.Report(
        report="satisfaction",
        tables=[
            table("series", ["period"], ["d1"]),
            table("table", ["period", "n"], ["d1", "1"]),
            table("questions", ["question_id"], ["speed"]),
            table("comments", ["comment"], ["=HYPERLINK()\nsecond line"]),
        ],
    )
    text = "".join(report_csv.csv_lines(report)).removeprefix(report_csv.BOM)
    got = list(csv.reader(io.StringIO(text)))
    assert got == [
        ["period", "n"], ["d1", "1"], [], ["question_id"], ["speed"], [], ["comment"],
        ["'=HYPERLINK()\nsecond line"],
    ]  # fmt: skip
