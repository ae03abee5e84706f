"""The MIME tree for the parser (parser.py): parts split under the limits, and their
decoded payloads. Pure."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator

from services.ingestion.charsets import (
    b64decode_lenient,
    clean,
)
from services.ingestion.mime_headers import (
    _CTYPE,
    _Headers,
    _Param,
    _params,
    _parse_header_block,
    _State,
)

# --- the MIME tree --------------------------------------------------------------------------


class _Part:
    __slots__ = (
        "body_start",
        "buf",
        "children",
        "cte",
        "ctype",
        "depth",
        "disposition",
        "dparams",
        "end",
        "headers",
        "params",
        "path",
        "skipped",
    )

    def __init__(self, buf: bytes, body_start: int, end: int, path: str, depth: int) -> None:
        self.buf = buf
        self.body_start = body_start
        self.end = end
        self.path = path
        self.depth = depth
        self.headers = _Headers([])
        self.ctype = "text/plain"
        self.params: dict[str, _Param] = {}
        self.disposition = ""
        self.dparams: dict[str, _Param] = {}
        self.cte = ""
        self.children: list[_Part] = []
        self.skipped = False  # a container a limit kept us out of

    @property
    def label(self) -> str:
        return f"part {self.path}" if self.path else "message"

    @property
    def charset(self) -> str:
        p = self.params.get("charset")
        return clean(p.token.strip("\"'"))[:40] if p else ""

    @property
    def has_filename(self) -> bool:
        return "filename" in self.dparams or "name" in self.params

    def walk(self) -> Iterator[_Part]:
        stack = [self]
        while stack:
            part = stack.pop()
            yield part
            stack.extend(reversed(part.children))


def _read_content_type(part: _Part, default: str, st: _State) -> None:
    values = part.headers.all("content-type")
    if not values:
        part.ctype = default
        return
    s = values[0].decode("latin-1")
    main, _, rest = s.partition(";")
    m = _CTYPE.match(main)
    if not m:
        st.defect(f"{part.label}: unreadable Content-Type {clean(s)[:60]!r}; read as {default}")
        part.ctype = default
        part.params = _params(rest)
        return
    part.ctype = f"{m.group(1).lower()}/{m.group(2).lower()}"
    junk = main[m.end() :].strip()
    part.params = _params(f"{junk};{rest}" if junk else rest)


def _read_part_headers(part: _Part, st: _State) -> None:
    cd = part.headers.first("content-disposition")
    if cd is not None:
        s = cd.decode("latin-1")
        kind, _, rest = s.partition(";")
        kind = kind.strip().lower()
        part.disposition = "inline" if kind.startswith("inline") else "attachment" if kind else ""
        if kind and not kind.startswith(("inline", "attachment")):
            st.defect(f"{part.label}: unknown Content-Disposition {clean(kind)[:40]!r}")
        part.dparams = _params(rest)
    cte = part.headers.token("content-transfer-encoding").lower().strip("\"' ")
    cte = re.split(r"[;\s]", cte, maxsplit=1)[0] if cte else ""
    part.cte = cte


def _build(
    buf: bytes, start: int, end: int, depth: int, path: str, default: str, st: _State
) -> _Part:
    st.count += 1
    fields, body_start, _ = _parse_header_block(buf, start, end, st, f"part {path}")
    part = _Part(buf, body_start, end, path, depth)
    part.headers = _Headers(fields)
    _read_content_type(part, default, st)
    _read_part_headers(part, st)
    _split_children(part, st)
    return part


def _split_children(part: _Part, st: _State) -> None:
    if not part.ctype.startswith("multipart/"):
        return
    boundary_param = part.params.get("boundary")
    boundary = boundary_param.raw.strip() if boundary_param else b""
    if not boundary:
        st.defect(f"{part.label}: multipart without a boundary; read as text")
        part.ctype = "text/plain"
        return
    if part.depth >= st.max_depth:
        if not st.depth_stopped:
            st.defect(
                f"MIME structure nested deeper than {st.max_depth} levels; "
                "the parts below were not read"
            )
        st.depth_stopped = True
        part.skipped = True
        return
    remaining = st.limits.max_parts - st.count
    ranges, closed, more = _split_multipart(
        part.buf, part.body_start, part.end, boundary, remaining
    )
    if not ranges:
        st.defect(f"{part.label}: multipart boundary never found; read as text")
        part.ctype = "text/plain"
        return
    if not closed and not more:
        st.defect(f"{part.label}: multipart has no closing boundary")
    child_default = "message/rfc822" if part.ctype == "multipart/digest" else "text/plain"
    for i, (s, e) in enumerate(ranges, 1):
        if st.count >= st.limits.max_parts:
            more = True
            break
        child_path = f"{part.path}.{i}" if part.path else str(i)
        part.children.append(_build(part.buf, s, e, part.depth + 1, child_path, child_default, st))
    if more and not st.parts_stopped:
        st.parts_stopped = True
        st.defect(
            f"more than {st.limits.max_parts} MIME parts; the parts after the "
            f"{st.limits.max_parts}th were not read"
        )


_REGEX_AFTER_MISSES = 64  # lines that start like a delimiter and are not one


def _delimiter_end(buf: bytes, pos: int, end: int) -> tuple[int, bool] | None:
    """Right after "--boundary" at `pos`: (where the delimiter ends, whether it closes), or
    None when the line goes on with something else and is no delimiter."""
    if pos + 2 <= end and buf[pos : pos + 2] == b"--":
        nl = buf.find(b"\n", pos + 2, end)
        return (end if nl < 0 else nl), True
    while pos < end and buf[pos] in b" \t":
        pos += 1
    if pos < end and buf[pos] == 0x0D:
        pos += 1
    return (pos, False) if pos == end or buf[pos] == 0x0A else None


def _delimiters(
    buf: bytes, start: int, end: int, boundary: bytes
) -> Iterator[tuple[int, int, bool]]:
    """(line start, end, closes?) of the delimiter lines after a line break at or after
    `start`, in order. Found with bytes.find; if many lines merely start like a delimiter
    ("--b-1" under boundary "b"), the rest is searched by one regular expression, so that
    such lines cost nothing in Python."""
    needle = b"\n--" + boundary
    misses = 0
    i = buf.find(needle, start, end)
    while i >= 0:
        found = _delimiter_end(buf, i + len(needle), end)
        if found is not None:
            yield i + 1, found[0], found[1]
            i = buf.find(needle, found[0], end)
            continue
        misses += 1
        if misses > _REGEX_AFTER_MISSES:
            delim = re.compile(re.escape(needle) + rb"(--[^\n]*|[ \t]*\r?)(?=\n|\Z)")
            for m in delim.finditer(buf, i + 1, end):
                yield m.start() + 1, m.end(), m.group(1).startswith(b"--")
            return
        i = buf.find(needle, i + 1, end)


def _split_multipart(
    buf: bytes, start: int, end: int, boundary: bytes, budget: int
) -> tuple[list[tuple[int, int]], bool, bool]:
    """Part ranges of a multipart body: (ranges, closed, stopped early because of budget)."""
    ranges: list[tuple[int, int]] = []
    current: int | None = None
    found: list[tuple[int, int, bool]] = []  # (delimiter line start, its end, close?)
    first = (
        _delimiter_end(buf, start + 2 + len(boundary), end)
        if buf.startswith(b"--" + boundary, start, end)
        else None
    )
    if first is not None:
        found.append((start, first[0], first[1]))
    pos = first[0] if first is not None else start
    scan_from = max(pos - 1, start)  # a delimiter right after the first one's line break
    for delimiter in _delimiters(buf, scan_from, end, boundary):
        found.append(delimiter)
        if found[-1][2] or len(found) > budget + 1:
            break
    for line_start, line_end, is_close in found:
        if current is not None:
            stop = line_start - 1  # the line break before a delimiter belongs to it
            if stop > current and buf[stop - 1] == 0x0D:
                stop -= 1
            ranges.append((current, max(stop, current)))
            if len(ranges) >= budget:
                return ranges, False, True
        if is_close:
            return ranges, True, False
        current = min(line_end + 1, end)
    if current is not None:
        ranges.append((current, end))
    return ranges, False, False


# --- payloads -------------------------------------------------------------------------------

_CTE_ALIASES = {
    "": "",
    "7bit": "",
    "8bit": "",
    "binary": "",
    "7-bit": "",
    "8-bit": "",
    "7bits": "",
    "8bits": "",
    "base64": "base64",
    "base-64": "base64",
    "quoted-printable": "qp",
    "quoted_printable": "qp",
    "quotedprintable": "qp",
    "qp": "qp",
    "x-uuencode": "uu",
    "uuencode": "uu",
    "x-uue": "uu",
    "uue": "uu",
}


def _decode_uu(data: bytes) -> tuple[bytes, bool]:
    out = bytearray()
    ok = True
    started = False
    for line in data.splitlines():
        if not started:
            started = line.startswith(b"begin")
            continue
        if line.strip() in (b"end", b"`", b""):
            if line.strip() == b"end":
                break
            continue
        try:
            out += binascii.a2b_uu(line)
        except binascii.Error:
            ok = False
            try:
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out += binascii.a2b_uu(line[:nbytes])
            except (binascii.Error, IndexError):
                pass
    return bytes(out), ok and started


def _payload(part: _Part, st: _State) -> bytes | None:
    """The decoded content of a leaf, or None when the decoded-bytes limit is reached."""
    key = id(part)
    if key in st.payloads:
        return st.payloads[key]
    body = part.buf[part.body_start : part.end]
    kind = _CTE_ALIASES.get(part.cte)
    data = body
    if kind is None:
        st.defect(f"{part.label}: unknown Content-Transfer-Encoding {part.cte[:30]!r}; read as is")
    elif kind == "base64":
        data, ok = b64decode_lenient(body)
        if not ok:
            st.defect(f"{part.label}: damaged base64; kept what decodes")
    elif kind == "qp":
        data = binascii.a2b_qp(body)
    elif kind == "uu":
        data, ok = _decode_uu(body)
        if not ok:
            st.defect(f"{part.label}: damaged uuencoded data; kept what decodes")
    result: bytes | None = data
    if st.decode_stopped or st.decoded_total + len(data) > st.limits.max_decoded_bytes:
        if not st.decode_stopped:
            st.defect(
                f"decoded content over {st.limits.max_decoded_bytes} bytes; "
                "later parts were not decoded"
            )
        st.decode_stopped = True
        result = None
    else:
        st.decoded_total += len(data)
    st.payloads[key] = result
    return result
