"""A report's table as CSV (I/O-free): the same cells as the JSON's `table` — header, rows,
the totals row last — integers as `12`, seconds as `123.4`, null as an empty cell, text
guarded against formula injection. The gateway's `.csv` download and the aggregate export
both write it, so the file always holds the chart's numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from switchboard.v1 import reporting_pb2 as pb

BOM = "\ufeff"  # spreadsheets read UTF-8 then


def cell(v: pb.ReportValue) -> str:
    kind = v.WhichOneof("kind")
    if kind == "text":
        return "'" + v.text if v.text[:1] in ("=", "+", "-", "@", "\t", "\r") else v.text
    if kind == "count":
        return str(v.count)
    if kind == "number":
        return repr(v.number)
    return ""


def table_of(report: pb.Report, name: str = "table") -> pb.ReportTable:
    for t in report.tables:
        if t.name == name:
            return t
    raise KeyError(name)


# sections after the table, each after an empty line with its own header, when the report
# has them: the satisfaction report's additional questions and its comments
SECTIONS = ("questions", "comments")


def csv_lines(report: pb.Report) -> Iterator[str]:
    """The CSV text, line by line (the first one starts with the BOM)."""
    table = table_of(report)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def line(values: list[str]) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow(values)
        return buf.getvalue()

    yield BOM + line(list(table.columns))
    for row in table.rows:
        yield line([cell(v) for v in row.values])
    for t in report.tables:
        if t.name in SECTIONS:
            yield "\r\n" + line(list(t.columns))
            for row in t.rows:
                yield line([cell(v) for v in row.values])


def filename(report: pb.Report) -> str:
    return f"{report.report}_{getattr(report, 'from')[:10]}_{report.to[:10]}.csv"
