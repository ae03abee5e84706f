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


def csv_lines(report: pb.Report) -> Iterator[str]:
    """The CSV text, line by line (the first one starts with the BOM)."""
    table = table_of(report)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(table.columns)
    yield BOM + buf.getvalue()
    for row in table.rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow([cell(v) for v in row.values])
        yield buf.getvalue()


def filename(report: pb.Report) -> str:
    return f"{report.report}_{getattr(report, 'from')[:10]}_{report.to[:10]}.csv"
