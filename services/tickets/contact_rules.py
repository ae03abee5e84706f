"""Contacts' rules (TKT-9) and the timeline cursor (TKT-8), free of I/O.

Validation and normalisation of what operators type (names, mail addresses, phone numbers,
custom fields), the key a sender's address is filed under, what a merge keeps, and the
search pattern of the contact list.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from enum import IntEnum

from services.runtime.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.runtime.masking import mask
from services.runtime.priority_score import CUSTOMER_VALUE_MAX

from .domain import clean_text

NAME_MAX = 200  # name and company
MEMO_MAX = 20_000
ADDRESSES_MAX = 100  # addresses of one contact
ADDRESS_MAX = 254  # characters of one address (RFC 5321's path limit less the brackets)
LOCAL_MAX = 64
DOMAIN_MAX = 253
PHONES_MAX = 20
PHONE_MAX = 30
CUSTOM_KEYS_MAX = 50
CUSTOM_KEY_MAX = 100
CUSTOM_VALUE_MAX = 2_000
QUERY_MAX = 200

# RFC 5322 atext, plus any non-ASCII character (RFC 6532, internationalised local parts).
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+$")
_PHONE = re.compile(r"^[0-9 +\-()]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def _has_control(value: str) -> bool:
    return bool(_CONTROL.search(value))


def clean_line(value: str, field: str, limit: int = NAME_MAX) -> str:
    """A one-line text (name, company): whitespace runs become one space; may be empty."""
    if "\x00" in value:
        raise InvalidArgument(f"{field} contains a NUL character", field=field)
    text = " ".join(value.split())
    if _has_control(text):
        raise InvalidArgument(f"{field} contains control characters", field=field)
    if len(text) > limit:
        raise InvalidArgument(f"{field} is longer than {limit} characters", field=field)
    return text


def clean_memo(value: str) -> str:
    if "\x00" in value:
        raise InvalidArgument("memo contains a NUL character", field="memo")
    return clean_text(value, "memo", MEMO_MAX, required=False)


def _valid_domain(domain: str) -> bool:
    if not domain or len(domain) > DOMAIN_MAX:
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not label or len(label) > 63 or label[0] == "-" or label[-1] == "-":
            return False
        if not all(c == "-" or c.isalnum() for c in label):
            return False
    return not labels[-1].isdigit()


def clean_address(value: str, field: str = "addresses") -> str:
    """A mail address an operator typed, strictly checked and lower-cased: `local@domain`
    with a dot-atom local part, a domain of at least two labels (letters, digits, hyphens),
    no display name, no comments, no quoted strings, no whitespace or control characters."""
    if any(c in value for c in "\r\n\x00"):
        raise InvalidArgument(
            f"{field}: an address must not contain CR, LF or NUL characters", field=field
        )
    address = value.strip()
    shown = address[:80]
    if not address:
        raise InvalidArgument(f"{field}: an address must not be empty", field=field)
    if len(address) > ADDRESS_MAX:
        raise InvalidArgument(
            f"{field}: {shown!r} is longer than {ADDRESS_MAX} characters", field=field
        )
    bad = InvalidArgument(f"{field}: {shown!r} is not a mail address", field=field)
    if _has_control(address) or any(c.isspace() for c in address):
        raise bad
    local, at, domain = address.rpartition("@")
    if not at or not local or len(local) > LOCAL_MAX:
        raise bad
    if any(not part or not _ATEXT.match(part) for part in local.split(".")):
        raise bad
    if not _valid_domain(domain):
        raise bad
    # What the standard library reads from it must be the address itself: nothing was
    # taken as a display name, a comment or a route.
    if parseaddr(address) != ("", address):
        raise bad
    return address.lower()


def clean_addresses(values: Iterable[str]) -> list[str]:
    """Every address checked and lower-cased, duplicates dropped, order kept."""
    out: list[str] = []
    for value in values:
        address = clean_address(value)
        if address not in out:
            out.append(address)
        if len(out) > ADDRESSES_MAX:
            raise InvalidArgument(
                f"a contact has at most {ADDRESSES_MAX} addresses", field="addresses"
            )
    return out


def clean_phone(value: str) -> str:
    """A phone number: digits, spaces, `+`, `-`, `(`, `)`; at most 30 characters. Full-width
    digits and signs (as Japanese input methods type them) are made half-width (NFKC)."""
    if _has_control(value):
        raise InvalidArgument("phones: a number contains control characters", field="phones")
    phone = " ".join(unicodedata.normalize("NFKC", value).split())
    if not phone:
        raise InvalidArgument("phones: a number must not be empty", field="phones")
    if len(phone) > PHONE_MAX:
        raise InvalidArgument(
            f"phones: {phone[:40]!r} is longer than {PHONE_MAX} characters", field="phones"
        )
    if not _PHONE.match(phone) or not any(c.isdigit() for c in phone):
        raise InvalidArgument(
            f"phones: {phone!r} may only have digits, spaces and + - ( )", field="phones"
        )
    return phone


def clean_phones(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        phone = clean_phone(value)
        if phone not in out:
            out.append(phone)
        if len(out) > PHONES_MAX:
            raise InvalidArgument(f"a contact has at most {PHONES_MAX} phones", field="phones")
    return out


def clean_custom(values: Mapping[str, str]) -> dict[str, str]:
    """Custom fields: at most 50, keys of 1–100 characters on one line (trimmed), values of
    at most 2,000 characters without NUL."""
    if len(values) > CUSTOM_KEYS_MAX:
        raise InvalidArgument(
            f"a contact has at most {CUSTOM_KEYS_MAX} custom fields", field="custom"
        )
    out: dict[str, str] = {}
    for raw_key, value in values.items():
        key = " ".join(raw_key.split())
        if not key:
            raise InvalidArgument("custom: a key must not be empty", field="custom")
        if len(key) > CUSTOM_KEY_MAX:
            raise InvalidArgument(
                f"custom: the key {key[:40]!r}… is longer than {CUSTOM_KEY_MAX} characters",
                field="custom",
            )
        if _has_control(raw_key):
            raise InvalidArgument(
                f"custom: the key {key!r} contains control characters", field="custom"
            )
        if "\x00" in value:
            raise InvalidArgument(f"custom: {key!r} contains a NUL character", field="custom")
        text = value.replace("\r\n", "\n").strip()
        if len(text) > CUSTOM_VALUE_MAX:
            raise InvalidArgument(
                f"custom: {key!r} is longer than {CUSTOM_VALUE_MAX} characters", field="custom"
            )
        if key in out:
            raise InvalidArgument(f"custom: the key {key!r} is given twice", field="custom")
        out[key] = text
    return out


@dataclass(frozen=True)
class ContactEdit:
    """An operator's change to a contact; None leaves a field as it is. Built by `validated`
    only, so every value in it has been checked."""

    name: str | None = None
    company: str | None = None
    memo: str | None = None
    addresses: list[str] | None = None
    phones: list[str] | None = None
    custom: dict[str, str] | None = None
    # issue 18: the typed fields rules read; `set_customer_value` with None clears it
    set_customer_value: bool = False
    customer_value: int | None = None
    vip: bool | None = None
    # issue 20 (OUT-6)
    labels: list[str] | None = None
    time_zone: str | None = None
    language: str | None = None

    @classmethod
    def validated(
        cls,
        *,
        name: str | None = None,
        company: str | None = None,
        memo: str | None = None,
        addresses: Iterable[str] | None = None,
        phones: Iterable[str] | None = None,
        custom: Mapping[str, str] | None = None,
        set_customer_value: bool = False,
        customer_value: int | None = None,
        vip: bool | None = None,
        labels: Iterable[str] | None = None,
        time_zone: str | None = None,
        language: str | None = None,
    ) -> ContactEdit:
        from .outreach_rules import clean_labels, clean_language, clean_time_zone

        return cls(
            name=None if name is None else clean_line(name, "name"),
            company=None if company is None else clean_line(company, "company"),
            memo=None if memo is None else clean_memo(memo),
            addresses=None if addresses is None else clean_addresses(addresses),
            phones=None if phones is None else clean_phones(phones),
            custom=None if custom is None else clean_custom(custom),
            set_customer_value=set_customer_value,
            customer_value=(clean_customer_value(customer_value) if set_customer_value else None),
            vip=vip,
            labels=None if labels is None else clean_labels(labels),
            time_zone=None if time_zone is None else clean_time_zone(time_zone),
            language=None if language is None else clean_language(language),
        )

    def changes(self, current: Mapping[str, object], addresses: list[str]) -> dict[str, object]:
        """The fields this edit changes on a contact (`current` a row, `addresses` its
        addresses): only those whose value differs."""
        out: dict[str, object] = {}
        for field in ("name", "company", "memo", "phones", "custom", "labels", "time_zone"):
            new = getattr(self, field)
            if new is None:
                continue
            old = current[field]
            if field in ("phones", "labels"):
                old = list(old)  # type: ignore[call-overload]
            if new != old:
                out[field] = new
        if self.set_customer_value and self.customer_value != current["customer_value"]:
            out["customer_value"] = self.customer_value
        if self.language is not None and self.language != current["language"]:
            out["language"] = self.language
        if self.vip is not None and self.vip != current["vip"]:
            out["vip"] = self.vip
        if self.addresses is not None and sorted(self.addresses) != sorted(addresses):
            out["addresses"] = self.addresses
        return out


def clean_customer_value(value: int | None) -> int | None:
    """A contact's customer value: a whole number 0 … 1,000,000, or None (none)."""
    if value is not None and not 0 <= value <= CUSTOMER_VALUE_MAX:
        raise InvalidArgument(
            f"a whole number 0 to {CUSTOMER_VALUE_MAX}, or null", field="customer_value"
        )
    return value


def masked_edit(field: str, sent: list[str] | None, current: Iterable[str]) -> None:
    """For a caller who sees customers' addresses and phone numbers masked (SEC-6): the
    list they sent for `field` ("addresses" or "phones") may only be the current one as
    shown to them, masked as every answer masks it — a form sent back unchanged, which
    then changes nothing. Anything else is PERMISSION_DENIED naming the field, the real
    values included: masks must not replace the real values, adding an address would
    tell whether another contact holds it, and accepting a correct guess of the real
    value (and refusing a wrong one) would confirm it."""
    if sent is None:
        return
    wanted = sorted(" ".join(v.split()) for v in sent if v.strip())
    if wanted == sorted(mask(v, field) for v in current):
        return
    raise PermissionDenied(
        f"you may not change a contact's {field} (needs the permission see_customer_addresses)",
        field=field,
    )


def sender_key(address: str) -> str | None:
    """The key a sender's address is filed under (lower case), or None when the mail gave
    no usable address (empty, no `@`, whitespace or control characters, too long)."""
    key = address.strip().lower()
    if not key or "@" not in key or len(key) > ADDRESS_MAX:
        return None
    if _has_control(key) or any(c.isspace() for c in key):
        return None
    return key


def sender_name(name: str) -> str:
    """A sender's display name as a new contact's name: one line, at most 200 characters."""
    return " ".join("".join(c for c in name if not _CONTROL.match(c)).split())[:NAME_MAX]


@dataclass(frozen=True)
class Merged:
    """What the target of a merge holds afterwards (besides the moved addresses)."""

    name: str
    company: str
    memo: str
    phones: list[str]
    custom: dict[str, str]


def merge(target: Mapping[str, object], source: Mapping[str, object]) -> Merged:
    """Merging `source` into `target`: the target's name, company and memo stay, filled from
    the source only where empty; phones are the target's then the source's new ones; custom
    fields are the union with the target's value winning on the same key. Refused (nothing
    changes) when the result would break a limit of one contact."""

    def text(row: Mapping[str, object], key: str) -> str:
        return str(row[key] or "")

    phones = list(target["phones"])  # type: ignore[call-overload]
    for p in source["phones"]:  # type: ignore[attr-defined]
        if p not in phones:
            phones.append(p)
    if len(phones) > PHONES_MAX:
        raise FailedPrecondition(
            f"the merged contact would have {len(phones)} phones (at most {PHONES_MAX}); "
            "remove some first",
            field="source_contact_id",
        )
    custom = {**dict(source["custom"]), **dict(target["custom"])}  # type: ignore[call-overload]
    if len(custom) > CUSTOM_KEYS_MAX:
        raise FailedPrecondition(
            f"the merged contact would have {len(custom)} custom fields "
            f"(at most {CUSTOM_KEYS_MAX}); remove some first",
            field="source_contact_id",
        )
    return Merged(
        name=text(target, "name") or text(source, "name"),
        company=text(target, "company") or text(source, "company"),
        memo=text(target, "memo") or text(source, "memo"),
        phones=phones,
        custom=custom,
    )


def check_merged_addresses(target_count: int, source_count: int) -> None:
    if target_count + source_count > ADDRESSES_MAX:
        raise FailedPrecondition(
            f"the merged contact would have {target_count + source_count} addresses "
            f"(at most {ADDRESSES_MAX}); remove some first",
            field="source_contact_id",
        )


@dataclass(frozen=True)
class Search:
    """The contact list's query as LIKE patterns: `text` against name, company and — for
    a caller who sees them — addresses (NFKC-normalised, case-insensitive), `digits`
    against phone numbers with everything but digits removed (None when the query is not
    a phone number, or the caller may not see phone numbers).

    `addresses` False (a caller without see_customer_addresses, SEC-6): the query is
    compared only with the name and company with every address and phone number in them
    removed (the contact's `search_masked`), never with an address or a phone number —
    not even the last two digits a masked phone number shows — so no part of what is
    masked can be found by trying it."""

    text: str
    digits: str | None
    addresses: bool = True


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search(query: str, *, addresses: bool = True) -> Search | None:
    """None for an empty query (everything); `addresses`: whether the caller may see (and
    so search) customers' addresses and phone numbers."""
    if "\x00" in query:
        raise InvalidArgument("query contains a NUL character", field="query")
    q = " ".join(unicodedata.normalize("NFKC", query).split())
    if not q:
        return None
    if len(q) > QUERY_MAX:
        raise InvalidArgument(f"query is longer than {QUERY_MAX} characters", field="query")
    digits = "".join(c for c in q if c.isdigit())
    phone_like = addresses and bool(_PHONE.match(q)) and len(digits) >= 3
    return Search(
        text=f"%{_like_escape(q.casefold())}%",
        digits=f"%{digits}%" if phone_like else None,
        addresses=addresses,
    )


class EntryKind(IntEnum):
    """Timeline entries at the same instant sort by kind: newest first means a comment,
    then a message, then the ticket's opening (its first mail shares its time)."""

    TICKET_OPENED = 0
    MESSAGE = 1
    COMMENT = 2


@dataclass(frozen=True)
class TimelineCursor:
    """Where a contact timeline page ended: the last entry's (at, kind, id)."""

    at: datetime
    kind: EntryKind
    id: uuid.UUID

    def encode(self) -> str:
        raw = f"t1|{self.at.isoformat()}|{int(self.kind)}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> TimelineCursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            tag, when, kind, ident = raw.split("|", 3)
            at = datetime.fromisoformat(when)
            if tag != "t1" or at.tzinfo is None:
                raise ValueError(tag)
            return cls(at, EntryKind(int(kind)), uuid.UUID(ident))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidArgument("cursor is not one this API gave out", field="cursor") from None

    def before(self, at: datetime, kind: EntryKind, id: uuid.UUID) -> bool:
        """Whether an entry comes after this cursor in newest-first order."""
        return (at, int(kind), id) < (self.at, int(self.kind), self.id)
