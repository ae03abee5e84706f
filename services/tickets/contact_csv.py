"""A CSV file of contacts for a list (issue 20, OUT-6), free of I/O: decoded (UTF-8 with
or without BOM, else CP932 — Excel's "CSV" in Japan), its header row mapped to contact
fields, and each line checked into a `MemberEdit` or an error naming the line."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass

from services.runtime.errors import InvalidArgument

from .outreach_rules import FieldDef, MemberEdit, clean_member

MAX_BYTES = 20 * 1024 * 1024
FIELD_MAX = 100_000  # characters of one cell (csv's own limit is 131,072)
BASE_COLUMNS: dict[str, tuple[str, ...]] = {
    "address": ("address", "email", "e-mail", "mail", "メールアドレス", "メール"),
    "name": ("name", "名前", "氏名"),
    "time_zone": ("time_zone", "timezone", "タイムゾーン"),
    "language": ("language", "言語"),
    "labels": ("labels", "label", "ラベル"),
}
LABEL_SEPARATOR = ";"


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (a BOM dropped), else CP932; INVALID_ARGUMENT naming `csv`
    when it is neither."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "cp932"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text
    raise InvalidArgument("the file is not text in UTF-8 or Shift_JIS (CP932)", field="csv")


@dataclass(frozen=True)
class Columns:
    """Which column holds what: `base` by contact field, `custom` by custom-field key."""

    base: dict[str, int]
    custom: dict[str, int]
    ignored: list[str]


def _norm(cell: str) -> str:
    return " ".join(cell.split()).lower()


def columns(header: Sequence[str], defs: Sequence[FieldDef]) -> Columns:
    """The header row mapped; INVALID_ARGUMENT naming `csv` without an address column or
    with a column named twice."""
    names = {alias: field for field, aliases in BASE_COLUMNS.items() for alias in aliases}
    by_label = {_norm(d.label): d.key for d in defs}
    keys = {d.key for d in defs}
    base: dict[str, int] = {}
    custom: dict[str, int] = {}
    ignored: list[str] = []
    for i, cell in enumerate(header):
        name = _norm(cell)
        if not name:
            continue
        if name in names:
            target, where = names[name], base
        elif name in keys or name in by_label:
            target, where = (name if name in keys else by_label[name]), custom
        else:
            ignored.append(cell.strip()[:60])
            continue
        if target in where:
            raise InvalidArgument(f"the column {target} is named twice", field="csv")
        where[target] = i
    if "address" not in base:
        raise InvalidArgument(
            "the header row has no address column (address, email or メールアドレス)",
            field="csv",
        )
    return Columns(base, custom, ignored)


@dataclass(frozen=True)
class Line:
    """One record of the file: its first line's number (the header is line 1)."""

    number: int
    cells: list[str]


@dataclass(frozen=True)
class Parsed:
    header: list[str]
    lines: list[Line]
    errors: list[tuple[int, str]]  # lines csv could not read


def parse(text: str) -> Parsed:
    """Every record with its line number; blank lines skipped."""
    previous = csv.field_size_limit()
    csv.field_size_limit(FIELD_MAX)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header: list[str] = []
        lines: list[Line] = []
        errors: list[tuple[int, str]] = []
        start = 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                errors.append((start, f"not a CSV line ({err})"))
                start = reader.line_num + 1
                continue
            if not header and not lines:
                header = cells
            elif any(c.strip() for c in cells):
                lines.append(Line(start, cells))
            start = reader.line_num + 1
        return Parsed(header, lines, errors)
    finally:
        csv.field_size_limit(previous)


def member(line: Line, cols: Columns, defs: Sequence[FieldDef]) -> MemberEdit:
    """The line as a contact to add: an empty cell leaves that field as the contact has
    it. INVALID_ARGUMENT with the reason otherwise."""

    def cell(index: int | None) -> str | None:
        if index is None or index >= len(line.cells):
            return None
        value = line.cells[index].strip()
        return value or None

    labels = cell(cols.base.get("labels"))
    custom = {k: v for k, i in cols.custom.items() if (v := cell(i)) is not None}
    return clean_member(
        address=cell(cols.base["address"]) or "",
        name=cell(cols.base.get("name")),
        time_zone=cell(cols.base.get("time_zone")),
        language=cell(cols.base.get("language")),
        labels=None
        if labels is None
        else [p for p in (x.strip() for x in labels.split(LABEL_SEPARATOR)) if p],
        custom=custom,
        defs=defs,
    )
