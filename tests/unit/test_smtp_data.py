"""SMTP DATA as a real MTA reads it: any line length, bare LF as a line end for
dot-unstuffing, and only CRLF.CRLF as the end of the data (services/ingestion/smtp_data.py)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingestion.smtp_data import DataReader

READER_LIMIT = 1001  # aiosmtpd's StreamReader limit: longer lines come in parts


def pieces(stream: bytes, part: int = READER_LIMIT + 1) -> list[bytes]:
    """The pieces `IntakeSMTP.smtp_DATA` hands over: lines up to LF, longer ones in parts."""
    out = []
    pos = 0
    while pos < len(stream):
        nl = stream.find(b"\n", pos)
        end = len(stream) if nl < 0 else nl + 1
        while end - pos > part:
            out.append(stream[pos : pos + part])
            pos += part
        out.append(stream[pos:end])
        pos = end
    return out


def read(stream: bytes, limit: int | None = None, part: int = READER_LIMIT + 1) -> DataReader:
    reader = DataReader(limit)
    for piece in pieces(stream, part):
        if reader.feed(piece):
            return reader
    raise AssertionError("the data did not end")


def expected(stream: bytes) -> bytes:
    """The content by the rules, written differently: up to the first CRLF.CRLF (or a
    first line "."), then the first dot of every line (after CRLF or bare LF) removed."""
    end = 0 if stream.startswith(b".\r\n") else stream.index(b"\r\n.\r\n") + 2
    return re.sub(rb"(?m)^\.", b"", stream[:end])


def test_a_crlf_mail_is_unstuffed_and_ends_at_crlf_dot_crlf() -> None:
    r = read(b"Subject: x\r\n\r\n..a dot\r\nbody\r\n.\r\n")
    assert r.content() == b"Subject: x\r\n\r\n.a dot\r\nbody\r\n"
    assert not r.too_large


def test_bare_lf_lines_are_kept_as_they_came_and_a_bare_dot_line_does_not_end_the_data() -> None:
    stream = (
        b"Subject: bare\n\nfirst\n.\nafter a bare LF dot\r\n.\nafter CRLF dot LF\n"
        b".\r\nafter LF dot CRLF\n..stuffed\nlast\r\n.\r\n"
    )
    r = read(stream)
    assert r.content() == (
        b"Subject: bare\n\nfirst\n\nafter a bare LF dot\r\n\nafter CRLF dot LF\n"
        b"\r\nafter LF dot CRLF\n.stuffed\nlast\r\n"
    )


def test_an_empty_mail_ends_at_its_first_line() -> None:
    assert read(b".\r\n").content() == b""


def test_a_line_of_any_length_is_taken_whole() -> None:
    line = b"X" * 250_000
    r = read(b"Subject: long\r\n\r\n" + line + b"\r\n.\r\n")
    assert r.content() == b"Subject: long\r\n\r\n" + line + b"\r\n"


def test_an_end_split_between_pieces_is_still_the_end() -> None:
    r = DataReader(None)
    for piece in (b"x" * 1500, b"\r", b"\n", b".", b"\r", b"\n"):
        done = r.feed(piece)
    assert done and r.content() == b"x" * 1500 + b"\r\n"
    r = DataReader(None)
    assert not r.feed(b"a\n")
    for piece in (b".", b"\r\n"):  # after a bare LF: a line of a dot, not the end
        assert not r.feed(piece)
    assert r.feed(b".\r\n") and r.content() == b"a\n\r\n"


def test_past_the_limit_the_content_is_dropped_and_the_end_still_found() -> None:
    r = read(b"y" * 5000 + b"\r\n.\r\n", limit=4096)
    assert r.too_large and r.content() == b"" and r.size == 5002
    r = read(b"y" * 4094 + b"\r\n.\r\n", limit=4096)
    assert not r.too_large and r.content() == b"y" * 4094 + b"\r\n"


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from([b"", b".", b"..", b"a", b".a", b"x" * 40, b"." + b"z" * 30]),
            st.sampled_from([b"\r\n", b"\n", b"\r", b""]),
        ),
        max_size=30,
    ),
    part=st.integers(min_value=1, max_value=64),
)
def test_any_mix_of_line_ends_and_splits_reads_as_the_rules_say(
    lines: list[tuple[bytes, bytes]], part: int
) -> None:
    stream = b"".join(a + b for a, b in lines) + b"\r\n.\r\n"
    assert read(stream, part=part).content() == expected(stream)
