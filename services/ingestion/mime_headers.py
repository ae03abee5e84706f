"""Header blocks and their parameters (RFC 2231) for the parser (parser.py), with the
walk's state: defects and limits. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.ingestion.charsets import (
    HEADER_LADDER,
    clean,
    decode_bytes,
    decode_header,
    decode_words,
)
from services.ingestion.mail_model import (
    _MAX_DEFECTS,
    _RECURSION_CAP,
    Limits,
)

# --- state --------------------------------------------------------------------------------


class _State:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.max_depth = max(0, min(limits.max_depth, _RECURSION_CAP))
        self.defects: list[str] = []
        self.fatal = False
        self.count = 0
        self.parts_stopped = False
        self.depth_stopped = False
        self.decoded_total = 0
        self.decode_stopped = False
        self.payloads: dict[int, bytes | None] = {}
        self.header_lines = 0

    def defect(self, text: str) -> None:
        self.defects.append(clean(text)[:300])

    def stage(self, name: str, exc: BaseException) -> None:
        self.fatal = True
        self.defect(f"internal error while reading {name}: {type(exc).__name__}: {exc}")

    def final_defects(self) -> list[str]:
        unique = list(dict.fromkeys(d for d in self.defects if d))
        if len(unique) > _MAX_DEFECTS:
            extra = len(unique) - _MAX_DEFECTS + 1
            unique = [*unique[: _MAX_DEFECTS - 1], f"... and {extra} more problems"]
        return unique


# --- header blocks --------------------------------------------------------------------------

_HEADER_NAME = re.compile(rb"([!-9;-~]{1,200})[ \t]*:")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_MAX_HEADER_LINES = 100_000  # in all header blocks together: bounds the time spent


class _Headers:
    __slots__ = ("fields",)

    def __init__(self, fields: list[tuple[str, bytes]]) -> None:
        self.fields = fields  # (lower-case name, unfolded raw value)

    def all(self, name: str) -> list[bytes]:
        return [v for n, v in self.fields if n == name]

    def first(self, name: str) -> bytes | None:
        for n, v in self.fields:
            if n == name:
                return v
        return None

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.fields)

    def token(self, name: str) -> str:
        """The first value as one clean line of latin-1 text (for structured fields)."""
        v = self.first(name)
        return "" if v is None else clean(v.decode("latin-1"))


def _is_header_line(line: bytes) -> bool:
    return bool(_HEADER_NAME.match(line)) or line[:1] in (b" ", b"\t")


def _parse_header_block(
    buf: bytes, start: int, end: int, st: _State, where: str, quiet: bool = False
) -> tuple[list[tuple[str, bytes]], int, bytes | None]:
    """Header fields from buf[start:end]: (fields, body start, mbox envelope sender)."""
    fields: list[tuple[str, bytes]] = []
    name: str | None = None
    pieces: list[bytes] = []
    envelope: bytes | None = None
    limit = start + st.limits.max_header_bytes
    pos = start
    body = end
    first = True

    def finish() -> None:
        if name is not None:
            fields.append((name, b"".join(pieces).strip()))

    cut = False
    while pos < end and not cut:
        st.header_lines += 1
        if st.header_lines > _MAX_HEADER_LINES:
            if not quiet:
                st.defect(f"more than {_MAX_HEADER_LINES} header lines in all; the rest skipped")
            m_blank = _BLANK_LINE.search(buf, pos, end)
            body = m_blank.end() if m_blank else end
            break
        if pos >= limit:
            if not quiet:
                st.defect(f"{where}: header block longer than {st.limits.max_header_bytes} bytes")
            body = pos
            break
        nl = buf.find(b"\n", pos, min(end, limit + 1))
        if nl < 0 and min(end, limit + 1) < end:  # a line longer than the whole allowance
            nl = buf.find(b"\n", limit, end)
            line_end = end if nl < 0 else nl + 1
            line = buf[pos:limit]
            cut = True
            if not quiet:
                st.defect(f"{where}: header block longer than {st.limits.max_header_bytes} bytes")
        else:
            line_end = end if nl < 0 else nl + 1
            line = buf[pos:line_end].rstrip(b"\r\n")
        if not line:
            body = line_end
            break
        m = _HEADER_NAME.match(line)
        if line[:1] in (b" ", b"\t"):
            stripped = line.lstrip()
            if name is not None:
                pieces.append(line)
            elif _HEADER_NAME.match(stripped):
                if not quiet:
                    st.defect(f"{where}: header field starts with white space")
                m = _HEADER_NAME.match(stripped)
                assert m is not None
                name = m.group(1).decode("ascii").lower()
                pieces = [stripped[m.end() :]]
            elif not quiet:
                st.defect(f"{where}: continuation line with no header field before it")
        elif m:
            finish()
            name = m.group(1).decode("ascii").lower()
            pieces = [line[m.end() :]]
        elif first and line.startswith(b"From "):
            envelope = line[5:]
        elif line.startswith(b">From "):
            pass
        else:
            nxt_end = buf.find(b"\n", line_end, end)
            nxt = buf[line_end : end if nxt_end < 0 else nxt_end].rstrip(b"\r\n")
            if name is not None and nxt and _is_header_line(nxt):
                pieces.append(b" " + line)  # a broken fold: keep it with the field before
                if not quiet:
                    st.defect(f"{where}: malformed header line joined to the field before")
            else:
                if fields or name is not None:
                    if not quiet:
                        st.defect(f"{where}: no blank line between the header and the body")
                body = pos
                break
        first = False
        pos = line_end
    if cut:
        body = pos
    finish()
    return fields, body, envelope


# --- parameters (Content-Type, Content-Disposition; RFC 2231) ------------------------------

_CTYPE = re.compile(r"\s*([a-z0-9][a-z0-9!#$&^_.+-]*)\s*/\s*([a-z0-9][a-z0-9!#$&^_.+-]*)", re.I)
_RFC2231 = re.compile(r"([^*]+)\*(\d{1,4})?(\*)?")
_PCT = re.compile(rb"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class _Param:
    raw: bytes
    charset: str | None
    rfc2231: bool

    @property
    def token(self) -> str:
        return self.raw.decode("latin-1").strip()


def _split_params(s: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n and len(out) < 200:
        while i < n and s[i] in " \t;":
            i += 1
        if i >= n:
            break
        j = i
        while j < n and s[j] not in "=;":
            j += 1
        name = s[i:j].strip().lower()
        if j >= n or s[j] == ";":
            i = j
            continue
        j += 1
        while j < n and s[j] in " \t":
            j += 1
        if j < n and s[j] == '"':
            k = j + 1
            chars: list[str] = []
            while k < n and s[k] != '"':
                if s[k] == "\\" and k + 1 < n and s[k + 1] in '"\\':
                    chars.append(s[k + 1])
                    k += 2
                    continue
                chars.append(s[k])
                k += 1
            if k >= n:  # no closing quote: up to the next ';'
                semi = s.find(";", j + 1)
                value = s[j + 1 : n if semi < 0 else semi]
                i = n if semi < 0 else semi
            else:
                value = "".join(chars)
                semi = s.find(";", k + 1)
                i = n if semi < 0 else semi
        else:
            semi = s.find(";", j)
            k = n if semi < 0 else semi
            value = s[j:k].strip()
            i = k
        if name:
            out.append((name, value))
    return out


def _params(s: str) -> dict[str, _Param]:
    plain: dict[str, str] = {}
    sections: dict[str, dict[int, tuple[str, bool]]] = {}
    for name, value in _split_params(s):
        m = _RFC2231.fullmatch(name)
        if m:
            index = int(m.group(2)) if m.group(2) is not None else 0
            encoded = m.group(3) is not None or m.group(2) is None
            sections.setdefault(m.group(1).strip(), {}).setdefault(index, (value, encoded))
        else:
            plain.setdefault(name, value)
    result = {k: _Param(v.encode("latin-1", "replace"), None, False) for k, v in plain.items()}
    for base, segs in sections.items():
        charset: str | None = None
        data = bytearray()
        for n, index in enumerate(sorted(segs)):
            value, encoded = segs[index]
            if encoded:
                if n == 0 and value.count("'") >= 2:
                    charset, _lang, value = value.split("'", 2)
                raw = value.encode("latin-1", "replace")
                data += _PCT.sub(lambda m: bytes((int(m.group(1), 16),)), raw)
            else:
                data += value.encode("latin-1", "replace")
        result[base] = _Param(bytes(data), charset or None, True)
    return result


def _param_text(p: _Param, st: _State, what: str, hint: str | None) -> str:
    problems: list[str] = []
    if p.rfc2231:
        dec = decode_bytes(p.raw, p.charset, ladder=HEADER_LADDER, hint=hint, what=what)
        text = dec.text
        if dec.problem:
            problems.append(dec.problem)
        if "=?" in text:  # RFC 2047 inside RFC 2231: seen in the wild
            text = decode_words(text, problems, what)
    else:
        text = decode_header(p.raw, problems, hint, what)
    for problem in problems:
        st.defect(problem)
    return text
