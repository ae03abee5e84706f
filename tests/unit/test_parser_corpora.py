"""The full MIME parser against mail nobody on this project wrote: the shared corpora
(/work/shared/corpora, see its README) and CPython's own email test messages."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from services.ingestion.parser import ParsedMail, parse, to_summary
from tests import shared
from tests.shared import CORPORA

STALWART = CORPORA / "stalwart-mail-parser" / "resources" / "eml"
MIKEL = CORPORA / "mikel-mail" / "spec" / "fixtures" / "emails"
FLANKER = CORPORA / "flanker" / "tests" / "fixtures" / "messages"

needs_corpora = shared.needs(CORPORA)


def _cpython_data() -> Path | None:
    try:
        import test  # CPython's test package; not every Python install ships it
    except ImportError:
        return None
    path = Path(os.path.dirname(test.__file__)) / "test_email" / "data"
    return path if path.is_dir() else None


CPYTHON = _cpython_data()
_NOT_MAIL = {".json", ".md", ".png", ".wav", ".gitattributes"}


def _messages(root: Path) -> list[Path]:
    """Every mail in a corpus: .eml/.raw files and the DKIM samples (email.NN)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and (
            p.suffix.lower() in {".eml", ".raw"} or (p.parent.name == "dkim" and p.stem == "email")
        )
    )


def _check(path: Path) -> ParsedMail:
    raw = path.read_bytes()
    parsed = parse(raw)
    json.dumps(parsed.to_json(), ensure_ascii=False).encode("utf-8")
    assert parsed.size == len(raw), path
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest(), path
    summary = to_summary(parsed)
    assert summary.size_bytes == len(raw) and summary.sha256 == parsed.sha256
    return parsed


@needs_corpora
def test_every_corpus_mail_parses() -> None:
    files = _messages(CORPORA)
    assert len(files) > 250, len(files)  # the four corpora hold ~300 mails
    with_defects = sum(bool(_check(p).defects) for p in files)
    not_ok = [p.name for p in files if not parse(p.read_bytes()).parsed_ok]
    # Every other file in the corpora (expected outputs, images, licences) must not break
    # parse() either: it never raises on any input.
    others = [p for p in CORPORA.rglob("*") if p.is_file() and p not in set(files)]
    for p in others:
        _check(p)
    print(
        f"\n{len(files)} corpus mails: {with_defects} with defects, "
        f"{len(not_ok)} not parsed_ok {not_ok}; {len(others)} other files parsed too"
    )
    assert not_ok == ["email.01"]  # the one 0-byte DKIM sample


@pytest.mark.skipif(CPYTHON is None, reason="CPython's test package (test_email/data) missing")
def test_every_cpython_email_test_message_parses() -> None:
    assert CPYTHON is not None
    files = sorted(p for p in CPYTHON.iterdir() if p.is_file())
    assert files
    mails = [p for p in files if p.suffix == ".txt"]
    with_defects = sum(bool(_check(p).defects) for p in files)
    assert all(parse(p.read_bytes()).parsed_ok for p in mails)
    print(
        f"\n{len(files)} CPython test_email files ({len(mails)} mails), {with_defects} with defects"
    )


# --- stalwart-mail-parser's expectations ------------------------------------------------------

# Where our reading differs from stalwart's on purpose. Each one is a genuinely ambiguous
# header; the test fails if a new mismatch appears or the count grows.
KNOWN_MISMATCHES = {
    # From: Moderator-Address <moderator> — stalwart takes the bare local part "moderator"
    # as the address. We treat an address without a domain as not an address (it cannot
    # be replied to): kept as text, valid=False, with a defect.
    "thirdparty/007.eml": "From address without a domain",
}


def _stalwart_cases() -> list[tuple[Path, str | None, dict[str, Any] | None]]:
    cases = []
    for expected in sorted(STALWART.glob("*/*.json")):
        if expected.name.endswith(".crlf.json"):
            continue  # the same expectations, for the file with CRLF line ends
        eml = expected.with_suffix(".eml")
        if not eml.exists():
            continue
        headers = json.loads(expected.read_text())["parts"][0]["headers"]
        subject = from_ = None
        for h in headers:
            value = h["value"]
            if not isinstance(value, dict):
                continue
            if h["name"] == "subject" and "Text" in value and subject is None:
                subject = value["Text"]
            if h["name"] == "from" and "List" in value.get("Address", {}) and from_ is None:
                from_ = value["Address"]["List"][0]
        cases.append((eml, subject, from_))
    return cases


@shared.needs(STALWART)
def test_subject_and_from_match_stalwart_expectations() -> None:
    cases = _stalwart_cases()
    checks = 0
    mismatches: dict[str, str] = {}
    for eml, subject, from_ in cases:
        parsed = parse(eml.read_bytes())
        name = f"{eml.parent.name}/{eml.name}"
        if subject is not None:
            checks += 1
            if parsed.subject != subject:
                mismatches[name] = f"subject {parsed.subject!r} != {subject!r}"
        if from_ is not None:
            checks += 1
            first = parsed.from_[0] if parsed.from_ else None
            got = (first.name, first.address) if first else None
            want = (from_["name"] or "", from_["address"] or "")
            if got != want:
                mismatches[name] = f"from {got!r} != {want!r}"
    print(f"\nstalwart: {len(cases)} mails, {checks} checks, {len(mismatches)} mismatches")
    for name, what in mismatches.items():
        print(f"  {name}: {what} ({KNOWN_MISMATCHES.get(name, 'NEW')})")
    assert checks >= 40
    assert set(mismatches) <= set(KNOWN_MISMATCHES), mismatches
    assert len(mismatches) <= len(KNOWN_MISMATCHES) == 1


# --- Japanese -------------------------------------------------------------------------------

JAPANESE_EXPECTED = {
    "mikel-mail/spec/fixtures/emails/multi_charset/japanese_iso_2022.eml": (
        "まみむめも",
        "すみません。",
    ),
    "mikel-mail/spec/fixtures/emails/multi_charset/japanese_shift_jis.eml": (
        "test",
        "あいうえお\n\nこのメールはテスト用のメールです。",
    ),
    "mikel-mail/spec/fixtures/emails/multi_charset/japanese.eml": ("まみむめも", "かきくえこ"),
    "mikel-mail/spec/fixtures/emails/rfc2822/example14.eml": ("Re: TEST テストテスト", "Hello"),
    "stalwart-mail-parser/resources/eml/thirdparty/010.eml": ("こんにちは", ""),
}


def _japanese_corpus() -> list[Path]:
    labels = (b"iso-2022-jp", b"shift_jis", b"shift-jis", b"euc-jp")
    found = {
        p for p in _messages(CORPORA) if any(label in p.read_bytes().lower() for label in labels)
    }
    return sorted(found | {CORPORA / k for k in JAPANESE_EXPECTED if (CORPORA / k).exists()})


@needs_corpora
def test_japanese_corpus_mails_decode_without_replacement_characters() -> None:
    files = _japanese_corpus()
    assert len(files) >= 7, files
    for path in files:
        parsed = parse(path.read_bytes())
        assert "\ufffd" not in parsed.subject, path
        assert "\ufffd" not in parsed.text, path
        for a in [*parsed.from_, *parsed.to]:
            assert "\ufffd" not in a.name, path
        key = str(path.relative_to(CORPORA))
        if key in JAPANESE_EXPECTED:
            subject, text = JAPANESE_EXPECTED[key]
            assert parsed.subject == subject, path
            assert parsed.text.startswith(text), (path, parsed.text[:80])
    # the EUC-JP part of stalwart's multi-charset mail, listed as an attachment
    multi = parse((STALWART / "thirdparty" / "005.eml").read_bytes())
    assert multi.text == "Test message\n" and multi.text_charset == "utf-16-le"
    assert len(multi.attachments) == 4


@needs_corpora
def test_japanese_attachment_names() -> None:
    parsed = parse((MIKEL / "multi_charset" / "japanese_attachment_long_name.eml").read_bytes())
    assert [a.filename for a in parsed.attachments] == ["かきくけこ" * 5 + ".txt"]
    parsed = parse((MIKEL / "multi_charset" / "japanese_attachment.eml").read_bytes())
    assert [(a.filename, a.size) for a in parsed.attachments] == [("てすと.txt", 33)]


# --- DSN ------------------------------------------------------------------------------------


@needs_corpora
def test_corpus_bounces_give_dsn_recipients() -> None:
    aol = parse((FLANKER / "bounce" / "mailbox-full.eml").read_bytes())
    assert aol.auto_submitted
    assert [(d.status, d.action, d.final_recipient) for d in aol.dsn] == [
        ("5.2.2", "failed", "user@aol.com")
    ]
    assert "MAILBOX FULL" in aol.dsn[0].diagnostic

    office = parse((FLANKER / "bounce" / "office365.eml").read_bytes())
    assert [(d.status, d.final_recipient) for d in office.dsn] == [("5.1.10", "noname@example.com")]

    multi = parse((MIKEL / "multipart_report_emails" / "multi_address_bounce1.eml").read_bytes())
    assert [d.status for d in multi.dsn] == ["5.1.1"] * 5  # five Final-Recipient blocks
    assert all(d.final_recipient.endswith("@gmail.com") for d in multi.dsn)

    delayed = parse((MIKEL / "multipart_report_emails" / "report_422.eml").read_bytes())
    assert [(d.status, d.action) for d in delayed.dsn] == [("4.2.2", "delayed")]
    assert "Auto-Submitted: auto-generated (warning-timeout)" in delayed.auto_reasons


# --- intake's parse ---------------------------------------------------------------------------


def _corpus_and_cpython() -> list[Path]:
    files = _messages(shared.required(CORPORA)) if CORPORA.is_dir() or shared.in_ci() else []
    if CPYTHON is not None:
        files += sorted(p for p in CPYTHON.iterdir() if p.is_file())
    return files


def test_intake_parse_differs_from_the_full_one_only_in_html_left_for_later() -> None:
    """`defer_html` (intake) records everything the full parse records — the summary, the
    problems, the attachments — and leaves at most the sanitised HTML out."""
    files = _corpus_and_cpython()
    if not files:
        pytest.skip("no corpus present")
    deferred = 0
    for path in files:
        raw = path.read_bytes()
        full, intake = parse(raw), parse(raw, defer_html=True)
        assert to_summary(intake) == to_summary(full), path
        got, want = intake.to_json(), full.to_json()
        if intake.html_deferred:
            deferred += 1
            assert got.pop("html") == "" and want.pop("html"), path
        assert got == want, path
        assert [a.data for a in intake.attachments] == [a.data for a in full.attachments], path
    print(f"\n{len(files)} mails, {deferred} with their HTML left for the first showing")
    assert deferred > 0


def test_the_header_block_alone_gives_the_dedupe_key_the_whole_peek_gave() -> None:
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    from services.ingestion.intake import HEADER_PEEK_BYTES, quick_headers

    files = _corpus_and_cpython()
    if not files:
        pytest.skip("no corpus present")
    for path in files:
        raw = path.read_bytes()
        msg = BytesHeaderParser(policy=compat32).parsebytes(raw[:HEADER_PEEK_BYTES])
        mid = " ".join(str(msg.get("Message-ID") or "").split()).strip().strip("<>")
        assert quick_headers(raw)[0] == mid[:998], path
