"""Authentication-Results (RFC 8601) and the sender verdict (ADR 0009), free of I/O.

A receiving MTA that checks SPF, DKIM and DMARC records what it found in an
`Authentication-Results` header named by its authserv-id:

    Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=shop.example;
        dkim=pass header.d=shop.example header.s=s1; dmarc=pass header.from=shop.example

Anyone can write such a header into a mail, so only headers whose authserv-id the
deployment trusts count (`SB_TRUSTED_AUTHSERV_IDS`); the MTA owning that id must remove
copies of it that arrive from outside (RFC 8601 §5). The sender is *verified* when a
trusted header records, for the domain of the mail's single From address:

- `dmarc=pass` (with `header.from` that domain, when given), or
- `dkim=pass` whose signing domain (`header.d`, else the domain of `header.i`) is exactly
  that domain, or
- `spf=pass` whose envelope sender (`smtp.mailfrom`) has exactly that domain,

and no trusted header records `dmarc=fail` for it. DKIM and SPF count only in strict
alignment: relaxed alignment (a parent domain signing for a subdomain) needs the public
suffix list, which the MTA's DMARC check has and this code does not.

`parse` reads one header value and never raises: what it cannot read it leaves out, and a
header whose authserv-id it cannot read is ignored whole — leaving out can only make a
pass less likely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MAX_CHARS = 8192  # of one header value read
MAX_RESULTS = 50  # resinfo per header
MAX_PROPS = 20  # properties per resinfo
MAX_HEADERS = 20  # Authentication-Results headers read per mail, from the top

PREFERENCE = ("dmarc", "dkim", "spf")  # the method a verdict names when several passed

_SPECIALS = frozenset('();="\\')


@dataclass(frozen=True, slots=True)
class Result:
    """One `method=result` with its properties (`ptype.property` → value)."""

    method: str  # lower case, without a version: "dkim"
    result: str  # lower case: "pass", "fail", "none", …
    props: tuple[tuple[str, str], ...] = ()  # ("header.d", "shop.example"), names lower case

    def prop(self, name: str) -> str:
        for key, value in self.props:
            if key == name:
                return value
        return ""


@dataclass(frozen=True, slots=True)
class AuthResults:
    authserv_id: str  # lower case
    results: tuple[Result, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    verified: bool
    method: str = ""  # "dmarc", "dkim" or "spf" when verified
    authserv_id: str = ""  # the trusted host that recorded the pass
    domain: str = ""  # the From address's domain (A-labels, lower case)


# --- reading one header ---------------------------------------------------------------

_WORD, _QUOTED, _SEMI, _EQUALS = "word", "quoted", ";", "="
Token = tuple[str, str]


def _tokens(text: str) -> list[Token] | None:
    """Words, quoted strings, `;` and `=`; white space and (nested) comments dropped.
    None when a quoted string or a comment does not end."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "(":
            depth = 0
            while i < n:
                c = text[i]
                if c == "\\":
                    i += 2
                    continue
                depth += (c == "(") - (c == ")")
                i += 1
                if depth == 0:
                    break
            if depth:
                return None
        elif c == '"':
            i += 1
            chars: list[str] = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                chars.append(text[i])
                i += 1
            if i >= n:
                return None
            i += 1
            out.append((_QUOTED, "".join(chars)))
        elif c in ";=":
            out.append((c, c))
            i += 1
        elif c in _SPECIALS:  # a stray ")" or "\": nothing a header of ours would hold
            return None
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in _SPECIALS:
                i += 1
            out.append((_WORD, text[start:i]))
    return out


def _value(tokens: list[Token], i: int) -> tuple[str, int] | None:
    """A property's value at tokens[i] (a word, a quoted string, or a quoted local part
    followed by `@domain`), and the index after it."""
    if i >= len(tokens) or tokens[i][0] not in (_WORD, _QUOTED):
        return None
    value = tokens[i][1]
    if tokens[i][0] == _QUOTED and i + 1 < len(tokens):
        kind, nxt = tokens[i + 1]
        if kind == _WORD and nxt.startswith("@"):
            return value + nxt, i + 2
    return value, i + 1


def _resinfo(tokens: list[Token]) -> Result | None:
    """`method[/version]=result` then `reason=value` and `ptype.property=value` items."""
    if len(tokens) < 3 or tokens[0][0] != _WORD or tokens[1][0] != _EQUALS:
        return None
    if tokens[2][0] != _WORD:
        return None
    method = tokens[0][1].split("/", 1)[0].strip().lower()
    result = tokens[2][1].lower()
    if not method or not result:
        return None
    props: list[tuple[str, str]] = []
    i = 3
    while i < len(tokens) and len(props) < MAX_PROPS:
        if tokens[i][0] != _WORD or i + 1 >= len(tokens) or tokens[i + 1][0] != _EQUALS:
            break  # not a property: what follows cannot be read
        name = tokens[i][1].lower()
        got = _value(tokens, i + 2)
        if got is None:
            break
        value, i = got
        if name != "reason" and "." in name.strip("."):
            props.append((name, value))
    return Result(method, result, tuple(props))


def parse(value: str) -> AuthResults | None:
    """One Authentication-Results header value; None when its authserv-id cannot be read."""
    tokens = _tokens(value[:MAX_CHARS])
    if not tokens or tokens[0][0] not in (_WORD, _QUOTED):
        return None
    if len(tokens) > 1 and tokens[1][0] == _EQUALS:
        return None  # "dkim=pass …" without an authserv-id
    authserv_id = tokens[0][1].strip().lower()
    if not authserv_id:
        return None
    rest = tokens[1:]
    if rest and rest[0][0] == _WORD and rest[0][1].isdigit():
        rest = rest[1:]  # the version
    if rest and rest[0][0] != _SEMI:
        return None
    groups: list[list[Token]] = []
    for token in rest:
        if token[0] == _SEMI:
            groups.append([])
        else:
            groups[-1].append(token)
    results = []
    for group in groups[:MAX_RESULTS]:
        found = _resinfo(group)
        if found is not None:
            results.append(found)
    return AuthResults(authserv_id, tuple(results))


# --- the verdict -----------------------------------------------------------------------


def normalize_domain(domain: str) -> str:
    """Lower case, no trailing dot, international names as A-labels ("" if empty)."""
    d = domain.strip().strip("<>").rstrip(".").lower()
    if not d or d.isascii():
        return d
    try:
        return d.encode("idna").decode("ascii")
    except (UnicodeError, ValueError):
        return d


def domain_of(address: str) -> str:
    """The normalised domain of an address (or of a bare domain)."""
    return normalize_domain(address.rpartition("@")[2])


def trusted_ids(setting: str) -> frozenset[str]:
    """SB_TRUSTED_AUTHSERV_IDS: comma-separated authserv-ids; empty trusts none."""
    return frozenset(p.strip().lower() for p in setting.split(",") if p.strip())


def _passes(result: Result, domain: str) -> str | None:
    """The method name when this result is a pass for `domain`, else None."""
    if result.result != "pass":
        return None
    if result.method == "dmarc":
        named = result.prop("header.from")
        return "dmarc" if not named or domain_of(named) == domain else None
    if result.method == "dkim":
        signer = result.prop("header.d") or domain_of(result.prop("header.i"))
        return "dkim" if signer and normalize_domain(signer) == domain else None
    if result.method == "spf":
        mailfrom = result.prop("smtp.mailfrom")
        return "spf" if mailfrom and domain_of(mailfrom) == domain else None
    return None


def _dmarc_fail(result: Result, domain: str) -> bool:
    if result.method != "dmarc" or result.result != "fail":
        return False
    named = result.prop("header.from")
    return not named or domain_of(named) == domain


def verdict(
    header_values: Iterable[str], from_addresses: Sequence[str], trusted: frozenset[str]
) -> Verdict:
    """Whether the mail's sender is verified by a trusted host (the module's rule)."""
    if len(from_addresses) != 1:
        return Verdict(False)  # no From, or several: no single sender to vouch for
    domain = domain_of(from_addresses[0]) if "@" in from_addresses[0] else ""
    if not domain or not trusted:
        return Verdict(False, domain=domain)
    passed: dict[str, str] = {}
    for value in list(header_values)[:MAX_HEADERS]:
        found = parse(value)
        if found is None or found.authserv_id not in trusted:
            continue
        for result in found.results:
            if _dmarc_fail(result, domain):
                return Verdict(False, domain=domain)
            method = _passes(result, domain)
            if method is not None:
                passed.setdefault(method, found.authserv_id)
    for method in PREFERENCE:
        if method in passed:
            return Verdict(True, method, passed[method], domain)
    return Verdict(False, domain=domain)
