"""Ingestion's MIME summary: decoded headers, and never an exception on real-world mail
(the shared corpora of other parsers' test suites, broken mail included)."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from services.ingestion.mime import clean, summarize

CORPORA = Path(__file__).resolve().parents[2].parent / "shared" / "corpora"


def _corpus() -> list[Path]:
    if not CORPORA.exists():
        return []
    files = [
        p
        for p in CORPORA.rglob("*")
        if p.is_file() and p.suffix.lower() in {".eml", ".raw", ".txt", ""}
    ]
    return sorted(p for p in files if p.stat().st_size < 5_000_000 and "LICENSE" not in p.name)


def test_encoded_japanese_subject_and_sender_are_decoded() -> None:
    msg = EmailMessage()
    msg["From"] = "山田 太郎 <taro@example.jp>"
    msg["To"] = "support@demo.example"
    msg["Subject"] = "ご注文の件"
    msg["Message-ID"] = "<abc@example.jp>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0900"
    msg.set_content("本文です。\n", charset="iso-2022-jp")
    s = summarize(msg.as_bytes())
    assert s.subject == "ご注文の件"
    assert (getattr(s, "from").name, getattr(s, "from").address) == ("山田 太郎", "taro@example.jp")
    assert s.rfc822_message_id == "abc@example.jp"
    assert s.snippet == "本文です。"
    assert s.date.ToDatetime().isoformat() == "2026-11-02T01:00:00"
    assert not s.auto_submitted and list(s.parse_problems) == []


def test_header_values_never_carry_line_breaks_or_nul() -> None:
    raw = (
        b"From: =?utf-8?q?Evil=0D=0ABcc=3A_x=40y?= <a@b.c>\r\n"
        b"Subject: =?utf-8?q?a=0Ab=00c?=\r\n\r\nbody\r\n"
    )
    s = summarize(raw)
    for value in (s.subject, getattr(s, "from").name):
        assert "\r" not in value and "\n" not in value and "\0" not in value
    assert clean("a\r\nb\x00c") == "a b c"


def test_bounces_and_auto_replies_are_marked_auto_submitted() -> None:
    for header in (b"Auto-Submitted: auto-replied", b"Precedence: bulk", b"X-Loop: x"):
        raw = b"From: a@b.c\r\nSubject: s\r\n" + header + b"\r\n\r\nhi\r\n"
        assert summarize(raw).auto_submitted, header
    assert summarize(b"From: MAILER-DAEMON@x.org\r\nSubject: s\r\n\r\nhi\r\n").auto_submitted
    assert not summarize(b"From: a@b.c\r\nAuto-Submitted: no\r\n\r\nhi\r\n").auto_submitted


def test_mail_with_no_headers_at_all_still_summarises() -> None:
    s = summarize(b"just some bytes \xff\xfe without headers")
    assert s.size_bytes == 34 and len(s.sha256) == 64


@pytest.mark.skipif(not _corpus(), reason="shared corpora not present")
def test_every_corpus_mail_summarises_without_raising() -> None:
    files = _corpus()
    problems = 0
    for path in files:
        s = summarize(path.read_bytes())
        assert s.size_bytes == path.stat().st_size
        problems += bool(s.parse_problems)
    assert len(files) > 250  # the four corpora hold ~300 mails
    print(f"{len(files)} corpus mails, {problems} with parse problems recorded")
