"""Segments (issue 20, OUT-6), free of I/O: a segment's conditions checked, and compiled to
a parameterised SQL condition over contact `c` — every value an SQL argument, never text
pasted into the statement. Field keys are pasted only after matching a fixed set.

Fields: address and domain (of the contact's mailing address, its first), name, company,
time_zone, language, label, list (value: a list id), last_contact_at, created_at,
custom.<key> (typed by the tenant's field definitions; a key without one is text).
Ops: text eq ne contains starts_with exists not_exists; number/date eq gt gte lt lte;
dates within_days not_within_days (value: days); label/list has not_has."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from services.runtime.errors import InvalidArgument

from .outreach_rules import FIELD_KEY, FieldDef

CONDITIONS_MAX = 20
VALUE_MAX = 500
DAYS_MAX = 36_500
NAME_MAX = 200

TEXT_OPS = ("eq", "ne", "contains", "starts_with", "exists", "not_exists")
ORDER_OPS = ("eq", "gt", "gte", "lt", "lte")
DATE_OPS = (*ORDER_OPS, "within_days", "not_within_days")
SET_OPS = ("has", "not_has")
_TEXT_COLUMNS = {
    "address": "c.address",
    "domain": "split_part(c.address, '@', 2)",
    "name": "c.name",
    "company": "c.company",
    "time_zone": "c.time_zone",
    "language": "c.language",
}
_LOWER = ("address", "domain")
_CMP = {"eq": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_ISO_DATE = r"'^[0-9]{4}-[0-9]{2}-[0-9]{2}$'"


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Query:
    match: str
    conditions: tuple[Condition, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"field": c.field, "op": c.op, "value": c.value} for c in self.conditions]


def _bad(i: int, part: str, message: str) -> InvalidArgument:
    return InvalidArgument(f"conditions[{i}].{part}: {message}", field=f"conditions[{i}].{part}")


def _kind(i: int, name: str, defs: Sequence[FieldDef]) -> str:
    if name in _TEXT_COLUMNS:
        return "text"
    if name in ("created_at", "last_contact_at"):
        return "date"
    if name in ("label", "list"):
        return "set"
    if name.startswith("custom."):
        key = name[len("custom.") :]
        if not FIELD_KEY.match(key):
            raise _bad(i, "field", f"{name[:60]!r} is not a custom field key")
        found = [d.type for d in defs if d.key == key]
        return "custom_" + (found[0] if found else "text")
    raise _bad(i, "field", f"{name[:60]!r} is not a field segments can use")


def _days(i: int, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(i, "value", "must be a number of days")
    try:
        days = float(value)
    except ValueError:
        raise _bad(i, "value", "must be a number of days") from None
    if not math.isfinite(days) or not days.is_integer() or not 0 <= days <= DAYS_MAX:
        raise _bad(i, "value", f"must be a whole number of days from 0 to {DAYS_MAX}")
    return int(days)


def _text(i: int, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(i, "value", "must be text")
    if len(value) > VALUE_MAX or "\x00" in value:
        raise _bad(i, "value", f"must be at most {VALUE_MAX} characters of text")
    return value


def _number(i: int, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(i, "value", "must be a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _bad(i, "value", "must be a number") from None
    if not number.is_finite():
        raise _bad(i, "value", "must be a number")
    return format(number, "f")


def _moment(i: int, value: Any) -> str:
    """A date (YYYY-MM-DD) or an ISO timestamp with its offset, as given (checked)."""
    if not isinstance(value, str):
        raise _bad(i, "value", "must be a date (YYYY-MM-DD) or a time (ISO 8601)")
    try:
        if len(value) == 10:
            date.fromisoformat(value)
        elif datetime.fromisoformat(value).tzinfo is None:
            raise ValueError
    except ValueError:
        raise _bad(i, "value", "must be a date (YYYY-MM-DD) or a time with offset") from None
    return value


def check(match: str, raw: Sequence[tuple[str, str, str]], defs: Sequence[FieldDef]) -> Query:
    """Conditions as (field, op, value as JSON), checked: INVALID_ARGUMENT naming the
    first bad `conditions[i].field|op|value`."""
    if match not in ("all", "any"):
        raise InvalidArgument("match must be all or any", field="match")
    if len(raw) > CONDITIONS_MAX:
        raise InvalidArgument(f"at most {CONDITIONS_MAX} conditions", field="conditions")
    out: list[Condition] = []
    for i, (name, op, value_json) in enumerate(raw):
        kind = _kind(i, name, defs)
        ops = {
            "text": TEXT_OPS,
            "custom_text": TEXT_OPS,
            "date": (*DATE_OPS, "exists", "not_exists") if name == "last_contact_at" else DATE_OPS,
            "custom_date": (*DATE_OPS, "exists", "not_exists"),
            "custom_number": (*ORDER_OPS, "exists", "not_exists"),
            "set": SET_OPS,
        }[kind]
        if op not in ops:
            raise _bad(i, "op", f"{op[:30]!r} is not one of {', '.join(ops)} for {name}")
        try:
            value = json.loads(value_json) if value_json else None
        except ValueError:
            raise _bad(i, "value", "is not JSON") from None
        if op in ("exists", "not_exists"):
            value = None
        elif op in ("within_days", "not_within_days"):
            value = _days(i, value)
        elif kind == "custom_number":
            value = _number(i, value)
        elif kind in ("date", "custom_date"):
            value = _moment(i, value)
            if kind == "custom_date" and len(value) != 10:
                raise _bad(i, "value", "must be a date (YYYY-MM-DD)")
        elif name == "list":
            try:
                value = str(uuid.UUID(_text(i, value)))
            except ValueError:
                raise _bad(i, "value", "must be a list id") from None
        else:
            value = _text(i, value)
            if name in _LOWER:
                value = value.strip().lower()
        out.append(Condition(name, op, value))
    return Query(match, tuple(out))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Args:
    def __init__(self, args: list[Any]) -> None:
        self.args = args

    def __call__(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def _moment_value(value: str, op: str) -> datetime:
    if len(value) == 10:
        day = datetime.combine(date.fromisoformat(value), time(), UTC)
        # a date is its whole day: after it is from the next day on
        return day + timedelta(days=1) if op in ("gt", "lte") else day
    return datetime.fromisoformat(value)


def _compile_one(c: Condition, arg: _Args, defs: Sequence[FieldDef], now: datetime) -> str:
    if c.field in _TEXT_COLUMNS:
        return _text_sql(_TEXT_COLUMNS[c.field], c, arg, lower=c.field in _LOWER)
    if c.field == "label":
        sql = f"c.labels @> ARRAY[{arg(c.value)}]::text[]"
        return sql if c.op == "has" else f"NOT ({sql})"
    if c.field == "list":
        sql = (
            "EXISTS (SELECT 1 FROM contact_list_members lm WHERE lm.tenant_id = c.tenant_id "
            f"AND lm.list_id = {arg(uuid.UUID(c.value))}::uuid AND lm.contact_id = c.id)"
        )
        return sql if c.op == "has" else f"NOT {sql}"
    if c.field == "created_at":
        return _moment_sql("c.created_at", c, arg, now)
    if c.field == "last_contact_at":
        return _activity_sql(c, arg, now)
    key = c.field[len("custom.") :]
    kind = next((d.type for d in defs if d.key == key), "text")
    if c.op in ("exists", "not_exists"):
        sql = f"c.custom ? {arg(key)}"
        return sql if c.op == "exists" else f"NOT ({sql})"
    if kind == "text":
        if c.op in ("eq", "ne"):
            sql = f"c.custom @> {arg({key: c.value})}::jsonb"
            return sql if c.op == "eq" else f"NOT ({sql})"
        return _text_sql(f"(c.custom->>{arg(key)})", c, arg, lower=False)
    if kind == "number":
        return _number_sql(key, [c], arg)
    expr = f"(CASE WHEN c.custom->>{arg(key)} ~ {_ISO_DATE} THEN c.custom->>{arg(key)} END)"
    if c.op in ("within_days", "not_within_days"):
        since = (now.date() - timedelta(days=c.value)).isoformat()
        return f"{expr} {'>=' if c.op == 'within_days' else '<'} {arg(since)}::text"
    return f"{expr} {_CMP[c.op]} {arg(c.value)}::text"


def _number_sql(key: str, conditions: Sequence[Condition], arg: _Args) -> str:
    """Comparisons of one number field, all to hold: a range of contact_numbers (the
    numbers among custom values, kept by a trigger) probed for the contact."""
    ranges = " AND ".join(
        f"n.value {_CMP[c.op]} {arg(Decimal(c.value))}::numeric" for c in conditions
    )
    return (
        "EXISTS (SELECT 1 FROM contact_numbers n WHERE n.tenant_id = c.tenant_id "
        f"AND n.contact_id = c.id AND n.key = {arg(key)}::text AND {ranges})"
    )


def _text_sql(expr: str, c: Condition, arg: _Args, *, lower: bool) -> str:
    if c.op == "exists":
        return f"coalesce({expr}, '') <> ''"
    if c.op == "not_exists":
        return f"coalesce({expr}, '') = ''"
    if c.op == "eq":
        return f"{expr} = {arg(c.value)}::text"
    if c.op == "ne":
        return f"coalesce({expr}, '') <> {arg(c.value)}::text"
    pattern = _like(c.value) + "%"
    if c.op == "contains":
        pattern = "%" + pattern
    return f"{expr} {'LIKE' if lower else 'ILIKE'} {arg(pattern)}::text"


def _moment_sql(expr: str, c: Condition, arg: _Args, now: datetime) -> str:
    if c.op in ("within_days", "not_within_days"):
        since = now - timedelta(days=c.value)
        return f"{expr} {'>=' if c.op == 'within_days' else '<'} {arg(since)}::timestamptz"
    if c.op == "eq" and len(c.value) == 10:
        day = _moment_value(c.value, "gte")
        return (
            f"({expr} >= {arg(day)}::timestamptz "
            f"AND {expr} < {arg(day + timedelta(days=1))}::timestamptz)"
        )
    op = {"gt": ">=", "lte": "<"}.get(c.op, _CMP[c.op]) if len(c.value) == 10 else _CMP[c.op]
    return f"{expr} {op} {arg(_moment_value(c.value, c.op))}::timestamptz"


def _activity_sql(c: Condition, arg: _Args, now: datetime) -> str:
    """last_contact_at, kept in contact_activity; a contact never contacted has none (it is
    in no range, and is "not within" any number of days)."""
    probe = (
        "EXISTS (SELECT 1 FROM contact_activity ca WHERE ca.tenant_id = c.tenant_id "
        "AND ca.contact_id = c.id{})"
    )
    if c.op == "exists":
        return probe.format("")
    if c.op == "not_exists":
        return "NOT " + probe.format("")
    if c.op == "not_within_days":
        within = Condition(c.field, "within_days", c.value)
        return "NOT " + probe.format(" AND " + _moment_sql("ca.last_contact_at", within, arg, now))
    return probe.format(" AND " + _moment_sql("ca.last_contact_at", c, arg, now))


def compile_where(query: Query, args: list[Any], defs: Sequence[FieldDef], now: datetime) -> str:
    """The query as one SQL condition over contact `c`; its values appended to `args`
    (numbered after those already there)."""
    arg = _Args(args)
    numbers = {d.key for d in defs if d.type == "number"}
    ranges: dict[str, list[Condition]] = {}
    rest: list[Condition] = []
    for c in query.conditions:
        key = c.field[len("custom.") :] if c.field.startswith("custom.") else ""
        if query.match == "all" and key in numbers and c.op in _CMP:
            ranges.setdefault(key, []).append(c)  # one probe per field: its whole range
        else:
            rest.append(c)
    parts = [f"({_number_sql(key, cs, arg)})" for key, cs in ranges.items()]
    parts += [f"({_compile_one(c, arg, defs, now)})" for c in rest]
    if not parts:
        return "TRUE"
    return f" {'AND' if query.match == 'all' else 'OR'} ".join(parts)


def clean_name(value: str) -> str:
    name = " ".join(value.split())
    if not name:
        raise InvalidArgument("name must not be empty", field="name")
    if len(name) > NAME_MAX or "\x00" in name:
        raise InvalidArgument(f"name is longer than {NAME_MAX} characters", field="name")
    return name
