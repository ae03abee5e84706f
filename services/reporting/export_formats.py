"""What an export's file looks like (issue 19, DAT-1), I/O-free: the kinds, the columns of
the CSV kinds and how a batch of rows from tickets becomes CSV text (masked for operators
who may not see customers' addresses), the names of the .eml files in a zip, and the mbox
framing (mboxrd) of a mail."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from switchboard.v1 import tickets_pb2

from services.runtime.export_rows import from_micros
from services.runtime.masking import mask_text

TICKETS_CSV = "tickets_csv"
MESSAGES_CSV = "messages_csv"
EML_ZIP = "eml_zip"
MBOX = "mbox"
REPORT_CSV = "report_csv"  # an aggregate report's table (rreports' report_csv.py)
KINDS = (TICKETS_CSV, MESSAGES_CSV, EML_ZIP, MBOX, REPORT_CSV)
MAIL_KINDS = frozenset({EML_ZIP, MBOX})
BOM = b"\xef\xbb\xbf"  # UTF-8 with a BOM: spreadsheets read it as UTF-8

TICKET_COLUMNS = (
    "id", "number", "subject", "status", "priority", "inbox_id", "inbox", "from_name",
    "from_address", "contact_id", "assignee_id", "assignee", "labels", "category",
    "message_count", "received_at", "last_message_at", "closed_at", "updated_at",
)  # fmt: skip
MESSAGE_COLUMNS = (
    "id", "ticket_id", "ticket_number", "inbox_id", "inbox", "channel", "received_at",
    "from_name", "from_address", "to", "cc", "subject", "rfc822_message_id", "size_bytes",
    "has_attachments",
)  # fmt: skip
COLUMNS = {TICKETS_CSV: TICKET_COLUMNS, MESSAGES_CSV: MESSAGE_COLUMNS}
# the columns that may hold a customer's address, name or phone number (masked)
_CUSTOMER_TEXT = frozenset({"subject", "from_name", "from_address", "to", "cc"})
# the batch's field of each column whose name differs
_FIELD = {"inbox": "inbox_name", "assignee": "assignee_name"}
_TIMES = frozenset({"received_at", "last_message_at", "closed_at", "updated_at"})

CONTENT_TYPES = {
    TICKETS_CSV: "text/csv; charset=utf-8",
    MESSAGES_CSV: "text/csv; charset=utf-8",
    EML_ZIP: "application/zip",
    MBOX: "application/mbox",
    REPORT_CSV: "text/csv; charset=utf-8",
}
_EXTENSIONS = {TICKETS_CSV: "csv", MESSAGES_CSV: "csv", EML_ZIP: "zip", MBOX: "mbox"}


def filename(kind: str, start: datetime, end: datetime) -> str:
    stem = kind.removesuffix("_csv").removesuffix("_zip")
    stem = "mails" if kind in MAIL_KINDS else stem
    return f"{stem}-{start:%Y%m%d}-{end:%Y%m%d}.{_EXTENSIONS[kind]}"


def unknown_columns(kind: str, columns: Sequence[str]) -> list[str]:
    known = set(COLUMNS.get(kind, ()))
    return [c for c in columns if c not in known]


_FORMULA = frozenset(("=", "+", "-", "@", "\t", "\r"))
# columns whose values never start like a formula (ids, names of states): not checked
_PLAIN = frozenset({"id", "inbox_id", "contact_id", "assignee_id", "ticket_id", "status",
                    "priority", "channel"})  # fmt: skip


def _cells(values: Sequence[str]) -> list[str]:
    """No formula injection when the file is opened in a spreadsheet: a cell that starts
    like one is prefixed with `'`."""
    return ["'" + v if v[:1] in _FORMULA else v for v in values]


class _Times:
    """ISO 8601 times (to the second) of microsecond instants in one zone, fast: the
    zone's offset looked up once per quarter hour of UTC, the date once per day."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone
        self._utc = zone.key == "UTC"
        self._offsets: dict[int, tuple[int, str]] = {}
        self._dates: dict[int, str] = {}

    def _offset(self, quarter: int) -> tuple[int, str]:
        found = self._offsets.get(quarter)
        if found is None:
            at = from_micros(quarter * 900_000_000).astimezone(self._zone)
            delta = at.utcoffset()
            seconds = int(delta.total_seconds()) if delta is not None else 0
            suffix = "Z" if self._utc else at.isoformat()[19:]
            found = self._offsets[quarter] = (seconds, suffix)
        return found

    def _date(self, day: int) -> str:
        found = self._dates.get(day)
        if found is None:
            found = self._dates[day] = from_micros(day * 86_400_000_000).strftime("%Y-%m-%d")
        return found

    def format(self, values: Sequence[int]) -> list[str]:
        out = []
        for us in values:
            if not us:
                out.append("")
                continue
            sec = us // 1_000_000
            offset, suffix = self._offset(sec // 900)
            local = sec + offset
            rem = local % 86_400
            out.append(
                f"{self._date(local // 86_400)}T{rem // 3600:02d}:{rem % 3600 // 60:02d}:"
                f"{rem % 60:02d}{suffix}"
            )
        return out


@dataclass(frozen=True)
class CsvShape:
    """How rows are written: the columns in order, the time zone of times, and whether
    customers' addresses and phone numbers are masked (the addresses in `keep` are the
    tenant's own, never masked)."""

    columns: tuple[str, ...]
    tz: str = "UTC"
    masked: bool = False
    keep: frozenset[str] = frozenset()

    def header(self) -> bytes:
        return BOM + _csv_text([list(self.columns)])

    def rows(self, batch: tickets_pb2.TicketExportBatch | tickets_pb2.MessageExportBatch) -> bytes:
        times = _Times(ZoneInfo(self.tz))
        out_columns: list[list[str]] = []
        for name in self.columns:
            values = getattr(batch, _FIELD.get(name, name) + ("_us" if name in _TIMES else ""))
            out_columns.append(self._column(name, values, times))
        return _csv_text(list(zip(*out_columns, strict=True)))

    def _column(self, name: str, values: Sequence[Any], times: _Times) -> list[str]:
        if name in _TIMES:
            return times.format(values)
        if name == "has_attachments":
            return ["true" if v else "false" for v in values]
        if values and not isinstance(values[0], str):
            return [str(v) for v in values]
        if self.masked and name in _CUSTOMER_TEXT:
            keep = self.keep
            return _cells([mask_text(v, keep) for v in values])
        return list(values) if name in _PLAIN else _cells(values)


def _csv_text(rows: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    return buf.getvalue().encode("utf-8")


# -- mails --------------------------------------------------------------------------

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def eml_name(received_s: int, message_id: str) -> str:
    """The name of a mail's .eml file in the zip: when it was received (UTC, to the second)
    and its id — unique, and in the zip's order."""
    at = time.strftime("%Y%m%d-%H%M%S", time.gmtime(received_s))
    return f"{at}-{_UNSAFE_NAME.sub('', message_id)}.eml"


_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)


def mbox_entry(raw: bytes, envelope_from: str, received: datetime) -> bytes:
    """One mail in mboxrd form: a From_ line (the envelope sender and the time it was
    received, UTC), the mail's bytes with every line starting with `>*From ` quoted by one
    more `>` (reversible), a line break at its end, and an empty line."""
    sender = envelope_from.strip() or "MAILER-DAEMON"
    sender = re.sub(r"\s", "", sender)
    stamp = received.strftime("%a %b %d %H:%M:%S %Y")
    body = _FROM_LINE.sub(rb">\1", raw)
    if not body.endswith(b"\n"):
        body += b"\n"
    return f"From {sender} {stamp}\n".encode("ascii", "replace") + body + b"\n"
