"""Address lists and single header fields (Subject, Message-IDs, Date) for the parser
(parser.py): every string one clean line. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from email.utils import parseaddr, parsedate_to_datetime

from services.ingestion.charsets import (
    clean,
    decode_8bit,
    decode_header,
    decode_words,
)
from services.ingestion.mail_model import (
    _MAX_ADDRESSES,
    Address,
)
from services.ingestion.mime_headers import (
    _Headers,
    _State,
)

# --- addresses ------------------------------------------------------------------------------

_ATEXT_LOCAL = re.compile(
    r"(?:[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-\u0080-\U0010ffff]+|\"(?:[^\"\\\r\n]|\\.)*\")"
)
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9_\u0080-\U0010ffff](?:[A-Za-z0-9_\-\u0080-\U0010ffff]*[A-Za-z0-9_\u0080-\U0010ffff])?"
    r"\.)*[A-Za-z0-9_\u0080-\U0010ffff](?:[A-Za-z0-9_\-\u0080-\U0010ffff]*[A-Za-z0-9_\u0080-\U0010ffff])?\.?"
    r"|\[[^\[\]\\\s]{1,100}\]"
)
_ENCODED_WORDISH = re.compile(r"=\?.*\?=")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _valid_address(addr: str) -> bool:
    if not addr or len(addr) > 320 or "@" not in addr:
        return False
    local, _, domain = addr.rpartition("@")
    if not local or not domain or len(local) > 128:
        return False
    if _ENCODED_WORDISH.search(local):
        return False
    return bool(_ATEXT_LOCAL.fullmatch(local)) and bool(_DOMAIN.fullmatch(domain))


def _scan(s: str) -> Iterator[tuple[int, str, bool]]:
    """(index, char, top level?) over s, skipping through quotes, comments and escapes."""
    quote = False
    comment = 0
    escape = False
    for i, ch in enumerate(s):
        if escape:
            escape = False
            yield i, ch, False
            continue
        if quote:
            if ch == "\\":
                escape = True
            elif ch == '"':
                quote = False
            yield i, ch, False
            continue
        if comment:
            if ch == "\\":
                escape = True
            elif ch == "(":
                comment += 1
            elif ch == ")":
                comment -= 1
            yield i, ch, False
            continue
        if ch == '"':
            quote = True
            yield i, ch, False
        elif ch == "(":
            comment = 1
            yield i, ch, False
        else:
            yield i, ch, True


def _split_address_list(s: str) -> list[str]:
    segments: list[str] = []
    current: list[str] = []
    in_angle = False
    closed = False  # an <addr> ended this segment
    has_at = False
    for _, ch, top in _scan(s):
        if not top:
            if closed and ch == '"':  # "Name" <a> "Other" <b>: a missing comma
                segments.append("".join(current))
                current, has_at = [], False
                closed = False
            current.append(ch)
            continue
        has_at = has_at or ch == "@"
        if in_angle:
            current.append(ch)
            if ch == ">":
                in_angle = False
                closed = True
            continue
        if ch == ",":
            segments.append("".join(current))
            current, closed, has_at = [], False, False
            continue
        if ch == ":" and not closed and not has_at:
            current = []  # a group's name: "Team: a@b, c@d;" → a@b, c@d
            continue
        if ch == ";":
            segments.append("".join(current))
            current, closed, has_at = [], False, False
            continue
        if closed and not ch.isspace():
            segments.append("".join(current))
            current, closed, has_at = [], False, ch == "@"
        if ch == "<":
            in_angle = True
        current.append(ch)
    segments.append("".join(current))
    return [seg.strip() for seg in segments if seg.strip()]


def _unquote_phrase(text: str) -> str:
    text = _QUOTED.sub(lambda m: re.sub(r"\\(.)", r"\1", m.group(1)), text)
    return text.strip()


def _comments(s: str) -> tuple[str, list[str]]:
    """(s without its comments, the top-level comments' text)."""
    kept: list[str] = []
    found: list[str] = []
    depth = 0
    quote = escape = False
    for ch in s:
        if depth:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
                continue
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    continue
            found[-1] += ch
            continue
        if quote:
            kept.append(ch)
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
            kept.append(ch)
        elif ch == "(":
            depth = 1
            found.append("")
        else:
            kept.append(ch)
    return "".join(kept), found


def _address(segment: str, what: str, st: _State) -> list[Address]:
    problems: list[str] = []
    raw = clean(segment)[:500]
    bare, comments = _comments(segment)
    if not bare.strip():
        return []  # only a comment, e.g. after a group: "(the end of the group)"
    angle_open = angle_close = -1
    for i, ch, top in _scan(segment):
        if top and ch == "<" and angle_open < 0:
            angle_open = i
        elif top and ch == ">" and angle_open >= 0:
            angle_close = i
            break
    if angle_open >= 0:
        close = angle_close if angle_close >= 0 else len(segment)
        addr = _comments(segment[angle_open + 1 : close])[0].strip()
        if '"' not in addr:  # obsolete syntax allows folding white space around the dots
            addr = re.sub(r"\s+", "", addr)
        if addr.startswith("@") and ":" in addr:  # an obsolete source route
            addr = addr.split(":", 1)[1].strip()
        name = _unquote_phrase(_comments(segment[:angle_open])[0])
        if not name and comments:
            name = comments[-1]
    else:
        try:
            name, addr = parseaddr(segment)
        except Exception:
            name, addr = "", ""
        tokens = bare.split()
        if len(tokens) > 1 and all(_valid_address(t) for t in tokens):
            st.defect(f"{what}: addresses without commas between them: {raw[:80]!r}")
            return [Address(name="", address=clean(t), raw=clean(t), valid=True) for t in tokens]
        if (
            len(tokens) > 1
            and _valid_address(tokens[-1])
            and not any("@" in t for t in tokens[:-1])
            and (not _valid_address(addr) or addr == tokens[-1])
        ):
            st.defect(f"{what}: address without <> after the name: {raw[:80]!r}")
            name, addr = _unquote_phrase(" ".join(tokens[:-1])), tokens[-1]
    name = clean(decode_words(name, problems, what))
    for problem in problems:
        st.defect(problem)
    if _valid_address(addr) and not any(c.isspace() for c in addr):
        return [Address(name=name[:500], address=clean(addr), raw=raw, valid=True)]
    st.defect(f"{what}: {raw[:80]!r} is not a valid address; kept as text")
    if angle_open < 0:  # no <address> at all: show the text itself as the name
        name = name or clean(decode_words(segment, [], what))
    return [Address(name=name[:500], address="", raw=raw, valid=False)]


def _addresses(
    headers: _Headers, name: str, what: str, st: _State, hint: str | None
) -> list[Address]:
    out: list[Address] = []
    for raw in headers.all(name):
        problems: list[str] = []
        text = decode_8bit(raw, problems, hint, what)
        for problem in problems:
            st.defect(problem)
        for segment in _split_address_list(text):
            if len(out) >= _MAX_ADDRESSES:
                st.defect(f"{what}: more than {_MAX_ADDRESSES} addresses; the rest were left out")
                return out
            out.extend(_address(segment, what, st))
    return out


# --- single header fields -------------------------------------------------------------------

_MSGID = re.compile(r"<\s*([^<>\s]{1,998})\s*>")


def _header_text(headers: _Headers, name: str, what: str, st: _State, hint: str | None) -> str:
    values = headers.all(name)
    if not values:
        return ""
    if len(values) > 1:
        st.defect(f"{len(values)} {what} header fields; the first is used")
    problems: list[str] = []
    text = clean(decode_header(values[0], problems, hint, f"{what} header"))
    for problem in problems:
        st.defect(problem)
    return text


def _message_ids(headers: _Headers, name: str) -> list[str]:
    out: list[str] = []
    for raw in headers.all(name):
        text = clean(decode_8bit(raw, []))
        if "=?" in text:
            # encoded words are not allowed in message ids, but Python's email package
            # writes a long In-Reply-To / References as one; read it as its sender meant
            text = clean(decode_words(text, []))
        found = _MSGID.findall(text)
        if not found and text:
            found = [t.strip("<>") for t in text.split()]
        out.extend(clean(f) for f in found if clean(f))
    return list(dict.fromkeys(out))


def _date(headers: _Headers, st: _State) -> str | None:
    raw = headers.first("date")
    if raw is None:
        return None
    value = clean(decode_8bit(raw, []))
    if not value:
        st.defect("Date header is empty")
        return None
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).isoformat()
    except Exception:
        st.defect(f"Date header unreadable: {value[:60]!r}")
        return None
