"""Outreach's rules of contacts (issue 20, OUT-6), free of I/O: the tenant's custom-field
definitions, labels, time zones, languages, and a contact to add to a list (by the API or
a CSV line), each value checked and normalised, each refusal naming its field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from zoneinfo import available_timezones

from services.runtime.errors import InvalidArgument

from .contact_rules import CUSTOM_VALUE_MAX, NAME_MAX, clean_address, clean_custom, clean_line

FIELDS_MAX = 50
FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FIELD_TYPES = ("text", "number", "date")
FIELD_LABEL_MAX = 100
LABELS_MAX = 50
LABEL_MAX = 100
LANGUAGES = ("", "ja", "en")
LIST_NAME_MAX = 200
DESCRIPTION_MAX = 2_000
MEMBERS_MAX = 1_000  # contacts in one AddListMembers call
NUMBER_MAX_DIGITS = 30
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


@dataclass(frozen=True)
class FieldDef:
    key: str
    label: str
    type: str


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def clean_time_zone(value: str, field: str = "time_zone") -> str:
    """An IANA time zone name, or "" (the tenant's)."""
    zone = value.strip()
    if zone and zone not in _zones():
        raise InvalidArgument(f"{field}: {zone[:64]!r} is not a known time zone", field=field)
    return zone


def clean_language(value: str, field: str = "language") -> str:
    lang = value.strip().lower()
    if lang not in LANGUAGES:
        raise InvalidArgument(f"{field}: {lang[:20]!r} is not ja, en or empty", field=field)
    return lang


def clean_labels(values: Iterable[str], field: str = "labels") -> list[str]:
    """Labels: one line each, 1–100 characters, at most 50; duplicates dropped, order kept."""
    out: list[str] = []
    for value in values:
        label = clean_line(value, field, LABEL_MAX)
        if not label:
            raise InvalidArgument(f"{field}: a label must not be empty", field=field)
        if label not in out:
            out.append(label)
    if len(out) > LABELS_MAX:
        raise InvalidArgument(f"{field}: at most {LABELS_MAX} labels", field=field)
    return out


def clean_fields(fields: Sequence[FieldDef]) -> list[FieldDef]:
    """The tenant's custom-field definitions as a whole."""
    if len(fields) > FIELDS_MAX:
        raise InvalidArgument(f"at most {FIELDS_MAX} custom fields", field="fields")
    out: list[FieldDef] = []
    keys: set[str] = set()
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        if not FIELD_KEY.match(f.key):
            raise InvalidArgument(
                f"{where}.key must be a lower-case letter, then up to 39 letters, digits or _",
                field=f"{where}.key",
            )
        if f.key in keys:
            raise InvalidArgument(f"{where}.key {f.key!r} is given twice", field=f"{where}.key")
        if f.type not in FIELD_TYPES:
            raise InvalidArgument(
                f"{where}.type must be text, number or date", field=f"{where}.type"
            )
        label = clean_line(f.label, f"{where}.label", FIELD_LABEL_MAX) or f.key
        keys.add(f.key)
        out.append(FieldDef(f.key, label, f.type))
    return out


def clean_number(value: str, field: str) -> str:
    """A decimal number as text (full-width digits and thousands commas accepted)."""
    text = value.strip().translate(_FULL_WIDTH).replace(",", "")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise InvalidArgument(f"{field}: {value[:40]!r} is not a number", field=field) from None
    if not number.is_finite() or len(number.as_tuple().digits) > NUMBER_MAX_DIGITS:
        raise InvalidArgument(f"{field}: {value[:40]!r} is not a number", field=field)
    return format(number, "f")


def clean_date(value: str, field: str) -> str:
    """A date as YYYY-MM-DD (YYYY/MM/DD and one-digit months and days accepted)."""
    m = _DATE.match(value.strip().translate(_FULL_WIDTH))
    try:
        if m is None:
            raise ValueError
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        raise InvalidArgument(
            f"{field}: {value[:40]!r} is not a date (YYYY-MM-DD)", field=field
        ) from None


_FULL_WIDTH = str.maketrans("０１２３４５６７８９．，－／＋", "0123456789.,-/+")


def clean_typed(values: Mapping[str, str], defs: Sequence[FieldDef]) -> dict[str, str]:
    """Custom values checked by their field's type (a key without definition is text);
    an empty value removes the field from the contact."""
    types = {d.key: d.type for d in defs}
    out = clean_custom(values)
    for key, value in out.items():
        where = f"custom.{key}"
        if len(value) > CUSTOM_VALUE_MAX:
            raise InvalidArgument(f"{where} is too long", field=where)
        if not value:
            continue
        if types.get(key) == "number":
            out[key] = clean_number(value, where)
        elif types.get(key) == "date":
            out[key] = clean_date(value, where)
    return out


@dataclass(frozen=True)
class MemberEdit:
    """A contact to put in a list, found or created by `address`; None leaves a field as
    the contact has it. `custom` is merged into the contact's ("" removes a key)."""

    address: str
    name: str | None = None
    time_zone: str | None = None
    language: str | None = None
    labels: list[str] | None = None
    custom: dict[str, str] = field(default_factory=dict)


def clean_member(
    *,
    address: str,
    name: str | None,
    time_zone: str | None,
    language: str | None,
    labels: Sequence[str] | None,
    custom: Mapping[str, str],
    defs: Sequence[FieldDef],
) -> MemberEdit:
    return MemberEdit(
        address=clean_address(address, "address"),
        name=None if name is None else clean_line(name, "name", NAME_MAX),
        time_zone=None if time_zone is None else clean_time_zone(time_zone),
        language=None if language is None else clean_language(language),
        labels=None if labels is None else clean_labels(labels),
        custom=clean_typed(custom, defs),
    )


def clean_list_name(value: str) -> str:
    name = clean_line(value, "name", LIST_NAME_MAX)
    if not name:
        raise InvalidArgument("name must not be empty", field="name")
    return name


def clean_description(value: str) -> str:
    text = value.replace("\r\n", "\n").replace("\x00", "").strip()
    if len(text) > DESCRIPTION_MAX:
        raise InvalidArgument(
            f"description is longer than {DESCRIPTION_MAX} characters", field="description"
        )
    return text
