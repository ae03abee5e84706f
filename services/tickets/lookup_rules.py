"""Customer data lookup (issue 21, DAT-3, RTE-3): the rules, free of I/O — a
configuration validated, the URL template expanded with a contact's values (each
URL-encoded), an answer mapped through JSON pointers to labelled fields, and the
"customer value" read out of it.

The template's scheme and host are the administrator's and fixed: placeholders may stand
only in the path, query and fragment, so a customer's address or custom field can never
choose where our servers connect (SSRF). Where that host may lead is checked at connect
time by the runtime's ConnectPolicy widened by the tenant's allow-list (`policy_for`)."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote, urlsplit

from services.runtime.errors import InvalidArgument
from services.runtime.hosts import IP, ConnectPolicy, Network, refused_range, valid_host
from services.runtime.priority_score import CUSTOMER_VALUE_MAX

TIMEOUT_MS_DEFAULT = 3000
TIMEOUT_MS_MIN = 100
TIMEOUT_MS_MAX = 10_000
TTL_S_DEFAULT = 300
TTL_S_MAX = 86_400
FIELDS_MAX = 30
ALLOW_HOSTS_MAX = 20
TEMPLATE_MAX = 2000
POINTER_MAX = 200
LABEL_MAX = 100
SECRET_MAX = 4096
VALUE_TEXT_MAX = 1000
BODY_MAX_BYTES = 256 * 1024  # a larger answer is refused ("too_large")
TRY_BODY_MAX = 8 * 1024  # what "try it" shows of the answer
REDIRECTS_MAX = 3  # on the same scheme, host and port only

TYPES = frozenset({"text", "number", "date", "url"})
# the reasons a lookup is "unavailable" (LookupResult.error)
ERRORS = (
    "timeout",
    "refused",
    "connect",
    "http_status",
    "invalid_json",
    "too_large",
    "redirect",
    "missing",
    "disabled",
    "error",
)

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CUSTOM_KEY = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")
_AUTHORITY = re.compile(r"^(https?)://([^/?#{}@\s]+)(?=[/?#]|$)", re.IGNORECASE)
_FORBIDDEN_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer"}
)


@dataclass(frozen=True)
class LookupField:
    pointer: str
    label_ja: str = ""
    label_en: str = ""
    type: str = "text"


@dataclass(frozen=True)
class LookupConfig:
    url_template: str
    enabled: bool = True
    header_name: str = ""
    timeout_ms: int = TIMEOUT_MS_DEFAULT
    cache_ttl_s: int = TTL_S_DEFAULT
    fields: tuple[LookupField, ...] = ()
    value_pointer: str = ""
    allow_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContactKeys:
    """What a template may use of a contact: its first address, first phone, custom fields."""

    email: str = ""
    phone: str = ""
    custom: Mapping[str, str] = field(default_factory=dict)


class MissingValue(Exception):
    """The contact has nothing for a placeholder (`name`: email, phone, custom.<key>)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the contact has no {name}")
        self.name = name


@dataclass(frozen=True)
class MappedValue:
    field: LookupField
    value: str
    found: bool


def _bad(message: str, name: str) -> InvalidArgument:
    return InvalidArgument(message, field=name)


def check_template(template: str) -> None:
    """A URL template: http(s), a fixed host (no placeholder before the path), only known
    placeholders. InvalidArgument naming `url_template` otherwise."""
    if not template or len(template) > TEMPLATE_MAX or any(c in template for c in "\r\n\t \x00"):
        raise _bad(f"a URL of at most {TEMPLATE_MAX} characters, without spaces", "url_template")
    m = _AUTHORITY.match(template)
    if m is None:
        raise _bad(
            "an http:// or https:// URL whose host is written out (placeholders go in the "
            "path or query)",
            "url_template",
        )
    host = urlsplit(m.group(0)).hostname or ""
    bracketed = f"[{host}]" if ":" in host else host
    if not valid_host(bracketed):
        raise _bad(f"{host!r} is not a host name or address", "url_template")
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise _bad("a brace without its pair", "url_template")
    for name in _PLACEHOLDER.findall(template):
        if name in ("email", "phone"):
            continue
        if name.startswith("custom.") and _CUSTOM_KEY.match(name[7:]):
            continue
        raise _bad(
            f"unknown placeholder {{{name}}}: use {{email}}, {{phone}} or {{custom.<key>}}",
            "url_template",
        )


def check_pointer(pointer: str, name: str) -> None:
    """An RFC 6901 JSON pointer ("" is the whole answer)."""
    if len(pointer) > POINTER_MAX or (pointer and not pointer.startswith("/")):
        raise _bad("a JSON pointer such as /customer/rank", name)
    if re.search(r"~(?![01])", pointer):
        raise _bad("'~' in a JSON pointer is written ~0, and '/' inside a key ~1", name)


def validated(
    *,
    url_template: str,
    enabled: bool = True,
    header_name: str = "",
    timeout_ms: int = 0,
    cache_ttl_s: int = TTL_S_DEFAULT,
    fields: Sequence[LookupField] = (),
    value_pointer: str = "",
    allow_hosts: Sequence[str] = (),
) -> LookupConfig:
    """The configuration an administrator saves, checked; 0 for the timeout is its default."""
    check_template(url_template.strip())
    header_name = header_name.strip()
    if header_name and (not _TOKEN.match(header_name) or header_name.lower() in _FORBIDDEN_HEADERS):
        raise _bad("a header name such as X-Api-Key", "header_name")
    timeout_ms = timeout_ms or TIMEOUT_MS_DEFAULT
    if not TIMEOUT_MS_MIN <= timeout_ms <= TIMEOUT_MS_MAX:
        raise _bad(f"{TIMEOUT_MS_MIN} to {TIMEOUT_MS_MAX} ms", "timeout_ms")
    if not 0 <= cache_ttl_s <= TTL_S_MAX:
        raise _bad(f"0 to {TTL_S_MAX} seconds", "cache_ttl_s")
    if len(fields) > FIELDS_MAX:
        raise _bad(f"at most {FIELDS_MAX} fields", "fields")
    clean: list[LookupField] = []
    for i, f in enumerate(fields):
        where = f"fields[{i}]"
        check_pointer(f.pointer, f"{where}.pointer")
        if f.pointer in (c.pointer for c in clean):
            raise _bad(f"{f.pointer} is mapped twice", f"{where}.pointer")
        ja, en = " ".join(f.label_ja.split()), " ".join(f.label_en.split())
        if not (ja or en) or len(ja) > LABEL_MAX or len(en) > LABEL_MAX:
            raise _bad(f"a label of at most {LABEL_MAX} characters", f"{where}.label_ja")
        kind = f.type or "text"
        if kind not in TYPES:
            raise _bad(f"one of {', '.join(sorted(TYPES))}", f"{where}.type")
        clean.append(LookupField(f.pointer, ja or en, en or ja, kind))
    if value_pointer and value_pointer not in (c.pointer for c in clean):
        raise _bad("the pointer of one of the mapped fields", "value_pointer")
    if len(allow_hosts) > ALLOW_HOSTS_MAX:
        raise _bad(f"at most {ALLOW_HOSTS_MAX} entries", "allow_hosts")
    hosts: list[str] = []
    for entry in allow_hosts:
        entry = entry.strip()
        if not entry:
            continue
        try:
            ConnectPolicy.parse(entry)
        except ValueError as err:
            raise _bad(str(err), "allow_hosts") from None
        if " " in entry or "," in entry:
            raise _bad(f"{entry!r}: one host, address or CIDR range per entry", "allow_hosts")
        never = _never(entry)
        if never:
            raise _bad(
                f"{entry} is {never}: only the deployment (SB_CONNECT_ALLOW) can allow it",
                "allow_hosts",
            )
        if entry not in hosts:
            hosts.append(entry)
    return LookupConfig(
        url_template=url_template.strip(),
        enabled=enabled,
        header_name=header_name,
        timeout_ms=timeout_ms,
        cache_ttl_s=cache_ttl_s,
        fields=tuple(clean),
        value_pointer=value_pointer,
        allow_hosts=tuple(hosts),
    )


def _never(entry: str) -> str | None:
    """The TENANT_NEVER range an allow-list entry (an address or CIDR range) lies in."""
    try:
        net = ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None
    why = refused_range(net.network_address)
    return f"a {why} address" if why in TENANT_NEVER else None


def check_secret(secret: str) -> None:
    if len(secret) > SECRET_MAX or any(c in secret for c in "\r\n\x00"):
        raise _bad(f"at most {SECRET_MAX} characters on one line", "secret")


def secret_hint(secret: str) -> str:
    return "…" + secret[-4:] if len(secret) >= 8 else "…"


def expand(template: str, contact: ContactKeys) -> str:
    """The URL for `contact`: every placeholder replaced by its value, URL-encoded (no
    character of a value keeps a meaning in the URL). MissingValue for an empty one."""

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "email":
            got = contact.email
        elif name == "phone":
            got = contact.phone
        else:
            got = contact.custom.get(name[7:], "")
        got = got.strip()
        if not got:
            raise MissingValue(name)
        return quote(got, safe="")

    return _PLACEHOLDER.sub(value, template)


def uses(template: str) -> set[str]:
    """The placeholders a template uses."""
    return set(_PLACEHOLDER.findall(template))


def resolve_pointer(doc: Any, pointer: str) -> tuple[bool, Any]:
    """RFC 6901: (found, value) of `pointer` in the parsed JSON `doc`."""
    if pointer == "":
        return True, doc
    cur = doc
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict):
            if token not in cur:
                return False, None
            cur = cur[token]
        elif isinstance(cur, list):
            if not token.isdigit() or (token != "0" and token.startswith("0")):
                return False, None
            index = int(token)
            if index >= len(cur):
                return False, None
            cur = cur[index]
        else:
            return False, None
    return True, cur


def as_text(value: Any) -> str:
    """A JSON value as the panel shows it (objects and arrays as compact JSON)."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text[:VALUE_TEXT_MAX]


def customer_value_of(value: Any) -> int | None:
    """A number (or numeric text, "1,234") as a customer value: rounded, kept within
    0..CUSTOMER_VALUE_MAX; None for anything else."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        try:
            value = float(text)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return min(max(round(value), 0), CUSTOMER_VALUE_MAX)


def map_fields(doc: Any, fields: Sequence[LookupField]) -> list[MappedValue]:
    out = []
    for f in fields:
        found, value = resolve_pointer(doc, f.pointer)
        out.append(MappedValue(f, as_text(value) if found else "", found))
    return out


def value_of(doc: Any, config: LookupConfig) -> int | None:
    """The customer value the answer gives (None: not configured, absent or not numeric)."""
    if not config.value_pointer:
        return None
    found, value = resolve_pointer(doc, config.value_pointer)
    return customer_value_of(value) if found else None


# What a tenant's allow-list can never open, only the deployment's SB_CONNECT_ALLOW: the
# link-local range holds the cloud's metadata service (whose JSON answers, with a header
# the administrator chooses, would hand out the platform's credentials); the others are
# no host at all.
TENANT_NEVER = frozenset({"link-local", "unspecified", "multicast"})
_ANYWHERE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@dataclass(frozen=True)
class LookupPolicy(ConnectPolicy):
    """The deployment's ConnectPolicy (`hosts`, `networks`) widened by a tenant's
    allow-list (`tenant_hosts`, `tenant_networks`) — except for TENANT_NEVER ranges,
    which stay refused however the tenant lists them (by address, range or name)."""

    tenant_hosts: frozenset[str] = frozenset()
    tenant_networks: tuple[Network, ...] = ()

    def why_refused(self, ip: IP) -> str | None:
        why = super().why_refused(ip)
        if why is None or why in TENANT_NEVER:
            return why
        return ConnectPolicy(networks=self.tenant_networks).why_refused(ip)

    async def resolve(self, host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        if self.allows_name(host) or not ConnectPolicy(self.tenant_hosts).allows_name(host):
            return await super().resolve(host, port)
        # a name the tenant listed: any address it leads to but the TENANT_NEVER ones
        wide = replace(self, tenant_networks=_ANYWHERE)
        return await ConnectPolicy.resolve(wide, host, port)


def policy_for(deployment: ConnectPolicy, allow_hosts: Sequence[str]) -> LookupPolicy:
    """The deployment's SB_CONNECT_ALLOW widened by the tenant's allow-list."""
    tenant = ConnectPolicy.parse(" ".join(allow_hosts))
    return LookupPolicy(deployment.hosts, deployment.networks, tenant.hosts, tenant.networks)


def same_origin(a: str, b: str) -> bool:
    """Whether a redirect from `a` to `b` stays on the same scheme, host and port."""
    sa, sb = urlsplit(a), urlsplit(b)
    return (sa.scheme.lower(), sa.hostname, sa.port) == (sb.scheme.lower(), sb.hostname, sb.port)


def is_json_type(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )
