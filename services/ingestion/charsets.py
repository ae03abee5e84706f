"""Charsets for mail (ING-3): label → Python codec, the decoding ladder, RFC 2047 words.

Pure functions, no I/O. Nothing here raises on bad input: what cannot be read cleanly is
decoded as well as possible and described in a `problem` string for the caller's defects.

The ladder, for a text part or 8-bit header bytes:

1. the declared charset, with its extensions: ISO-2022-JP → the strict codecs, then a JIS →
   Shift_JIS conversion decoded as cp932 (Microsoft's vendor characters such as ①, ㈱ fail
   every ``iso2022_jp*`` codec); Shift_JIS → cp932; EUC-JP → euc_jp, then euc_jis_2004;
   GB2312/GBK → gb18030; Big5 → big5hkscs; EUC-KR/KS C 5601 → cp949; ISO-8859-1 → cp1252.
2. then utf-8, cp932, euc_jp (and cp1252 when nothing Asian was declared).

Each candidate is decoded strictly; the first that decodes without replacement characters
and without tell-tale mojibake (half-width katakana, private-use or C1 control characters,
which is what EUC-JP looks like through cp932) is kept. Otherwise the candidate with the
fewest replacement characters wins and a problem is reported. UTF-8 is tried before cp932
(the brief's order is cp932, euc_jp, utf-8) because strict UTF-8 almost never accepts bytes
that are not UTF-8, while cp932 accepts most byte strings, UTF-8 Japanese included.
"""

from __future__ import annotations

import binascii
import codecs
import re
from dataclasses import dataclass

REPLACEMENT = "\ufffd"

# Label → codec, for labels Python does not know or that need a superset (WHATWG-style).
_ALIASES = {
    # Japanese
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "s-jis": "cp932",
    "x-sjis": "cp932",
    "x-shift-jis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cswindows31j": "cp932",
    "ms932": "cp932",
    "x-ms-cp932": "cp932",
    "euc-jp": "euc_jp",
    "x-euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "x-eucjp": "euc_jp",
    "cseucpkdfmtjapanese": "euc_jp",
    "cp51932": "euc_jp",
    "iso-2022-jp": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
    "x-iso-2022-jp": "iso2022_jp",
    "jis": "iso2022_jp",
    "jis7": "iso2022_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    # Chinese
    "gb2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "windows-936": "gb18030",
    "chinese": "gb18030",
    "big5": "big5hkscs",
    "big-5": "big5hkscs",
    "x-big5": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "hz-gb-2312": "hz",
    # Korean
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "ks_c_5601-1989": "cp949",
    "ksc5601": "cp949",
    "ksc_5601": "cp949",
    "euc-kr": "cp949",
    "x-euc-kr": "cp949",
    "korean": "cp949",
    "csksc56011987": "cp949",
    "iso-ir-149": "cp949",
    "windows-949": "cp949",
    "uhc": "cp949",
    # Western and others
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "iso-8859-9": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "iso-8859-8-i": "iso8859-8",
    "x-mac-roman": "mac-roman",
    "koi8r": "koi8-r",
    "x-unicode20utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "utf8": "utf-8",
    "ucs-2": "utf-16",
    "unicode": "utf-16",
}

# Python codecs that are text encodings but must never be used for mail.
_DENIED = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
_CJK = {
    "cp932",
    "euc_jp",
    "iso2022_jp",
    "iso2022_jp_1",
    "iso2022_jp_2",
    "iso2022_jp_2004",
    "iso2022_jp_3",
    "iso2022_jp_ext",
    "shift_jis",
    "shift_jis_2004",
    "shift_jisx0213",
    "euc_jis_2004",
    "euc_jisx0213",
    "gb18030",
    "gb2312",
    "gbk",
    "hz",
    "big5",
    "big5hkscs",
    "cp950",
    "cp949",
    "euc_kr",
    "johab",
    "iso2022_kr",
}
_NO_LABEL = {"", "us-ascii", "ascii", "unknown-8bit", "x-unknown", "unknown", "default"}
_WESTERN = {"ascii", "cp1252", "iso8859-1", "iso8859-15", "latin-1"}
_SEVEN_BIT_CODECS = {"utf-7", "hz"}  # codecs whose 7-bit input is not plain ASCII
_LABEL = re.compile(r"[a-z0-9][a-z0-9_.:+-]{0,39}")
_CP = re.compile(r"(?:x-)?(?:windows|win|cp|ms)[-_]?(\d{3,5})")

TEXT_LADDER = ("utf-8", "cp932", "euc_jp")
HEADER_LADDER = ("utf-8", "cp932", "euc_jp")

# Characters that a wrong guess produces and real text rarely has.
_SUSPICIOUS = re.compile("[\u0080-\u009f\ue000-\uf8ff\uff61-\uff9f]")
_C1_FROM_CP1252 = re.compile(
    "[\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178]"
)


@dataclass(frozen=True)
class Decoded:
    text: str
    charset: str  # the codec actually used (e.g. "utf-8", "cp932", "iso-2022-jp+cp932")
    replaced: int  # replacement characters introduced
    problem: str | None  # a human-readable charset problem, or None


def codec_for(label: str | None) -> str | None:
    """The Python codec for a MIME charset label, or None if unknown or unusable."""
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower().split("*", 1)[0].strip()
    if not name or not _LABEL.fullmatch(name):
        return None
    name = _ALIASES.get(name, name)
    for candidate in (name, _cp_name(name)):
        if not candidate:
            continue
        try:
            info = codecs.lookup(candidate)
        except LookupError:
            continue
        if info.name in _DENIED or not getattr(info, "_is_text_encoding", True):
            return None
        return _ALIASES.get(info.name, info.name)
    return None


def _cp_name(name: str) -> str | None:
    m = _CP.fullmatch(name)
    return f"cp{m.group(1)}" if m else None


def _badness(text: str, codec: str) -> int:
    if codec.startswith("utf"):
        return 0  # bytes that decode strictly as UTF-8/16/32 are UTF-8/16/32
    suspicious = len(_SUSPICIOUS.findall(text))
    if codec == "cp1252":
        # Shift_JIS/EUC bytes seen through cp1252 are dominated by these punctuation marks.
        non_ascii = len(text) - len(text.encode("ascii", "ignore"))
        c1ish = len(_C1_FROM_CP1252.findall(text))
        if c1ish >= 4 and c1ish * 2 > non_ascii:
            suspicious += c1ish
    return suspicious


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _lenient(data: bytes, codec: str) -> tuple[str, int]:
    try:
        text = data.decode(codec, errors="replace")
    except (LookupError, ValueError):
        text = data.decode("utf-8", errors="replace")
    return text, text.count(REPLACEMENT) - _count_fffd_utf8(data)


def _count_fffd_utf8(data: bytes) -> int:
    """U+FFFD characters that were really in the data (as UTF-8), not introduced by us."""
    return data.count(b"\xef\xbf\xbd")


def _declared_attempts(data: bytes, codec: str) -> list[tuple[str, str]]:
    """(label, text) for each strict decoding the declared codec and its extensions allow."""
    out: list[tuple[str, str]] = []
    if codec.startswith("iso2022_jp"):
        for c in dict.fromkeys((codec, "iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2")):
            text = _strict(data, c)
            if text is not None:
                return [(c, text)]
        if data.isascii():
            text = _strict(jis_to_sjis(data), "cp932")
            if text is not None:
                return [("iso-2022-jp+cp932", text)]
        return out
    chains = {
        "euc_jp": ("euc_jp", "euc_jis_2004"),
        "cp1252": ("cp1252", "iso8859-1"),
        "cp949": ("cp949", "euc_kr"),
    }
    for c in chains.get(codec, (codec,)):
        text = _strict(data, c)
        if text is not None:
            out.append((c, text))
            break
    return out


def decode_bytes(
    data: bytes,
    declared: str | None,
    *,
    ladder: tuple[str, ...] = TEXT_LADDER,
    hint: str | None = None,
    what: str = "text",
) -> Decoded:
    """Decode `data` with the ladder. `declared` is the raw label (or None); `hint` is a
    codec to try right after UTF-8 (e.g. the body's charset for 8-bit headers)."""
    label = clean((declared or "").strip().strip("\"'"))[:40]
    codec = codec_for(label) if label else None
    plain_label = label.lower() in _NO_LABEL
    unknown_label = not plain_label and codec is None
    if codec not in _SEVEN_BIT_CODECS and not (codec or "").startswith("utf-16"):
        if data.isascii():
            if b"\x1b$" in data or b"\x1b(" in data:  # undeclared or mislabelled ISO-2022-JP
                for used, text in _declared_attempts(data, "iso2022_jp"):
                    return Decoded(text, used, 0, None)
            return Decoded(data.decode("ascii"), codec or "us-ascii", 0, None)

    declared_result: tuple[str, str] | None = None
    if codec is not None and codec != "ascii":
        attempts = _declared_attempts(data, codec)
        if attempts:
            used, text = attempts[0]
            if codec in _WESTERN:  # a single-byte Western label on UTF-8 is a known mislabel
                utf8 = _strict(data, "utf-8")
                if utf8 is not None:
                    mislabel = f"{what}: declared charset {label!r} but the bytes are UTF-8"
                    return Decoded(utf8, "utf-8", 0, mislabel + "; read as utf-8")
            if _badness(text, used) == 0:
                return Decoded(text, used, 0, None)
            declared_result = (used, text)

    # Mostly valid in the declared charset (or in UTF-8 when nothing is declared): a truncated
    # or slightly damaged text, better read with a replacement character than as mojibake.
    preferred = codec if codec is not None and codec != "ascii" else "utf-8"
    if declared_result is None:
        if preferred.startswith("iso2022_jp") and data.isascii():
            text, replaced = _lenient(jis_to_sjis(data), "cp932")
            used = "iso-2022-jp+cp932"
        else:
            text, replaced = _lenient(data, preferred)
            used = preferred
        valid = len(text) - len(text.encode("ascii", "ignore")) - replaced
        if 0 < replaced <= max(1, valid // 10) and valid > 0:
            shown = label if label and not plain_label else used
            damage = f"{what}: {replaced} byte sequence(s) not valid {shown}; replaced with \ufffd"
            return Decoded(text, used, replaced, damage)

    hint_codec = codec_for(hint) if hint else None
    rungs = list(ladder)
    if hint_codec and hint_codec != "ascii":
        rungs.insert(1, hint_codec)
    if codec not in _CJK and hint_codec not in _CJK:
        rungs.append("cp1252")
    rungs = [c for c in dict.fromkeys(rungs) if c != codec]
    tried: list[tuple[int, str, str]] = []  # (badness, codec used, text)
    problem: str | None
    for c in rungs:
        attempts = _declared_attempts(data, c) if c.startswith("iso2022") else []
        if not attempts:
            strict = _strict(data, c)
            attempts = [(c, strict)] if strict is not None else []
        for used, text in attempts:
            bad = _badness(text, used)
            if bad == 0:
                problem = None
                if declared_result is not None:
                    problem = f"{what}: {label} gives unlikely characters; read as {used}"
                elif unknown_label:
                    problem = f"{what}: unknown charset {label!r}; read as {used}"
                elif codec is not None and codec != "ascii":
                    problem = f"{what}: bytes are not valid {label}; read as {used}"
                return Decoded(text, used, 0, problem)
            tried.append((bad, used, text))
    if declared_result is not None:  # decodes as declared but looks odd: trust the label
        return Decoded(declared_result[1], declared_result[0], 0, None)
    if tried:
        _, used, text = min(tried, key=lambda t: t[0])
        problem = None
        if unknown_label:
            problem = f"{what}: unknown charset {label!r}; read as {used}"
        elif codec is not None and codec != "ascii":
            problem = f"{what}: bytes are not valid {label}; read as {used}"
        return Decoded(text, used, 0, problem)

    # nothing decodes cleanly: the candidate with the fewest replacement characters
    best: tuple[int, str, str] | None = None
    for c in [*([codec] if codec else []), *rungs]:
        if c.startswith("iso2022_jp") and data.isascii():
            text, replaced = _lenient(jis_to_sjis(data), "cp932")
            c = "iso-2022-jp+cp932"
        else:
            text, replaced = _lenient(data, c)
        if best is None or replaced < best[0]:
            best = (replaced, c, text)
    assert best is not None
    replaced, used, text = best
    if unknown_label:
        detail = f"unknown charset {label!r} and the bytes fit no charset tried"
    elif label and not plain_label:
        detail = f"bytes fit neither {label} nor any fallback"
    else:
        detail = "bytes fit no charset tried"
    return Decoded(
        text,
        used,
        replaced,
        f"{what}: {detail}; read as {used} with {replaced} unreadable character(s) replaced",
    )


# --- ISO-2022-JP → Shift_JIS (cp932) ----------------------------------------------------

_ESC = re.compile(rb"\x1b(\$[@B]|\$\([DOPQ]|\([BJHI]|\$[AG]|\$\([CD]|\.[AF]|N.|-[AF])")
_ASCII, _KANJI, _KANA, _OTHER = 0, 1, 2, 3
_MODES = {
    b"$@": _KANJI,
    b"$B": _KANJI,
    b"$(Q": _KANJI,  # JIS X 0213 plane 1 shares rows 1-94 with JIS X 0208 + NEC row 13
    b"$(O": _KANJI,
    b"(B": _ASCII,
    b"(J": _ASCII,
    b"(H": _ASCII,
    b"(I": _KANA,
}


def jis_to_sjis(data: bytes) -> bytes:
    """Convert ISO-2022-JP bytes to Shift_JIS (for decoding as cp932).

    Escapes to sets cp932 does not hold (JIS X 0212, GB 2312, KS C 5601) give 0x80 per
    byte pair, which cp932 rejects, so they count as replacement characters."""
    out = bytearray()
    mode = _ASCII
    pos = 0
    for m in _ESC.finditer(data):
        _convert_run(data[pos : m.start()], mode, out)
        seq = m.group(1)
        mode = _MODES.get(seq, _OTHER if seq[:1] == b"$" else mode)
        pos = m.end()
    _convert_run(data[pos:], mode, out)
    return bytes(out)


def _convert_run(run: bytes, mode: int, out: bytearray) -> None:
    if mode == _ASCII or not run:
        out += run.replace(b"\x1b", b"")
        return
    if mode == _KANA:
        out += bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in run)
        return
    i, n = 0, len(run)
    while i < n:
        j1 = run[i]
        if 0x21 <= j1 <= 0x7E and i + 1 < n and 0x21 <= run[i + 1] <= 0x7E:
            if mode == _OTHER:
                out += b"\x80\x80"
            else:
                j2 = run[i + 1]
                s1 = ((j1 - 0x21) >> 1) + 0x81
                if s1 > 0x9F:
                    s1 += 0x40
                s2 = (j2 + 0x1F + (j2 >= 0x60)) if j1 & 1 else (j2 + 0x7E)
                out += bytes((s1, s2))
            i += 2
        else:  # line ends and spaces pass; a stray byte becomes one cp932 rejects
            out.append(j1 if j1 in (0x0A, 0x0D, 0x20, 0x09) else 0x80)
            i += 1


# --- RFC 2047 ---------------------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([bBqQ])\?([^?]*)\?=")
_Q_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64decode_lenient(data: bytes) -> tuple[bytes, bool]:
    """Decode base64 keeping what decodes (junk skipped, padding repaired, several
    padded blobs one after the other). Returns (bytes, clean)."""
    data = data.translate(None, b" \t\r\n")
    junk = data.translate(None, _B64_ALPHABET + b"=")
    clean = not junk
    if junk:
        data = data.translate(None, bytes(set(junk)))
    body = data.rstrip(b"=")
    chunks = [c for c in re.split(rb"=+", body) if c] if b"=" in body else [body]
    if len(chunks) > 1:
        clean = False  # padding in the middle: blobs glued together
    out = bytearray()
    for chunk in chunks:
        if len(chunk) % 4 == 1:
            chunk = chunk[:-1]
            clean = False
        try:
            out += binascii.a2b_base64(chunk + b"=" * (-len(chunk) % 4))
        except (binascii.Error, ValueError):
            clean = False
    return bytes(out), clean


def _q_decode(text: bytes) -> bytes:
    return _Q_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), text.replace(b"_", b" "))


def decode_words(value: str, problems: list[str], what: str = "header") -> str:
    """Decode RFC 2047 encoded words in an already-unfolded str.

    Broken real-world forms handled: words glued to text, words split in the middle of a
    multibyte character (adjacent words with one charset are joined before decoding),
    unknown charsets (the ladder), bad base64 (what decodes is kept)."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []  # adjacent words: (charset label, bytes)
    pos = 0

    def flush() -> None:
        if not pending:
            return
        groups: list[tuple[str, bytearray]] = []
        for label, raw in pending:
            if groups and groups[-1][0].lower() == label.lower():
                groups[-1][1].extend(raw)
            else:
                groups.append((label, bytearray(raw)))
        for label, joined in groups:
            dec = decode_bytes(bytes(joined), label or None, ladder=HEADER_LADDER, what=what)
            if dec.problem:
                problems.append(dec.problem)
            out.append(dec.text)
        pending.clear()

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos : m.start()]
        if between and not (pending and between.isspace()):
            flush()
            out.append(between)
        label, enc, payload = m.group(1), m.group(2).lower(), m.group(3)
        raw = payload.encode("utf-8", "surrogateescape")
        data: bytes
        if enc == "b":
            data, ok = b64decode_lenient(raw)
            if not ok:
                problems.append(f"{what}: damaged base64 in an encoded word; kept what decodes")
        else:
            data = _q_decode(raw)
        pending.append((label.split("*", 1)[0], data))
        pos = m.end()
    tail = value[pos:]
    if tail:
        flush()
        out.append(tail)
    flush()
    return "".join(out)


def decode_8bit(
    raw: bytes, problems: list[str], hint: str | None = None, what: str = "header"
) -> str:
    """Header bytes → str: ASCII as is, unencoded 8-bit text through the header ladder."""
    if raw.isascii():
        return raw.decode("ascii")
    dec = decode_bytes(raw, None, ladder=HEADER_LADDER, hint=hint, what=what)
    if dec.problem:
        problems.append(dec.problem)
    return dec.text


def decode_header(
    raw: bytes, problems: list[str], hint: str | None = None, what: str = "header"
) -> str:
    """Unfolded header bytes → display text (8-bit ladder, then RFC 2047), not yet cleaned."""
    return decode_words(decode_8bit(raw, problems, hint, what), problems, what)


# --- cleaning ---------------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_BIDI = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE = re.compile(r"\s+")


def clean(value: str) -> str:
    """One line: no CR, LF, NUL, other control, bidi-override or surrogate characters."""
    value = _BIDI.sub("", _CONTROL.sub(" ", value))
    return _SPACE.sub(" ", value).strip()


_BODY_BAD = re.compile("[\x00\ud800-\udfff]")


def safe_body(text: str) -> str:
    """Body text that JSON/JSONB can hold: no NUL, no lone surrogates; LF line ends."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x00" not in text:  # nothing to replace unless a lone surrogate (cheaper to ask so)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return text
    return _BODY_BAD.sub(lambda m: "" if m.group() == "\x00" else REPLACEMENT, text)
