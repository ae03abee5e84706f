"""The full MIME parser (services/ingestion/parser.py): constructed cases.

Real-world corpora are in test_parser_corpora.py. Every test here is plain and synchronous.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import re
import time
import zipfile
from email.message import EmailMessage
from typing import Any

import pytest

from services.ingestion import mime_tree
from services.ingestion import parser as parser_module
from services.ingestion.charsets import clean, decode_bytes, jis_to_sjis, safe_body
from services.ingestion.parser import Limits, ParsedMail, parse, to_summary
from services.ingestion.sanitize import can_wait, html_complexity, too_complex

CRLF = b"\r\n"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def mail(*headers: str | bytes, body: bytes = b"hello\r\n") -> bytes:
    lines = [h.encode() if isinstance(h, str) else h for h in headers]
    return CRLF.join(lines) + CRLF + CRLF + body


def multipart(boundary: str, *parts: bytes, headers: tuple[str, ...] = (), kind="mixed") -> bytes:
    head = [*headers, f'Content-Type: multipart/{kind}; boundary="{boundary}"']
    b = boundary.encode()
    body = b"".join(b"--" + b + CRLF + p + CRLF for p in parts) + b"--" + b + b"--" + CRLF
    return mail(*head, body=body)


def part(*headers: str | bytes, body: bytes = b"") -> bytes:
    lines = [h.encode() if isinstance(h, str) else h for h in headers]
    return CRLF.join(lines) + CRLF + CRLF + body


def strings(value: Any, skip: tuple[str, ...] = ("text", "html")) -> list[str]:
    """Every str in a to_json() tree, bodies excepted (they keep their line breaks)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out.append(k)
            if k not in skip:
                out += strings(v, skip)
        return out
    if isinstance(value, list):
        return [s for v in value for s in strings(v, skip)]
    return []


def assert_sound(parsed: ParsedMail, raw: bytes) -> dict[str, Any]:
    """What holds for every parse: JSON-able, sha256/size right, no control characters."""
    data = parsed.to_json()
    json.dumps(data, ensure_ascii=False).encode("utf-8")  # JSONB needs encodable text
    assert "\x00" not in data["text"] and "\x00" not in data["html"]
    assert parsed.size == len(raw)
    assert parsed.sha256 == hashlib.sha256(raw).hexdigest()
    for s in strings(data):
        assert not _CONTROL.search(s), repr(s)
    assert len(parsed.defects) == len(set(parsed.defects))
    return data


# --- the MailSummary contract (the cases of test_mime_summary.py, against to_summary) -------


def test_encoded_japanese_subject_and_sender_are_decoded() -> None:
    msg = EmailMessage()
    msg["From"] = "山田 太郎 <taro@example.jp>"
    msg["To"] = "support@demo.example"
    msg["Subject"] = "ご注文の件"
    msg["Message-ID"] = "<abc@example.jp>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0900"
    msg.set_content("本文です。\n", charset="iso-2022-jp")
    s = to_summary(parse(msg.as_bytes()))
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
    s = to_summary(parse(raw))
    for value in (s.subject, getattr(s, "from").name):
        assert "\r" not in value and "\n" not in value and "\0" not in value
    assert getattr(s, "from").address == "a@b.c"
    assert clean("a\r\nb\x00c") == "a b c"


def test_bounces_and_auto_replies_are_marked_auto_submitted() -> None:
    for header in (b"Auto-Submitted: auto-replied", b"Precedence: bulk", b"X-Loop: x"):
        raw = b"From: a@b.c\r\nSubject: s\r\n" + header + b"\r\n\r\nhi\r\n"
        assert to_summary(parse(raw)).auto_submitted, header
    assert to_summary(
        parse(b"From: MAILER-DAEMON@x.org\r\nSubject: s\r\n\r\nhi\r\n")
    ).auto_submitted
    assert not to_summary(parse(b"From: a@b.c\r\nAuto-Submitted: no\r\n\r\nhi\r\n")).auto_submitted


def test_mail_with_no_headers_at_all_still_summarises() -> None:
    raw = b"just some bytes \xff\xfe without headers"
    s = to_summary(parse(raw))
    assert s.size_bytes == 34 and len(s.sha256) == 64
    assert_sound(parse(raw), raw)


def test_summary_fills_every_field() -> None:
    raw = multipart(
        "b1",
        part("Content-Type: text/plain; charset=utf-8", body=b"  Hello\r\n\r\n  world  "),
        part(
            "Content-Type: application/pdf",
            "Content-Disposition: attachment; filename=a.pdf",
            "Content-Transfer-Encoding: base64",
            body=base64.encodebytes(b"%PDF-1.4"),
        ),
        headers=(
            "From: Ann <ann@example.com>",
            "To: Bob <bob@example.com>, carl@example.com",
            "Cc: dee@example.com",
            "Subject: Status",
            "Message-ID: <m1@example.com>",
            "In-Reply-To: <m0@example.com>",
            "References: <r1@example.com> <m0@example.com>",
            "Date: Tue, 03 Nov 2026 09:30:00 +0000",
            "Precedence: bulk",
        ),
    )
    parsed = parse(raw)
    s = to_summary(parsed)
    assert s.rfc822_message_id == "m1@example.com" and s.in_reply_to == "m0@example.com"
    assert list(s.references) == ["r1@example.com", "m0@example.com"]
    assert s.subject == "Status" and getattr(s, "from").address == "ann@example.com"
    assert [a.address for a in s.to] == ["bob@example.com", "carl@example.com"]
    assert [a.address for a in s.cc] == ["dee@example.com"]
    assert s.date.ToDatetime().isoformat() == "2026-11-03T09:30:00"
    assert s.size_bytes == len(raw) and s.sha256 == hashlib.sha256(raw).hexdigest()
    assert s.snippet == "Hello world"
    assert s.has_attachments and s.auto_submitted
    assert list(s.parse_problems) == parsed.defects == []


def test_snippet_is_200_characters_of_folded_text() -> None:
    s = to_summary(parse(mail("Subject: x", body=("word \r\n\t" * 100).encode())))
    assert len(s.snippet) == 200 and "  " not in s.snippet and "\n" not in s.snippet


# --- to_json ---------------------------------------------------------------------------------


def test_to_json_shape_and_no_attachment_bytes() -> None:
    raw = multipart(
        "x",
        part("Content-Type: text/plain", body=b"hi"),
        part("Content-Type: image/png", "Content-Transfer-Encoding: base64", body=b"iVBORw0K"),
        headers=("From: a@b.c", "Subject: s"),
    )
    parsed = parse(raw)
    data = assert_sound(parsed, raw)
    assert set(data) >= {
        "size", "sha256", "parsed_ok", "defects", "message_id", "in_reply_to", "references",
        "subject", "date", "from", "to", "cc", "reply_to", "sender", "text", "html",
        "html_raw_size", "remote_images", "inline_images", "attachments", "attachment_count",
        "parts", "auto_submitted", "auto_reasons", "dsn", "spam", "text_charset",
    }  # fmt: skip
    att = data["attachments"][0]
    assert set(att) == {
        "index", "filename", "content_type", "size", "sha256", "disposition", "content_id",
        "is_winmail", "part", "decoded",
    }  # fmt: skip
    assert "data" not in json.dumps(data)
    assert parsed.attachments[0].data == base64.b64decode(b"iVBORw0K")
    assert data["from"][0] == {"name": "", "address": "a@b.c", "raw": "a@b.c", "valid": True}
    assert data["spam"] == {"flagged": False, "score": None, "source": ""}
    assert [p["role"] for p in data["parts"]] == ["container", "text", "attachment"]


# --- header fields --------------------------------------------------------------------------


def test_message_ids_and_references() -> None:
    p = parse(
        mail(
            "Message-ID:   <abc@x.y>  ",
            "In-Reply-To: <prev@x.y> (from Bob)",
            "References: <a@x>\r\n <b@x>\r\n\t<a@x> garbage",
        )
    )
    assert (p.message_id, p.in_reply_to, p.references) == ("abc@x.y", "prev@x.y", ["a@x", "b@x"])
    assert parse(mail("Subject: none")).message_id == ""
    assert parse(mail("Message-ID: no-brackets@x")).message_id == "no-brackets@x"


def test_date_is_utc_iso_or_none_with_a_defect() -> None:
    assert parse(mail("Date: Mon, 02 Nov 2026 10:00:00 +0900")).date == "2026-11-02T01:00:00+00:00"
    assert parse(mail("Date: 2 Nov 2026 10:00 -0000")).date == "2026-11-02T10:00:00+00:00"
    bad = parse(mail("Date: the day after tomorrow"))
    assert bad.date is None and any("Date" in d for d in bad.defects)
    assert parse(mail("Subject: no date")).date is None


def test_subject_rfc2047_and_broken_forms() -> None:
    cases = {
        b"=?UTF-8?B?44GT44KT44Gr44Gh44Gv?=": "こんにちは",
        b"=?iso-8859-1?q?caf=E9?= au lait": "café au lait",
        b"=?utf-8?q?a?= =?utf-8?q?b?=": "ab",  # white space between words goes
        b"Re:=?utf-8?q?glued?=": "Re:glued",
        # a multibyte character split over two words
        b"=?utf-8?b?44GT44KT44Gr?= =?utf-8?b?44Gh44Gv?=": "こんにちは",
        b"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=": "テスト",
        b"=?x-unknown-thing?q?caf=C3=A9?=": "café",  # unknown charset → the ladder
        b"=?utf-8?b?44GT44KT44Gr44Gh44Gv?": "=?utf-8?b?44GT44KT44Gr44Gh44Gv?",  # unterminated
        b"=?utf-8?b?44GT44KT44Gr44Gh44G?=": "こんにち\ufffd",  # damaged base64
        "Grüße aus Köln".encode(): "Grüße aus Köln",  # raw UTF-8 (RFC 6532)
    }
    for raw, want in cases.items():
        p = parse(mail(b"Subject: " + raw))
        assert p.subject == want, raw
    unknown = parse(mail(b"Subject: =?x-unknown-thing?q?caf=C3=A9?="))
    assert any("x-unknown-thing" in d for d in unknown.defects)


def test_control_characters_never_leave_the_parser() -> None:
    raw = multipart(
        "c",
        part("Content-Type: text/plain", body=b"line1\r\nline2\x00"),
        part(
            "Content-Type: application/octet-stream",
            'Content-Disposition: attachment; filename="=?utf-8?q?a=0Db=0A=00c.txt?="',
            "Content-ID: <x\x01y@z>",
            body=b"data",
        ),
        headers=(
            "From: =?utf-8?q?Eve=0D=0ABcc=3A_victim=40x.com?= <eve@example.com>",
            "To: =?utf-8?b?" + base64.b64encode(b"A\x00B\x1b[31m\r\n").decode() + "?= <a@b.c>",
            "Subject: =?utf-8?q?a=0D=0Ab=00c=1B=7F=C2=85d=E2=80=A8e?=",
            "Reply-To: x\x0b\x0c@y.z",
            "Message-ID: <id\x07@x>",
            "X-Spam-Status: Yes\x00, score=9",
        ),
    )
    raw = raw.replace(b"Subject:", b"X-Raw: a\rb\x00c\r\nSubject:")
    p = parse(raw)
    data = assert_sound(p, raw)
    assert p.subject == "a b c d e"
    assert p.from_[0].name == "Eve Bcc: victim@x.com" and p.from_[0].address == "eve@example.com"
    assert p.to[0].name == "A B [31m"
    assert p.attachments[0].filename == "a b c.txt"
    assert data["text"] == "line1\nline2"


def test_invalid_utf8_in_headers_and_bodies() -> None:
    raw = mail(
        b"Subject: caf\xc3 \xff\xfe ok",
        b"From: =?utf-8?q?Jo=FF=FEe?= <jo@example.com>",
        b"Content-Type: text/plain; charset=utf-8",
        body=b"valid \xe2\x82\xac then \xff\xfe\xc3(",
    )
    p = parse(raw)
    assert_sound(p, raw)
    assert p.from_[0].address == "jo@example.com"
    assert p.text.startswith("valid ") and p.text_charset
    assert p.defects  # the charset problem is named
    assert p.parsed_ok


# --- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name", "address", "valid"),
    [
        ("=?utf-8?q?evil=40x.com?= <real@y>", "evil@x.com", "real@y", True),
        ('"=?utf-8?q?evil=40x.com?=" <real@y>', "evil@x.com", "real@y", True),
        ("=?utf-8?q?=3Cevil=40x.com=3E?= <real@y>", "<evil@x.com>", "real@y", True),
        ("evil@x.com <real@y>", "evil@x.com", "real@y", True),
        ("=?utf-8?q?evil=40x.com?=", "evil@x.com", "", False),
        ("=?utf-8?b?ZXZpbEB4LmNvbQ==?=", "evil@x.com", "", False),
        ("=?utf-8?q?evil?=@x.com", "evil@x.com", "", False),
        ("Support <=?utf-8?q?evil=40x.com?=>", "Support", "", False),
        ("just text", "just text", "", False),
        ("<>", "", "", False),
    ],
)
def test_addresses_are_never_fabricated_from_encoded_words(
    header: str, name: str, address: str, valid: bool
) -> None:
    for field in ("From", "Reply-To", "Sender", "To", "Cc"):
        p = parse(mail(f"{field}: {header}"))
        got = {"From": p.from_, "Reply-To": p.reply_to, "Sender": p.sender, "To": p.to}.get(
            field, p.cc
        )
        assert [(a.name, a.address, a.valid) for a in got] == [(name, address, valid)], field
        assert all("@" not in a.address or a.valid for a in got)
        if not valid:
            assert any("not a valid address" in d for d in p.defects)
            assert got[0].raw == clean(header)
    assert to_summary(parse(mail("From: =?utf-8?q?evil=40x.com?="))).ListFields()  # no crash


def test_address_lists_groups_comments_and_sloppy_forms() -> None:
    p = parse(
        mail(
            'To: "Jones, Bob" <bob@x.org>, Team: ann@x.org, <cy@x.org>;, (only a comment)',
            "Cc: undisclosed-recipients:;",
            "From: Pete(his name) <pete(account)@silly.test(host)>",
            "Reply-To: a@x.org b@x.org",
            "Sender: Big Bug bb@bug.com",
        )
    )
    assert [(a.name, a.address) for a in p.to] == [
        ("Jones, Bob", "bob@x.org"),
        ("", "ann@x.org"),
        ("", "cy@x.org"),
    ]
    assert p.cc == []
    assert [(a.name, a.address) for a in p.from_] == [("Pete", "pete@silly.test")]
    assert [a.address for a in p.reply_to] == ["a@x.org", "b@x.org"]
    assert [(a.name, a.address) for a in p.sender] == [("Big Bug", "bb@bug.com")]
    assert all(a.valid for a in [*p.to, *p.from_, *p.reply_to, *p.sender])


def test_display_names_are_decoded() -> None:
    p = parse(
        mail(
            "From: =?ISO-2022-JP?B?GyRCOzNFRBsoQiAbJEJCQE86GyhC?= <taro@example.jp>",
            b"To: \x8eR\x93c \x91\xbe\x98Y <t@example.jp>",  # raw 8-bit Shift_JIS
            "Cc: =?iso-8859-1?q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
        )
    )
    assert p.from_[0].name == "山田 太郎"
    assert p.to[0].name == "山田 太郎"
    assert p.cc[0].name == "André Pirard"


# --- charsets (ING-3) -----------------------------------------------------------------------


def _sjis_to_jis(text: str) -> bytes:
    """ISO-2022-JP bytes for `text`, built from its cp932 encoding (this is how Microsoft
    mailers send vendor characters such as ① and ㈱, which no iso2022_jp codec encodes)."""
    out = bytearray()
    kanji = False
    for ch in text:
        b = ch.encode("cp932")
        if len(b) == 1:
            if kanji:
                out += b"\x1b(B"
                kanji = False
            out += b
            continue
        if not kanji:
            out += b"\x1b$B"
            kanji = True
        s1, s2 = b
        s1 = s1 - 0x40 if s1 >= 0xE0 else s1
        if s2 >= 0x9F:
            j1, j2 = (s1 - 0x81) * 2 + 0x22, s2 - 0x7E
        else:
            j1, j2 = (s1 - 0x81) * 2 + 0x21, s2 - 0x1F - (1 if s2 >= 0x80 else 0)
        out += bytes((j1, j2))
    if kanji:
        out += b"\x1b(B"
    return bytes(out)


def test_constructed_iso2022jp_with_vendor_characters_is_what_it_claims() -> None:
    jis = _sjis_to_jis("①㈱")
    # JIS X 0213 put NEC row 13 where Microsoft did: Python's iso2022_jp_2004 encoder gives
    # the same byte pairs, only behind its own escape sequence.
    want = "①㈱".encode("iso2022_jp_2004").replace(b"\x1b$(Q", b"\x1b$B")
    assert jis == want == b"\x1b$B-!-j\x1b(B"
    for codec in ("iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp_ext"):
        with pytest.raises(UnicodeDecodeError):
            jis.decode(codec)
    assert jis_to_sjis(jis).decode("cp932") == "①㈱"
    # plain JIS X 0208 text converts the same as the standard codec decodes it
    plain = "日本語のテキスト、ＡＢＣ。".encode("iso2022_jp")
    assert jis_to_sjis(plain).decode("cp932") == plain.decode("iso2022_jp")
    assert _sjis_to_jis("日本語のテキスト、ＡＢＣ。") == plain


def _japanese(charset: str, body: bytes, cte: str = "7bit", subject: bytes = b"test") -> bytes:
    return mail(
        b"Subject: " + subject,
        "From: a@example.jp",
        "MIME-Version: 1.0",
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {cte}",
        body=body,
    )


def test_iso2022jp_with_microsoft_vendor_characters() -> None:
    text = "株式会社①のご案内㈱、髙﨑様\r\n"
    p = parse(_japanese("ISO-2022-JP", _sjis_to_jis(text)))
    assert p.text == text.replace("\r\n", "\n")
    assert p.text_charset == "iso-2022-jp+cp932" and p.parsed_ok and not p.defects


def test_iso2022jp_label_on_euc_jp_bytes() -> None:
    text = "お問い合わせありがとうございます。担当者よりご連絡いたします。"
    p = parse(_japanese("iso-2022-jp", text.encode("euc_jp"), "8bit"))
    assert p.text == text and p.text_charset == "euc_jp"
    assert any("iso-2022-jp" in d and "euc_jp" in d for d in p.defects)


def test_iso2022jp_label_on_utf8_bytes() -> None:
    text = "こんにちは、世界。ご確認ください。"
    p = parse(_japanese("ISO-2022-JP", text.encode("utf-8"), "8bit"))
    assert p.text == text and p.text_charset == "utf-8"


def test_shift_jis_with_vendor_characters() -> None:
    text = "①②③ ㈱テスト 髙橋 ～"  # cp932 has FULLWIDTH TILDE where JIS has WAVE DASH
    p = parse(_japanese('"Shift_JIS"', text.encode("cp932"), "8bit"))
    assert p.text == text and p.text_charset == "cp932" and not p.defects


def test_unencoded_8bit_shift_jis_and_euc_in_the_subject() -> None:
    subject = "お問い合わせ①について"
    p = parse(_japanese("Shift_JIS", "本文".encode("cp932"), "8bit", subject.encode("cp932")))
    assert p.subject == subject
    # without a body charset to hint at it
    assert parse(mail(b"Subject: " + subject.encode("cp932"))).subject == subject
    euc = "日本語の件名です"
    assert parse(mail(b"Subject: " + euc.encode("euc_jp"))).subject == euc


@pytest.mark.parametrize(
    ("label", "text", "codec", "used"),
    [
        ("gb2312", "中文测试，谢谢", "gb18030", "gb18030"),
        ("GBK", "中文测试，谢谢", "gbk", "gb18030"),
        ("big5", "繁體中文測試", "big5", "big5hkscs"),
        ("koi8-r", "Привет, мир", "koi8-r", "koi8-r"),
        ("windows-1251", "Привет, мир", "cp1251", "cp1251"),
        ("ks_c_5601-1987", "안녕하세요", "cp949", "cp949"),
        ("iso-8859-1", "Grüße, café", "latin-1", "cp1252"),
        ("windows-1252", "“quoted” – dash", "cp1252", "cp1252"),
        ("euc-jp", "日本語", "euc_jp", "euc_jp"),
    ],
)
def test_declared_charsets(label: str, text: str, codec: str, used: str) -> None:
    p = parse(_japanese(label, text.encode(codec), "8bit"))
    assert p.text == text and p.text_charset == used and not p.defects


def test_unknown_and_garbage_charset_names_fall_through_the_ladder() -> None:
    for label in ("x-klingon", "utf-99", '"><script>', "base64", "zlib", "unicode_escape"):
        p = parse(_japanese(label, "日本語 ①".encode("cp932"), "8bit"))
        assert p.text == "日本語 ①", label
        assert any("unknown charset" in d for d in p.defects), label
    d = decode_bytes("café".encode(), "rot13")
    assert d.text == "café" and d.problem


def test_undecodable_bytes_give_fewest_replacements_and_a_defect() -> None:
    p = parse(_japanese("utf-8", b"ok \x80\x81\xfe\xff end", "8bit"))
    assert p.text.startswith("ok ") and p.text.endswith(" end")
    assert any("unreadable character" in d for d in p.defects)


def test_charset_used_is_recorded_per_text_part() -> None:
    raw = multipart(
        "alt",
        part("Content-Type: text/plain; charset=shift_jis", body="テキスト".encode("cp932")),
        part("Content-Type: text/html", body='<meta charset="euc-jp"><p>ＨＴＭＬ'.encode("euc_jp")),
        kind="alternative",
    )
    p = parse(raw)
    assert (p.text, p.text_charset, p.html_charset) == ("テキスト", "cp932", "euc_jp")
    assert "ＨＴＭＬ" in p.html
    assert {(x.role, x.charset, x.charset_used) for x in p.parts if x.role != "container"} == {
        ("text", "shift_jis", "cp932"),
        ("html", "", "euc_jp"),
    }


# --- attachments (ING-4) --------------------------------------------------------------------


def test_attachment_names_sizes_hashes() -> None:
    pdf = b"%PDF-1.7 fake" * 100
    raw = multipart(
        "m",
        part("Content-Type: text/plain", body=b"see attached"),
        part(
            "Content-Type: application/pdf",
            "Content-Disposition: attachment; filename*0*=UTF-8''%E8%AB%8B%E6%B1%82;",
            " filename*1*=%E6%9B%B8.pdf",
            "Content-Transfer-Encoding: base64",
            body=base64.encodebytes(pdf),
        ),
        part(
            'Content-Type: text/plain; name="=?UTF-8?B?44Gm44GZ44GoLnR4dA==?="',
            "Content-Disposition: attachment",
            body=b"x",
        ),
        part(
            "Content-Type: application/octet-stream",
            'Content-Disposition: attachment; filename="..\\\\..\\\\windows/evil\x07.exe"',
            body=b"MZ",
        ),
        part("Content-Type: image/jpeg", "Content-ID: <img1@x>", body=b"\xff\xd8"),
        part("Content-Type: application/ms-tnef", body=b"\x78\x9f\x3e\x22"),
        part(
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment; filename=WINMAIL.DAT",
            body=b"tnef",
        ),
        part(
            "Content-Type: application/octet-stream",
            b"Content-Disposition: attachment; filename=\xe7\xae\xa1\xe7\x90\x86.doc",
            body=b"doc",
        ),
    )
    p = parse(raw)
    assert_sound(p, raw)
    names = [a.filename for a in p.attachments]
    assert names == [
        "請求書.pdf",
        "てすと.txt",
        "evil .exe",
        "attachment-4.jpg",
        "attachment-5.dat",
        "WINMAIL.DAT",
        "管理.doc",
    ]
    first = p.attachments[0]
    assert (first.size, first.sha256) == (len(pdf), hashlib.sha256(pdf).hexdigest())
    assert (first.data, first.disposition, first.content_type) == (
        pdf,
        "attachment",
        "application/pdf",
    )
    assert p.attachments[3].content_id == "img1@x"
    assert [a.is_winmail for a in p.attachments] == [False] * 4 + [True, True, False]
    assert p.text == "see attached" and p.attachment_count == 7


def test_bad_base64_keeps_what_decodes() -> None:
    raw = multipart(
        "b",
        part("Content-Type: text/plain", body=b"x"),
        part(
            "Content-Type: application/octet-stream",
            "Content-Disposition: attachment; filename=f.bin",
            "Content-Transfer-Encoding: base64",
            body=b"aGVsbG8g!!d29y*bGQ\r\n=\r\n",
        ),
    )
    p = parse(raw)
    assert p.attachments[0].data == b"hello world"
    assert any("base64" in d for d in p.defects) and p.parsed_ok


def test_zip_bomb_is_listed_at_its_compressed_size() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("zeros.bin", bytes(64 * 1024 * 1024))
    bomb = buf.getvalue()
    assert len(bomb) < 200_000
    raw = multipart(
        "z",
        part("Content-Type: text/plain", body=b"open me"),
        part(
            "Content-Type: application/zip; name=bomb.zip",
            "Content-Transfer-Encoding: base64",
            body=base64.encodebytes(bomb),
        ),
    )
    started = time.perf_counter()
    p = parse(raw)
    assert (
        time.perf_counter() - started < 20
    )  # a guard against super-linear blow-ups, not a speed target
    att = p.attachments[0]
    assert (att.filename, att.size, att.data) == ("bomb.zip", len(bomb), bomb)
    assert att.sha256 == hashlib.sha256(bomb).hexdigest()
    assert len(json.dumps(p.to_json())) < 10_000  # nothing expanded anywhere


def test_embedded_message_is_one_attachment_named_after_its_subject() -> None:
    inner = mail("From: x@y.z", "Subject: Original / question", body=b"inner text")
    raw = multipart(
        "f",
        part("Content-Type: text/plain", body=b"forwarding"),
        part("Content-Type: message/rfc822", body=inner),
    )
    p = parse(raw)
    assert p.text == "forwarding"
    assert [(a.filename, a.content_type, a.data) for a in p.attachments] == [
        ("Original _ question.eml", "message/rfc822", inner)
    ]


def test_listing_cap_and_decoded_bytes_limit() -> None:
    parts = [part("Content-Type: application/octet-stream", body=b"x" * 1000) for _ in range(30)]
    raw = multipart("c", part("Content-Type: text/plain", body=b"t"), *parts)
    p = parse(raw, Limits(max_attachments=10))
    assert len(p.attachments) == 10 and p.attachment_count == 30
    assert any("only the first 10" in d for d in p.defects)
    q = parse(raw, Limits(max_decoded_bytes=5_500))
    assert not q.parsed_ok and any("decoded content over" in d for d in q.defects)
    assert [a.decoded for a in q.attachments].count(True) == 5
    assert all(a.sha256 == "" and a.size == 0 for a in q.attachments if not a.decoded)


# --- HTML -----------------------------------------------------------------------------------

HOSTILE_HTML = """<html><head><title>T</title><style>body{background:url(https://t.example/x)}</style>
<script>alert(1)</script></head><body onload="steal()">
<p style="color:red;width:expression(alert(1));background:url(https://t.example/bg)">Hello</p>
<img src="https://track.example/pixel.gif?u=1&amp;v=2" width="1">
<img src=" HTTP:\\\\evil.example/a">
<img src="//evil.example/b.png"><img src="cid:logo@x" alt="logo" onerror="x()">
<img src="javascript:alert(1)"><img src="data:image/png;base64,iVBORw0K">
<iframe src="https://evil.example/"></iframe><object data="x.swf"></object><embed src="x">
<form action="https://evil.example/"><input name="pw" type="password"><button>Go</button></form>
<a href="javascript:alert(1)">js</a>
<a href="https://ok.example/" target="_top" onclick="x()">ok</a>
<a href="java&#x09;script:alert(2)">tab</a> <a href="mailto:a@b.c">mail</a>
<svg onload="alert(1)"><script>alert(2)</script></svg>
</body></html>"""


def test_html_is_sanitised_and_remote_images_blocked() -> None:
    raw = multipart(
        "r",
        part("Content-Type: text/html; charset=utf-8", body=HOSTILE_HTML.encode()),
        part(
            "Content-Type: image/png",
            "Content-ID: <logo@x>",
            "Content-Disposition: inline",
            body=b"\x89PNG",
        ),
        kind="related",
    )
    p = parse(raw)
    assert_sound(p, raw)
    html = p.html.lower()
    for bad in ("<script", "onload", "onerror", "onclick", "<iframe", "<object", "<embed",
                "<form", "<input", "<button", "javascript:", "expression", "url(", "<style",
                "<svg", "_top"):  # fmt: skip
        assert bad not in html, bad
    assert not re.search(r'\ssrc="\s*(?:https?:|//)', html)
    assert p.remote_images == 3
    assert html.count("data-sb-blocked-src=") == 3
    assert 'data-sb-blocked-src="https://track.example/pixel.gif?u=1&amp;v=2"' in p.html
    assert 'src="cid:logo@x"' in p.html and 'src="data:image/png;base64,iVBORw0K"' in p.html
    assert 'href="https://ok.example/"' in p.html and 'href="mailto:a@b.c"' in p.html
    for a in re.findall(r"<a\b[^>]*>", p.html):
        assert 'rel="noopener noreferrer"' in a and 'target="_blank"' in a
    assert 'style="color:red"' in p.html
    assert p.inline_images == {"logo@x": 0}
    assert p.attachments[0].disposition == "inline" and p.attachments[0].content_id == "logo@x"
    assert p.html_raw_size == len(HOSTILE_HTML.encode())
    # no text/plain part: the text is a rendering of the HTML, without script or style
    assert "Hello" in p.text and "alert" not in p.text and "background" not in p.text


def test_cid_references_without_a_part_are_named() -> None:
    p = parse(mail("Content-Type: text/html", body=b'<img src="cid:missing@x">'))
    assert p.inline_images == {} and any("cid:missing@x" in d for d in p.defects)


def test_alternative_keeps_plain_text_and_sanitised_html() -> None:
    raw = multipart(
        "a",
        part("Content-Type: text/plain", body=b"plain version"),
        part("Content-Type: text/html", body=b"<p>html <b>version</b></p>"),
        kind="alternative",
    )
    p = parse(raw)
    assert p.text == "plain version" and p.html == "<p>html <b>version</b></p>"
    assert p.attachments == []
    blank = multipart(
        "a",
        part("Content-Type: text/plain", body=b" \r\n"),
        part("Content-Type: text/html", body=b"<p>only here</p>"),
        kind="alternative",
    )
    assert parse(blank).text == "only here"


# --- automatic mail (ING-7), DSN, spam (ING-5) ----------------------------------------------


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Precedence: junk", "Precedence: junk"),
        ("Precedence: auto_reply", "Precedence: auto_reply"),
        ("X-Loop: support@x", "X-Loop"),
        ("X-Auto-Response-Suppress: All", "X-Auto-Response-Suppress: All"),
        ("List-Id: <dev.lists.x>", "List-Id"),
        ("List-Unsubscribe: <mailto:u@x>", "List-Unsubscribe"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("X-Autorespond: yes", "X-Autorespond"),
        ("Return-Path: <>", "Return-Path: <> (a bounce)"),
        ("Return-Path: <MAILER-DAEMON@mx.x>", "Return-Path: MAILER-DAEMON@mx.x"),
        ("Sender: postmaster@x.org", "sender postmaster@x.org"),
        (
            "Content-Type: multipart/report; report-type=delivery-status; boundary=q",
            "Content-Type: multipart/report",
        ),
    ],
)
def test_automatic_mail_reasons(header: str, reason: str) -> None:
    p = parse(mail("From: someone@x.org", header))
    assert p.auto_submitted and reason in p.auto_reasons


def test_ordinary_mail_is_not_automatic() -> None:
    p = parse(mail("From: a@b.c", "Auto-Submitted: no", "X-Auto-Response-Suppress: None"))
    assert not p.auto_submitted and p.auto_reasons == []
    envelope = parse(b"From MAILER-DAEMON Mon Nov  2 10:00:00 2026\r\n" + mail("Subject: x"))
    assert envelope.auto_submitted and envelope.subject == "x"


def test_dsn_recipients_are_extracted() -> None:
    status = (
        b"Reporting-MTA: dns; mx.example.com\r\n\r\n"
        b"Original-Recipient: rfc822;gone@example.org\r\n"
        b"Final-Recipient: rfc822; gone@example.org\r\n"
        b"Action: failed\r\n"
        b"Status: 5.1.1\r\n"
        b"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown\r\n\r\n"
        b"Final-Recipient: RFC822; <later@example.org>\r\n"
        b"Action: delayed\r\n"
        b"Status: 4.4.7 (delivery time expired)\r\n"
    )
    raw = multipart(
        "dsn",
        part("Content-Type: text/plain", body=b"Delivery failed."),
        part("Content-Type: message/delivery-status", body=status),
        part("Content-Type: text/rfc822-headers", body=b"Subject: hi\r\n"),
        headers=("From: Mail Delivery System <MAILER-DAEMON@mx.example.com>",),
        kind="report; report-type=delivery-status",
    )
    p = parse(raw)
    assert [d.to_json() for d in p.dsn] == [
        {
            "status": "5.1.1",
            "action": "failed",
            "final_recipient": "gone@example.org",
            "original_recipient": "gone@example.org",
            "diagnostic": "550 5.1.1 <gone@example.org>: User unknown",
        },
        {
            "status": "4.4.7",
            "action": "delayed",
            "final_recipient": "later@example.org",
            "original_recipient": "",
            "diagnostic": "",
        },
    ]
    assert p.auto_submitted and p.text == "Delivery failed."


@pytest.mark.parametrize(
    ("headers", "flagged", "score"),
    [
        (("X-Spam-Flag: YES",), True, None),
        (("X-Spam-Status: Yes, score=7.3 required=5.0 tests=BAYES_99",), True, 7.3),
        (("X-Spam-Status: No, score=-1.2 required=5.0",), False, -1.2),
        (("X-Spam-Score: 12.5",), False, 12.5),  # a bare score never flags
        (("X-Spam: Yes",), True, None),
        (("X-MS-Exchange-Organization-SCL: 6",), True, None),
        (("X-MS-Exchange-Organization-SCL: 1",), False, None),
        (("X-Forefront-Antispam-Report: CIP:1.2.3.4;CTRY:;SFV:SPM;SCL:9;",), True, None),
        (("Authentication-Results: mx; spf=fail; dmarc=fail action=quarantine",), True, None),
        (("Authentication-Results: mx; dkim=pass; dmarc=pass action=none",), False, None),
        (("X-Spam-Flag: NO", "X-Spam-Status: No, score=0.1"), False, 0.1),
        ((), False, None),
    ],
)
def test_spam_verdicts(headers: tuple[str, ...], flagged: bool, score: float | None) -> None:
    spam = parse(mail("From: a@b.c", *headers)).spam
    assert (spam.flagged, spam.score) == (flagged, score)
    assert bool(spam.source) >= flagged


# --- bad input ------------------------------------------------------------------------------


def test_empty_input() -> None:
    p = parse(b"")
    assert not p.parsed_ok and p.defects == ["empty message (0 bytes)"]
    assert p.sha256 == hashlib.sha256(b"").hexdigest() and p.size == 0
    assert to_summary(p).size_bytes == 0


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20261102)
    for size in (1, 2, 7, 64, 1000, 65_536, 300_000):
        raw = rng.randbytes(size)
        assert_sound(parse(raw), raw)


def test_mutated_mails_never_raise() -> None:
    base = multipart(
        "mut",
        part("Content-Type: text/plain; charset=iso-2022-jp", body=_sjis_to_jis("①テスト\r\n")),
        part(
            "Content-Type: text/html",
            "Content-Transfer-Encoding: quoted-printable",
            body=b'<p>caf=C3=A9 <img src=3D"cid:a@b"></p>',
        ),
        part(
            "Content-Type: image/png",
            "Content-ID: <a@b>",
            "Content-Transfer-Encoding: base64",
            "Content-Disposition: inline; filename*=utf-8''%E2%9C%93.png",
            body=b"iVBORw0K",
        ),
        headers=("From: =?utf-8?q?A=C3=A9?= <a@b.c>", "Subject: =?utf-8?b?w6k=?= x"),
        kind="related",
    )
    tokens = [
        b"--mut",
        b"\r\n",
        b"\n",
        b"=?",
        b"?=",
        b"<",
        b">",
        b";",
        b'"',
        b"\x00",
        b"\xff",
        b"\x1b$B",
        b"--",
        b":",
        b"=",
        b"boundary=",
        b"Content-Type: multipart/mixed",
    ]
    rng = random.Random(7)
    for _ in range(300):
        raw = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(raw))
            choice = rng.random()
            if choice < 0.3:
                raw[at] = rng.randrange(256)
            elif choice < 0.6:
                del raw[at : at + rng.randint(1, 20)]
            else:
                raw[at:at] = rng.choice(tokens)
        assert_sound(parse(bytes(raw)), bytes(raw))


def test_a_100_mb_mail_is_flagged_fast_with_its_headers_read() -> None:
    raw = mail(
        "From: Big <big@example.com>",
        "Subject: huge",
        "Message-ID: <huge@x>",
        "Content-Type: multipart/mixed; boundary=b",
        body=b"--b\r\n\r\n" + b"A" * (100 * 1024 * 1024) + b"\r\n--b--\r\n",
    )
    started = time.perf_counter()
    p = parse(raw)
    elapsed = time.perf_counter() - started
    assert elapsed < 30, elapsed  # a guard against reading it all, not a speed target
    assert not p.parsed_ok and any("too large to parse" in d for d in p.defects)
    assert (p.subject, p.message_id, p.from_[0].address) == ("huge", "huge@x", "big@example.com")
    assert p.sha256 == hashlib.sha256(raw).hexdigest() and p.text == ""
    assert to_summary(p).subject == "huge"


def test_ten_thousand_parts_stop_at_the_limit_fast() -> None:
    body = b"".join(
        b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(10_000)
    )
    raw = mail("Subject: many", "Content-Type: multipart/mixed; boundary=p", body=body + b"--p--")
    started = time.perf_counter()
    p = parse(raw)
    assert (
        time.perf_counter() - started < 20
    )  # a guard against super-linear blow-ups, not a speed target
    assert not p.parsed_ok and any("more than 1000 MIME parts" in d for d in p.defects)
    assert len(p.parts) == 1000 and p.text == "part 0"
    assert_sound(p, raw)


def test_two_hundred_deep_nesting_stops_at_the_limit_fast() -> None:
    raw = b"Subject: deep\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for i in range(1, 200):
        raw += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i - 1, i)
    raw += b"--b199\r\nContent-Type: text/plain\r\n\r\nat the bottom\r\n--b199--\r\n"
    for i in range(198, -1, -1):
        raw += b"--b%d--\r\n" % i
    started = time.perf_counter()
    p = parse(raw)
    assert (
        time.perf_counter() - started < 20
    )  # a guard against super-linear blow-ups, not a speed target
    assert not p.parsed_ok and any("nested deeper than 20 levels" in d for d in p.defects)
    assert p.subject == "deep" and max(x.path.count(".") for x in p.parts) == 19
    assert_sound(p, raw)


def test_pathological_html_is_bounded() -> None:
    for html in ("<div>" * 200_000, "<i>x</b>" * 100_000, "<table>" + "x<br>" * 150_000):
        # bounded by the parser's node budget, not by a clock: the mail is shown as text
        p = parse(mail("Content-Type: text/html", body=html.encode()))
        assert any("shown as plain text" in d for d in p.defects)
        assert "<div" not in p.html


def test_structural_defects_are_named_and_the_rest_is_read() -> None:
    cases = {
        b"Content-Type: multipart/mixed\r\n\r\nno boundary": "without a boundary",
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\nnever delimited": "never found",
        b"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\n\r\nopen": "no closing boundary",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base999\r\n\r\nx": "base999",
        b"Content-Type: ???\r\n\r\nx": "unreadable Content-Type",
        b"Subject: a\r\nnot a header\r\nX: y\r\n\r\nbody": "malformed header line",
    }
    for raw, needle in cases.items():
        p = parse(raw)
        assert any(needle in d for d in p.defects), (raw, p.defects)
        assert p.parsed_ok and p.text


def test_a_failing_stage_becomes_a_defect_and_the_rest_is_filled_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import services.ingestion.parser as parser_module

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parser_module, "_date", boom)
    monkeypatch.setattr(parser_module, "sanitize_html", boom)
    raw = mail(
        "From: a@b.c",
        "Subject: still here",
        "Date: Mon, 02 Nov 2026 10:00:00 +0900",
        "Content-Type: text/html",
        body=b"<p>body text</p>",
    )
    p = parse(raw)
    assert not p.parsed_ok
    assert "internal error while reading the Date header: RuntimeError: boom" in p.defects
    assert "internal error while reading the HTML body: RuntimeError: boom" in p.defects
    assert (p.subject, p.from_[0].address, p.date, p.html) == ("still here", "a@b.c", None, "")
    assert p.text == "body text"
    assert_sound(p, raw)


# --- what intake's parse may leave for later, and the cheap paths ---------------------------


def test_intake_leaves_html_without_images_unsanitised_and_records_the_rest() -> None:
    html = b'<p onclick="x()">Hi <a href="javascript:alert(1)">there</a></p><script>x</script>'
    raw = multipart(
        "d",
        part("Content-Type: text/plain", body=b"plain"),
        part("Content-Type: text/html", body=html),
        kind="alternative",
    )
    full, intake = parse(raw), parse(raw, defer_html=True)
    assert intake.html_deferred and intake.html == "" and not full.html_deferred
    assert "<script" not in full.html and "onclick" not in full.html and full.html
    assert to_summary(intake) == to_summary(full) and intake.defects == full.defects
    # HTML with an image (<img>, or <image>, which HTML reads as one) is sanitised at once:
    # its remote images are counted and its cid: parts mapped, or missed as a problem.
    for tag in (b'<img src="cid:gone@x">', b'<IMAGE src="cid:gone@x">'):
        p = parse(mail("Content-Type: text/html", body=tag), defer_html=True)
        assert not p.html_deferred and any("cid:gone@x" in d for d in p.defects)
    # so is HTML too complex to sanitise: that is a problem recorded at intake
    deep = parse(mail("Content-Type: text/html", body=b"<div>" * 5000), defer_html=True)
    assert not deep.html_deferred and any("shown as plain text" in d for d in deep.defects)


def test_cheap_bounds_give_the_same_answer_as_the_full_html_scan() -> None:
    def scanned(source: str) -> str | None:
        deepest, fostered = html_complexity(source)
        if deepest > 1000:
            return f"{deepest} elements left open at once"
        if fostered > 2000:
            return f"{fostered} pieces of content misplaced inside tables"
        return None

    rng = random.Random(7)
    pieces = ["<div>", "</div>", "<p>", "<b>", "</b>", "<i>x</b>", "<br>", "x", "< ", "</",
              "<table>", "</table>", "<td>", "</td>", "<a href=x>", "</a>"]  # fmt: skip
    for _ in range(200):
        kinds = pieces[: rng.randint(3, len(pieces))]
        source = "".join(rng.choice(kinds) for _ in range(rng.randint(0, 4000)))
        assert too_complex(source) == scanned(source)
    assert can_wait("<p>" * 3000) and not can_wait("<p><img src=x>")


def test_the_summary_reads_only_the_head_of_a_long_text_and_gets_the_same() -> None:
    rng = random.Random(3)
    alphabet = ["a", "b", " ", "\n", "\t", "\u3000", "\u00a0", "\u2028", "\x1c", "日"]
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        limit = rng.randint(1, 30)
        assert parser_module._one_line(text, limit) == re.sub(r"\s+", " ", text).strip()[:limit]


def test_delimiters_found_by_find_are_the_ones_the_regular_expression_finds() -> None:
    def reference(buf: bytes, start: int, end: int, boundary: bytes, budget: int) -> Any:
        delim = re.compile(rb"\n--" + re.escape(boundary) + rb"(--[^\n]*|[ \t]*\r?)(?=\n|\Z)")
        first = re.compile(rb"--" + re.escape(boundary) + rb"(--[^\n]*|[ \t]*\r?)(?=\n|\Z)")
        ranges: list[tuple[int, int]] = []
        current = None
        found = []
        m0 = first.match(buf, start, end)
        if m0:
            found.append((start, m0.end(), m0.group(1).startswith(b"--")))
        scan_from = max((m0.end() if m0 else start) - 1, start)
        for m in delim.finditer(buf, scan_from, end):
            found.append((m.start() + 1, m.end(), m.group(1).startswith(b"--")))
            if found[-1][2] or len(found) > budget + 1:
                break
        for line_start, line_end, is_close in found:
            if current is not None:
                stop = line_start - 1
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

    rng = random.Random(5)
    pieces = [b"--b", b"--b--", b"--bx", b"--b ", b"--b\t", b"\r", b"\n", b"\r\n", b"x",
              b" ", b"--", b"\n--b\r\n", b"\n--b--\n", b"\n--b-1\n"]  # fmt: skip
    for _ in range(20_000):
        buf = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        start = rng.randint(0, len(buf))
        end = rng.randint(start, len(buf))
        budget = rng.randint(0, 6)
        args = (buf, start, end, b"b", budget)
        assert mime_tree._split_multipart(*args) == reference(*args), args
    # Thousands of lines that only start like a delimiter stay cheap (a regex takes over).
    body = b"--b\r\n\r\nx\r\n" + b"--b-1\r\n" * 200_000 + b"--b--\r\n"
    started = time.perf_counter()
    ranges, closed, _ = mime_tree._split_multipart(body, 0, len(body), b"b", 10)
    assert (
        closed and len(ranges) == 1 and time.perf_counter() - started < 10
    )  # a guard against super-linear blow-ups


def test_safe_body_keeps_clean_text_as_it_is_and_cleans_the_rest() -> None:
    assert safe_body("a\r\nb\rc 日本") == "a\nb\nc 日本"
    assert safe_body("a\x00b\ud800c") == "ab\ufffdc"


def test_bare_lf_and_mixed_line_ends_parse_as_crlf_does() -> None:
    """SMTP intake keeps a mail's bare LFs as they came (smtp_data.py): the parse of such a
    mail — all LF, or LF with CRLF mixed in, as a script's .eml plus smtplib's final CRLF
    gives — is the parse of the same mail with CRLF line ends."""
    m = EmailMessage()
    m["From"] = "山田 <taro@example.jp>"
    m["To"] = "support@example.com"
    m["Subject"] = "添付あり"
    m.set_content("本文です。\n二行目\n")
    m.add_attachment(
        b"\x00\x01binary" * 50, maintype="application", subtype="pdf", filename="a.pdf"
    )
    crlf = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
    lf = crlf.replace(b"\r\n", b"\n")
    mixed = lf + b"\r\n"
    want = parse(crlf)
    for raw in (lf, mixed):
        got = parse(raw)
        assert got.parsed_ok and got.defects == want.defects
        assert (got.subject, got.text.strip()) == (want.subject, want.text.strip())
        assert [(a.filename, a.sha256) for a in got.attachments] == [
            (a.filename, a.sha256) for a in want.attachments
        ]
