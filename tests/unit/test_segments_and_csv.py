"""Segments' conditions checked and compiled to parameterised SQL (issue 20, OUT-6), and a
CSV file of contacts decoded, its header mapped and each line checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from services.runtime.errors import InvalidArgument
from services.tickets import contact_csv, segment_rules
from services.tickets.outreach_rules import FieldDef, clean_fields

DEFS = [FieldDef("plan", "プラン", "text"), FieldDef("spend", "購入額", "number"),
        FieldDef("renewal", "更新日", "date")]  # fmt: skip
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _compile(match: str, *conditions: tuple[str, str, Any]) -> tuple[str, list[Any]]:
    raw = [(f, o, json.dumps(v)) for f, o, v in conditions]
    query = segment_rules.check(match, raw, DEFS)
    args: list[Any] = ["tenant"]
    return segment_rules.compile_where(query, args, DEFS, NOW), args[1:]


def test_values_are_arguments_never_pasted_into_the_statement() -> None:
    evil = "x'); DROP TABLE contacts; --"
    where, args = _compile(
        "any",
        ("name", "contains", evil),
        ("custom.plan", "eq", evil),
        ("label", "has", evil),
        ("address", "eq", evil),
    )
    assert "DROP" not in where and "x'" not in where
    assert args == [f"%{evil}%", {"plan": evil}, evil, evil.lower()]
    assert where.count(" OR ") == 3 and "$2" in where and "$5" in where


def test_like_patterns_escape_wildcards() -> None:
    _, args = _compile("all", ("name", "starts_with", "50%_off\\"))
    assert args == ["50\\%\\_off\\\\%"]


def test_numbers_dates_and_days() -> None:
    where, args = _compile(
        "all",
        ("custom.spend", "gte", 1000),
        ("custom.renewal", "within_days", 30),
        ("created_at", "eq", "2026-01-31"),
        ("last_contact_at", "not_within_days", 7),
    )
    assert Decimal(1000) in args and "::numeric" in where
    assert "2026-11-07" in args  # today less 30 days, as a date
    assert datetime(2026, 1, 31, tzinfo=UTC) in args and datetime(2026, 2, 1, tzinfo=UTC) in args
    assert datetime(2026, 11, 30, 12, 0, tzinfo=UTC) in args
    assert "NOT EXISTS (SELECT 1 FROM contact_activity" in where


def test_no_condition_is_everyone() -> None:
    assert _compile("all") == ("TRUE", [])


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        (("shoe", "eq", "x"), "conditions[0].field"),
        (("custom.Shoe", "eq", "x"), "conditions[0].field"),
        (("name", "gt", "x"), "conditions[0].op"),
        (("label", "eq", "x"), "conditions[0].op"),
        (("custom.spend", "contains", "1"), "conditions[0].op"),
        (("custom.spend", "gt", "lots"), "conditions[0].value"),
        (("custom.spend", "gt", True), "conditions[0].value"),
        (("custom.renewal", "lt", "2026-02-30"), "conditions[0].value"),
        (("created_at", "gt", "2026-01-01T00:00:00"), "conditions[0].value"),  # no offset
        (("created_at", "within_days", 1.5), "conditions[0].value"),
        (("last_contact_at", "within_days", 100_000), "conditions[0].value"),
        (("list", "has", "not-a-uuid"), "conditions[0].value"),
        (("name", "eq", 3), "conditions[0].value"),
        (("name", "eq", "x" * 501), "conditions[0].value"),
    ],
)
def test_a_bad_condition_names_its_part(condition: tuple[str, str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        _compile("all", condition)
    assert err.value.field == field


def test_match_and_count_of_conditions_are_checked() -> None:
    with pytest.raises(InvalidArgument) as err:
        segment_rules.check("some", [], DEFS)
    assert err.value.field == "match"
    with pytest.raises(InvalidArgument) as err:
        segment_rules.check("all", [("name", "exists", "")] * 21, DEFS)
    assert err.value.field == "conditions"


def test_field_definitions_are_checked() -> None:
    assert clean_fields([FieldDef("plan", " ", "text")]) == [FieldDef("plan", "plan", "text")]
    for bad, field in [
        ([FieldDef("Plan", "", "text")], "fields[0].key"),
        ([FieldDef("plan", "", "text"), FieldDef("plan", "", "date")], "fields[1].key"),
        ([FieldDef("plan", "", "money")], "fields[0].type"),
        ([FieldDef(f"f{i}", "", "text") for i in range(51)], "fields"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            clean_fields(bad)
        assert err.value.field == field


# -- CSV --------------------------------------------------------------------------------


def test_decoding_utf8_bom_and_cp932() -> None:
    text = "メールアドレス,名前\r\n"
    assert contact_csv.decode(text.encode("utf-8")) == text
    assert contact_csv.decode(b"\xef\xbb\xbf" + text.encode()) == text
    assert contact_csv.decode(text.encode("cp932")) == text
    with pytest.raises(InvalidArgument) as err:
        contact_csv.decode(b"\x00\xff\xfe\x00")
    assert err.value.field == "csv"


def test_header_maps_aliases_keys_and_labels() -> None:
    cols = contact_csv.columns(["E-Mail", "氏名", "プラン", "spend", "Shoe size", ""], DEFS)
    assert cols.base == {"address": 0, "name": 1}
    assert cols.custom == {"plan": 2, "spend": 3}
    assert cols.ignored == ["Shoe size"]
    for header in (["name"], ["email", "address"]):
        with pytest.raises(InvalidArgument):
            contact_csv.columns(header, DEFS)


def _lines(text: str) -> list[contact_csv.Line]:
    return contact_csv.parse(text).lines


def test_lines_keep_their_numbers_across_quoted_newlines_and_blank_lines() -> None:
    parsed = contact_csv.parse('address,name\r\na@x.jp,"two\nlines"\r\n\r\nb@x.jp,B\r\n')
    assert parsed.header == ["address", "name"]
    assert [(ln.number, ln.cells[0]) for ln in parsed.lines] == [(2, "a@x.jp"), (5, "b@x.jp")]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("not-an-address,,,,", "not a mail address"),
        (",Bob,,,", "must not be empty"),
        ("a@example.com,,Mars/Base,,", "not a known time zone"),
        ("a@example.com,,,de,", "not ja, en or empty"),
        ("a@example.com,,,,lots", "not a number"),
        ("a@example.com," + "x" * 201 + ",,,", "longer than 200"),
    ],
)
def test_a_bad_line_says_why(row: str, reason: str) -> None:
    cols = contact_csv.columns(["address", "name", "time_zone", "language", "spend"], DEFS)
    (line,) = _lines(f"h\n{row}\n")
    with pytest.raises(InvalidArgument, match=reason):
        contact_csv.member(line, cols, DEFS)


def test_a_good_line_is_normalised_and_empty_cells_leave_fields_alone() -> None:
    cols = contact_csv.columns(["address", "name", "labels", "spend", "更新日"], DEFS)
    (line,) = _lines('h\n Taro@Example.JP ,,vip; fair ;,"１,２００",2026/4/1\n')
    edit = contact_csv.member(line, cols, DEFS)
    assert edit.address == "taro@example.jp" and edit.name is None
    assert edit.labels == ["vip", "fair"] and edit.time_zone is None
    assert edit.custom == {"spend": "1200", "renewal": "2026-04-01"}
