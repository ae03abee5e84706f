"""Accounts domain rules, free of I/O: password hashing and rules, session and API
tokens, address and allow-list forms, the login throttle, role checks."""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import string
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.runtime import mail, permissions
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.netaddr import address_allowed as address_allowed  # re-exported

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the login names nobody, so that an unknown login costs the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

MAX_LOGIN = 254
MAX_PASSWORD = 1024
MAX_NAME = 200
MAX_LIST = 100  # addresses, skills, roles, allow-list entries, inboxes of one operator
LANGUAGES = ("ja", "en")
ROLE_NAME_CHARS = set(string.ascii_lowercase + string.digits + "_-")


@dataclass(frozen=True)
class OperatorRecord:
    id: str
    tenant_id: str
    login: str
    display_name: str
    roles: tuple[str, ...]
    password_hash: str
    active: bool
    addresses: tuple[str, ...] = ()
    language: str = "ja"
    time_zone: str = ""
    skills: tuple[str, ...] = ()
    capacity: int = 0
    must_change_password: bool = False
    password_changed_at: datetime | None = None
    ip_allowlist: tuple[str, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    inbox_ids: tuple[str, ...] = ()

    @property
    def all_inboxes(self) -> bool:
        return permissions.ALL_INBOXES in self.permissions


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 10
    min_classes: int = 1  # of: lower case, upper case, digits, anything else
    max_age_days: int = 0  # 0: never expires


# -- passwords -------------------------------------------------------------------------


def hash_password(password: str) -> str:
    if not password:
        raise InvalidArgument("password must not be empty", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument("password is too long", field="password")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def character_classes(password: str) -> int:
    classes = [False, False, False, False]
    for ch in password:
        if ch.islower():
            classes[0] = True
        elif ch.isupper():
            classes[1] = True
        elif ch.isdigit():
            classes[2] = True
        else:
            classes[3] = True
    return sum(classes)


def check_new_password(
    password: str, policy: PasswordPolicy, *, login: str, field_name: str = "new_password"
) -> None:
    """The tenant's rules for a password an operator chooses (SEC-3)."""
    if len(password) < policy.min_length:
        raise InvalidArgument(
            f"the password needs at least {policy.min_length} characters", field=field_name
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument(f"the password is longer than {MAX_PASSWORD}", field=field_name)
    if character_classes(password) < policy.min_classes:
        raise InvalidArgument(
            f"the password needs characters of at least {policy.min_classes} kinds "
            "(lower case, upper case, digits, others)",
            field=field_name,
        )
    local = login.split("@", 1)[0].lower()
    if password.lower() in (login.lower(), local):
        raise InvalidArgument("the password must not be the login", field=field_name)


def generate_password(policy: PasswordPolicy) -> str:
    """A random temporary password that meets the policy (all four classes)."""
    length = max(16, policy.min_length)
    alphabet = string.ascii_letters + string.digits + "-_.!"
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if character_classes(pw) == 4:
            return pw


def password_change_required(op: OperatorRecord, policy: PasswordPolicy, now: datetime) -> str:
    """Why the operator must change their password before anything else, or ""."""
    if op.must_change_password:
        return "temporary_password"
    if (
        policy.max_age_days > 0
        and op.password_changed_at is not None
        and now - op.password_changed_at > timedelta(days=policy.max_age_days)
    ):
        return "password_expired"
    return ""


def check_policy(policy: PasswordPolicy) -> None:
    if not 8 <= policy.min_length <= 128:
        raise InvalidArgument("password_min_length must be 8 to 128", field="password_min_length")
    if not 1 <= policy.min_classes <= 4:
        raise InvalidArgument("password_min_classes must be 1 to 4", field="password_min_classes")
    if not 0 <= policy.max_age_days <= 3650:
        raise InvalidArgument(
            "password_max_age_days must be 0 (never) to 3650", field="password_max_age_days"
        )


# -- tokens ----------------------------------------------------------------------------


def new_secret() -> tuple[str, bytes]:
    """A random secret for the client and the hash the server keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


new_session_token = new_secret


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# -- input forms -----------------------------------------------------------------------


def normalise_address(address: str) -> str:
    addr = address.strip().strip("<>").strip().lower()
    local, _, domain = addr.partition("@")
    if (
        addr.count("@") != 1
        or not local
        or not domain
        or any(c in addr for c in ' \r\n\t\0,;<>"()')
        or len(addr) > MAX_LOGIN
    ):
        raise InvalidArgument(f"not a mail address: {address!r}", field="address")
    return addr


def check_credentials_input(login: str, password: str) -> None:
    if not login or len(login) > MAX_LOGIN:
        raise InvalidArgument("login is required (at most 254 characters)", field="login")
    if not password:
        raise InvalidArgument("password is required", field="password")
    if len(password) > MAX_PASSWORD:
        raise InvalidArgument(
            f"password is longer than {MAX_PASSWORD} characters", field="password"
        )


def clean_name(value: str, field_name: str, *, limit: int = MAX_NAME) -> str:
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidArgument(f"{field_name} must not be empty", field=field_name)
    if len(text) > limit:
        raise InvalidArgument(f"{field_name} is longer than {limit} characters", field=field_name)
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs") for c in text):
        raise InvalidArgument(
            f"{field_name} must not contain control characters or line separators",
            field=field_name,
        )
    return text


def clean_inbox_name(value: str) -> str:
    """An inbox's name is the display name of the mail sent from it (From): a header value,
    so also no line break hidden in an encoded word (issue 16)."""
    return mail.check_header_value(clean_name(value, "name", limit=100), "name")


def clean_login(login: str) -> str:
    """A login is a mail-address-like name; stored as given, unique case-insensitively."""
    value = login.strip()
    try:
        normalise_address(value)
    except InvalidArgument:
        raise InvalidArgument("login must look like a mail address", field="login") from None
    return value


def _each(
    values: Sequence[str], field_name: str, normal: Callable[[str], str], problem: str
) -> list[str]:
    """Every value in its normal form, once, in order; at most MAX_LIST of them. A value
    `normal` refuses (ValueError or InvalidArgument) is named in the error."""
    if len(values) > MAX_LIST:
        raise InvalidArgument(f"{field_name} has more than {MAX_LIST} entries", field=field_name)
    out: list[str] = []
    for v in values:
        try:
            item = normal(v)
        except (ValueError, InvalidArgument):
            raise InvalidArgument(f"{problem}: {v!r}", field=field_name) from None
        if item not in out:
            out.append(item)
    return out


def clean_list(values: Sequence[str], field_name: str, *, item_limit: int = 100) -> list[str]:
    return _each(
        values,
        field_name,
        lambda v: clean_name(v, field_name, limit=item_limit),
        f"not a name of 1 to {item_limit} characters",
    )


def clean_addresses(values: Sequence[str], field_name: str = "addresses") -> list[str]:
    return _each(values, field_name, normalise_address, "not a mail address")


def check_time_zone(name: str, field_name: str = "time_zone", *, allow_empty: bool = True) -> str:
    if not name and allow_empty:
        return ""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {name!r}", field=field_name) from None
    return name


def check_language(value: str) -> str:
    if value not in LANGUAGES:
        raise InvalidArgument(f"language must be one of {', '.join(LANGUAGES)}", field="language")
    return value


def clean_role_name(name: str) -> str:
    value = name.strip().lower()
    if not value or len(value) > 40 or not set(value) <= ROLE_NAME_CHARS:
        raise InvalidArgument("a role name is 1 to 40 of a-z, 0-9, '_' and '-'", field="name")
    return value


def check_permissions(names: Iterable[str]) -> list[str]:
    wanted = sorted(set(names))
    bad = permissions.unknown(set(wanted))
    if bad:
        raise InvalidArgument(f"unknown permission {bad[0]!r}", field="permissions")
    return wanted


# -- IP allow-lists (SEC-2) --------------------------------------------------------------


def clean_allowlist(values: Sequence[str], field_name: str = "ip_allowlist") -> list[str]:
    """Addresses and CIDR ranges, IPv4 and IPv6, in their normal form."""
    return _each(
        values,
        field_name,
        lambda v: str(ipaddress.ip_network(v.strip(), strict=False)),
        "not an address or CIDR range",
    )


# -- the login throttle (SEC-1) ------------------------------------------------------------


@dataclass(frozen=True)
class Throttle:
    """Failed logins are counted per login and per client address in a sliding window:
    the failures of the last `window`, whatever succeeded in between (so an insider who
    logs in now and then does not reset their address's count), and only those after the
    end of the last lock of that login or address (a lock served, or ended early by an
    administrator, starts the count over). From `slow_after` failures on, each attempt
    waits `delay` longer (at most `max_delay`); at `lock_after` the login (or, at
    `address_lock_after`, the address) is locked for `lock_for`, and while it is, even
    the right password is refused."""

    window: timedelta = timedelta(minutes=15)
    slow_after: int = 5
    delay_s: float = 0.5
    max_delay_s: float = 5.0
    lock_after: int = 10
    address_lock_after: int = 50
    lock_for: timedelta = timedelta(minutes=15)

    def delay(self, failures: int) -> float:
        if failures < self.slow_after:
            return 0.0
        return min(self.max_delay_s, self.delay_s * (failures - self.slow_after + 1))

    def counted(
        self, failures: Iterable[datetime], *, now: datetime, lock_ended: datetime | None
    ) -> int:
        """How many of these failures (of one login, or of one address) count now."""
        start = now - self.window
        if lock_ended is not None and lock_ended > start:
            start = lock_ended
        return sum(1 for at in failures if start < at <= now)

    def wait(self, by_login: int, by_address: int) -> float:
        """How long the next attempt waits, given the failures counted so far (an
        address's count weighs in proportionally to its higher threshold)."""
        return self.delay(max(by_login, by_address * self.lock_after // self.address_lock_after))

    def locks_after_failure(self, by_login: int, by_address: int) -> tuple[bool, bool]:
        """Whether a failure, counted in (`by_login`, `by_address`), locks the login and
        whether it locks the address."""
        return by_login >= self.lock_after, by_address >= self.address_lock_after


def require_manageable(roles_left: int) -> None:
    """Refuse a change after which nobody active could manage operators."""
    if roles_left < 1:
        raise FailedPrecondition(
            "this would leave the tenant without an active operator who may manage "
            "operators (the permission manage_operators)"
        )
