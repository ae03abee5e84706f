"""Composition's pure parts (issue 6): reserved words, pre-send checks, suggestions, the
outgoing MIME and its header guards, and the word-level diff."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from services.composition import checks, diff, reserved, suggest
from services.runtime import mail as mime
from services.runtime.errors import InvalidArgument

NOW = datetime(2026, 12, 4, 1, 30, tzinfo=UTC)  # Friday; 10:30 in Tokyo


def ctx(language: str = "ja", time_zone: str = "Asia/Tokyo") -> reserved.Context:
    return reserved.Context(
        now=NOW,
        time_zone=time_zone,
        language=language,
        operator=reserved.Person("佐藤 花子", "hanako@support.example"),
        customer=reserved.Person("山田 太郎", "taro@customer.example", "山田商事"),
        ticket_number=1042,
        ticket_subject="配送について",
        inbox_name="サポート",
        inbox_address="support@demo.example",
        original=reserved.Original(
            "配送について",
            reserved.Person("山田 太郎", "taro@customer.example"),
            datetime(2026, 12, 3, 23, 5, tzinfo=UTC),
        ),
    )


@pytest.mark.parametrize(
    ("template", "ja", "en"),
    [
        ("{{today}}", "2026年12月4日（金）", "Friday, December 4, 2026"),
        ("{{now}}", "2026年12月4日（金） 10:30", "Friday, December 4, 2026 10:30"),
        ("{{now:%Y年%m月%d日 %H:%M}}", "2026年12月04日 10:30", "2026年12月04日 10:30"),
        ("{{today:%A %e %B}}", "金曜日 4 12月", "Friday 4 December"),
        ("{{today:%p %I}}", "午前 10", "AM 10"),
        ("{{customer.name}}", "山田 太郎", "山田 太郎"),
        ("{{customer.address}}", "taro@customer.example", "taro@customer.example"),
        ("{{customer.company}}", "山田商事", "山田商事"),
        ("{{operator.name}}", "佐藤 花子", "佐藤 花子"),
        ("{{operator.address}}", "hanako@support.example", "hanako@support.example"),
        ("{{ticket.number}}", "1042", "1042"),
        ("{{ticket.subject}}", "配送について", "配送について"),
        ("{{inbox.name}}", "サポート", "サポート"),
        ("{{inbox.address}}", "support@demo.example", "support@demo.example"),
        ("{{original.subject}}", "配送について", "配送について"),
        ("{{original.from}}", "山田 太郎", "山田 太郎"),
        ("{{original.date:%m/%d %H:%M}}", "12/04 08:05", "12/04 08:05"),
        ("{{ customer.name }}", "山田 太郎", "山田 太郎"),
    ],
)
def test_every_reserved_word_in_japanese_and_english(template: str, ja: str, en: str) -> None:
    for language, expected in (("ja", ja), ("en", en)):
        rendered = reserved.render(template, ctx(language))
        assert rendered.text == expected and rendered.problems == ()


def test_dates_follow_the_time_zone() -> None:
    assert reserved.render("{{now:%d %H}}", ctx(time_zone="America/New_York")).text == "03 20"
    assert reserved.render("{{now:%d %H}}", ctx(time_zone="UTC")).text == "04 01"
    assert reserved.render("{{now:%d %H}}", ctx(time_zone="Not/AZone")).text == "04 01"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{{customer.age}}", "unknown"),
        ("{{customer.__class__}}", "unknown"),
        ("{{ ''.__class__.__mro__ }}", "unknown"),
        ("{{__import__('os').system('id')}}", "unknown"),
        ("{{customer.name|upper}}", "unknown"),
        ("{{now:%Z}}", "bad_format"),
        ("{{now:%s}}", "bad_format"),
        ("{{customer.name:%Y}}", "bad_format"),
    ],
)
def test_unknown_words_and_attempts_at_code_stay_as_written_and_are_reported(
    text: str, reason: str
) -> None:
    rendered = reserved.render(f"Dear {text},", ctx())
    assert rendered.text == f"Dear {text},"
    assert [p.reason for p in rendered.problems] == [reason]


def test_a_word_without_a_value_here_is_reported_not_emptied() -> None:
    bare = reserved.Context(now=NOW)
    rendered = reserved.render("{{customer.name}} 様 / #{{ticket.number}}", bare)
    assert rendered.text == "{{customer.name}} 様 / #{{ticket.number}}"
    assert [p.reason for p in rendered.problems] == ["empty", "empty"]
    assert reserved.leftovers(rendered.text) == ["{{customer.name}}", "{{ticket.number}}"]


# -- pre-send checks ---------------------------------------------------------------------

SETTINGS = checks.Settings()


def out(**kw: object) -> checks.Outgoing:
    base: dict[str, object] = dict(
        subject="Re: 見積もり",
        body="山田様\n\nご確認ください。\n",
        signature="サポート 佐藤",
        to=["taro@customer.example"],
        cc=[],
        bcc=[],
        attachment_count=0,
    )
    base.update(kw)
    return checks.Outgoing(**base)  # type: ignore[arg-type]


def codes(findings: list[checks.Finding]) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in findings]


PEOPLE = ["taro@customer.example", "support@demo.example"]


def test_a_clean_draft_has_no_findings() -> None:
    assert checks.run(out(), SETTINGS, PEOPLE) == []


@pytest.mark.parametrize(
    "body",
    [
        "見積書を添付します。",
        "添付ファイルをご確認ください。",
        "Please see the attached file.",
        "I attach the quote.",
        "ＡＴＴＡＣＨＥＤ below",
        "The invoice is enclosed.",
    ],
)
def test_a_mentioned_attachment_that_is_not_there_asks_for_confirmation(body: str) -> None:
    assert codes(checks.run(out(body=body), SETTINGS, PEOPLE)) == [
        ("attachment_forgotten", "warning")
    ]
    assert checks.run(out(body=body, attachment_count=1), SETTINGS, PEOPLE) == []


def test_the_quote_and_the_signature_do_not_count_as_mentioning_an_attachment() -> None:
    body = (
        "承知しました。\n\n2026-12-03 山田 太郎 さんは書きました：\n"
        "> 添付のとおりです。\n> attached\n"
    )
    assert checks.run(out(body=body, signature="添付ファイルはPDFで"), SETTINGS, PEOPLE) == []
    assert checks.run(out(body="Please detach the cable."), SETTINGS, PEOPLE) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("subject", "Re: ○○の件"),
        ("body", "担当の〇〇です"),
        ("signature", "XX サポート"),
        ("body", "金額は××円です"),
    ],
)
def test_error_keywords_block_the_send(field: str, value: str) -> None:
    findings = checks.run(out(**{field: value}), SETTINGS, PEOPLE)
    assert codes(findings) == [("error_keyword", "blocking")] and findings[0].field == field


def test_error_keywords_in_latin_letters_match_whole_words_only() -> None:
    assert checks.run(out(body="Size XXL is sold out."), SETTINGS, PEOPLE) == []
    custom = checks.Settings(error_keywords=("TBD",))
    assert codes(checks.run(out(body="Price: TBD"), custom, PEOPLE)) == [
        ("error_keyword", "blocking")
    ]


def test_unfilled_reserved_words_block_the_send() -> None:
    findings = checks.run(out(body="{{customer.name}} 様"), SETTINGS, PEOPLE)
    assert codes(findings) == [("unresolved_word", "blocking")]
    assert findings[0].detail == "{{customer.name}}"


def test_recipients_subject_and_no_recipient() -> None:
    findings = checks.run(out(cc=["boss@elsewhere.example"], subject=" "), SETTINGS, PEOPLE)
    assert codes(findings) == [
        ("recipient_not_participant", "warning"),
        ("subject_missing", "warning"),
    ]
    assert codes(checks.run(out(to=[]), SETTINGS, PEOPLE)) == [("no_recipient", "blocking")]


# -- suggestions -------------------------------------------------------------------------

CANDIDATES = [
    suggest.Candidate(
        "shipping",
        "配送遅延のお詫び",
        "配送の遅れについて",
        "商品の配送が遅れており申し訳ございません。",
        ("配送", "遅延", "届かない"),
    ),
    suggest.Candidate(
        "refund",
        "返金のご案内",
        "返金について",
        "返金の手続きをご案内します。",
        ("返金", "キャンセル"),
    ),
    suggest.Candidate(
        "password",
        "Password reset",
        "Resetting your password",
        "To reset your password, open the link.",
        ("password", "login"),
    ),
    suggest.Candidate(
        "other", "営業時間", "営業時間のご案内", "営業時間は平日9時から18時です。", ()
    ),
]


def test_japanese_mail_gets_the_matching_template_first() -> None:
    ranked = suggest.rank(
        "商品が届かない", "先週注文した商品がまだ届きません。配送状況を教えてください。", CANDIDATES
    )
    assert ranked[0].id == "shipping" and "届かない" in ranked[0].matched
    assert "refund" not in [s.id for s in ranked[:1]]


def test_english_mail_gets_the_matching_template_first() -> None:
    ranked = suggest.rank("Cannot log in", "I forgot my password and cannot login.", CANDIDATES)
    assert ranked[0].id == "password" and set(ranked[0].matched) == {"password", "login"}


def test_a_keyword_in_the_subject_counts_more_than_in_the_body() -> None:
    a = suggest.rank("返金してください", "よろしくお願いします", CANDIDATES)
    b = suggest.rank("お問い合わせ", "返金してください", CANDIDATES)
    assert a[0].id == b[0].id == "refund" and a[0].score > b[0].score


# -- the outgoing mail -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "a@b.example\r\nBcc: victim@x.example",
        "Eve <e@x.example>\nX-Injected: 1",
        "x@y.example\0",
        "Name\r <n@x.example>",
        "n@x.example\u0085",
        "=?utf-8?q?a=0D=0A?= <a@b.example>\r\n",
    ],
)
def test_header_injection_through_an_address_is_refused(value: str) -> None:
    for field in ("to", "cc", "bcc", "from_address"):
        with pytest.raises(InvalidArgument) as err:
            mime.parse_address(value, field)
        assert err.value.field == field


@pytest.mark.parametrize(
    "subject", ["Hello\r\nBcc: x@y.example", "a\nb", "ok\0", "tab\tok?\x1b[31m"]
)
def test_header_injection_through_the_subject_is_refused(subject: str) -> None:
    with pytest.raises(InvalidArgument):
        mime.check_subject(subject)


EVIL = "=?utf-8?q?evil=0D=0AX-Injected=3A_1?="  # CVE-2024-6923's shape


@pytest.mark.parametrize(
    "value",
    [
        EVIL,
        f"Re: {EVIL}",
        f"report{EVIL}.txt",
        "=?UTF-8?B?ZXZpbA0KWC1JbmplY3RlZDogMQ==?=",  # the same in base64
        "=?iso-8859-1?q?a=0Ab?=",
        "=?x-unknown?q?a=0Db?=",
        "=?utf-8?q?a=E2=80=A8b?=",  # U+2028 encoded
        "line\u2028separator",
        "paragraph\u2029separator",
        "next\u0085line",
        "form\x0cfeed",
    ],
)
def test_a_line_break_as_written_or_in_an_encoded_word_is_refused(value: str) -> None:
    """Issue 16: every operator-written header value is judged as decoded too."""
    assert mime.unsafe_header_text(value)
    for field in ("subject", "from_name", "filename"):
        with pytest.raises(InvalidArgument) as err:
            mime.check_header_value(value, field)
        assert err.value.field == field
    with pytest.raises(InvalidArgument):
        mime.check_subject(value)
    safe = mime.header_text(value)
    assert not mime.unsafe_header_text(safe) and "\n" not in safe


@pytest.mark.parametrize(
    "value", ["=?utf-8?q?hello?=", "税込 =?utf-8?b?5pel5pys?=", "tab\tok", "a = ? b ?= c"]
)
def test_harmless_encoded_words_and_text_pass(value: str) -> None:
    assert not mime.unsafe_header_text(value)
    assert mime.check_header_value(value, "subject") == value
    assert mime.header_text(value) == value


def test_threading_ids_that_would_break_the_header_are_left_out() -> None:
    assert mime.usable_message_ids(
        ["<a@b.example>", f"<{EVIL}@x.example>", "x y@z.example", "", "c@d.example"]
    ) == ["a@b.example", "c@d.example"]


def _outgoing(**kw: object) -> mime.Outgoing:
    base: dict[str, object] = {
        "sender": mime.Mailbox("Help", "help@demo.example"),
        "to": [mime.Mailbox("", "taro@example.jp")],
        "cc": [],
        "subject": "Hello",
        "text": "Hi",
    }
    return mime.Outgoing(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"parts": [mime.Part(f"{EVIL}.txt", "text/plain", b"x")]}, "filename"),
        ({"subject": "a\u2028b"}, "subject"),
        ({"sender": mime.Mailbox(EVIL, "help@demo.example")}, "from_name"),
        ({"to": [mime.Mailbox("a\u2029b", "taro@example.jp")]}, "to"),
        ({"references": [f"{EVIL}@x.example"]}, "references"),
    ],
)
def test_the_builder_refuses_a_value_that_would_break_a_header(
    fields: dict[str, object], field: str
) -> None:
    """Never a ValueError from the email package (a 500, or a send failing late), and
    never a message with an injected header."""
    with pytest.raises(InvalidArgument) as err:
        mime.build(_outgoing(**fields), message_id="m@demo.example", date=NOW)
    assert err.value.field == field


def test_the_last_guard_catches_an_injected_parameter_whatever_let_it_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the value checks out of the way, the folded-header guard alone still refuses
    the attachment whose name Python 3.11 decodes into a line break (CVE-2024-6923)."""
    monkeypatch.setattr(mime, "check_header_value", lambda value, field_name: value)
    with pytest.raises(InvalidArgument) as err:
        mime.build(
            _outgoing(parts=[mime.Part(f"{EVIL}.txt", "text/plain", b"x")]),
            message_id="m@demo.example",
            date=NOW,
        )
    assert err.value.field == "content-disposition"


def test_a_template_fills_a_subject_with_a_customers_words_made_safe() -> None:
    c = reserved.Context(now=NOW, customer=reserved.Person(f"Taro {EVIL}\u2028"))
    out = reserved.render("Dear {{customer.name}}", c, clean=mime.header_text)
    assert out.text == "Dear Taro evil  X-Injected: 1 " and not mime.unsafe_header_text(out.text)


def test_a_change_by_someone_else_and_an_unsafe_header_are_found_before_sending() -> None:
    out = checks.Outgoing(
        subject="Hello",
        body="Hi",
        signature="",
        to=["taro@example.jp"],
        cc=[],
        bcc=[],
        attachment_count=1,
        headers=[("subject", "Hello"), ("attachments", f"{EVIL}.txt")],
        changed_by_other=checks.Change("Sam", "reopened"),
    )
    found = {(f.code, f.severity, f.field) for f in checks.run(out, checks.Settings(), None)}
    assert found == {
        ("unsafe_header", "blocking", "attachments"),
        ("changed_by_other", "warning", "draft"),
    }


@pytest.mark.parametrize(
    "value",
    [
        "x@y",
        "@example.com",
        "a@",
        '"quoted"@example.com',
        "a b@example.com",
        "a@-bad.example",
        "a@exa mple.com",
        "(comment)a@example.com",
        "a@b.c",
    ],
)
def test_addresses_are_parsed_strictly(value: str) -> None:
    with pytest.raises(InvalidArgument):
        mime.parse_address(value, "to")


def test_good_addresses_in_their_forms() -> None:
    assert mime.parse_address("山田 太郎 <taro@example.jp>", "to") == mime.Mailbox(
        "山田 太郎", "taro@example.jp"
    )
    assert mime.parse_address('"Sato, Hanako" <h.sato+jp@Example.CO.JP>', "to").address == (
        "h.sato+jp@example.co.jp"
    )
    assert mime.parse_address("info@例え.テスト", "to").address == "info@xn--r8jz45g.xn--zckzah"


def test_the_built_mail_parses_back_as_written() -> None:
    outgoing = mime.Outgoing(
        sender=mime.Mailbox("サポート", "support@demo.example"),
        to=[mime.Mailbox("山田 太郎", "taro@example.jp")],
        cc=[mime.Mailbox("", "boss@example.jp")],
        subject="Re: 配送について【至急】",
        text="山田様\n\nお問い合わせありがとうございます。\n",
        html="<p>山田様</p><img src='cid:logo@sb'>",
        parts=[
            mime.Part("logo.png", "image/png", b"\x89PNG\r\n", inline=True, content_id="logo@sb"),
            mime.Part("見積書.pdf", "application/pdf", b"%PDF-1.4"),
        ],
        in_reply_to="q1@example.jp",
        references=["q0@example.jp", "q1@example.jp"],
    )
    raw = mime.build(outgoing, message_id="sb.1.abc@demo.example", date=NOW).as_bytes()
    assert b"\r\n" in raw and raw.count(b"MIME-Version") == 1
    back = email.message_from_bytes(raw, policy=email.policy.default)
    assert back["Subject"] == "Re: 配送について【至急】"
    assert back["From"].addresses[0].display_name == "サポート"
    assert back["To"].addresses[0].addr_spec == "taro@example.jp"
    assert back["Message-ID"] == "<sb.1.abc@demo.example>"
    assert back["In-Reply-To"] == "<q1@example.jp>"
    assert back["References"] == "<q0@example.jp> <q1@example.jp>"
    assert "Bcc" not in back
    types = [p.get_content_type() for p in back.walk()]
    assert types == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
        "application/pdf",
    ]
    assert back.get_body(("plain",)).get_content().startswith("山田様")
    [attachment] = list(back.iter_attachments())
    assert attachment.get_filename() == "見積書.pdf"


def test_reply_and_forward_subjects_do_not_pile_up_prefixes() -> None:
    assert mime.reply_subject("Re: RE:  Fw: 配送") == "Re: 配送"
    assert mime.reply_subject("返信：配送") == "Re: 配送"
    assert mime.forward_subject("Re: 見積") == "Fw: 見積"


def test_the_quote_names_who_wrote_it_when() -> None:
    q = mime.quote("一行目\n\n二行目", "山田 <t@x.jp>", "2026-12-03 08:05", "ja")
    assert q == "2026-12-03 08:05 山田 <t@x.jp> さんは書きました：\n> 一行目\n>\n> 二行目"


# -- diff --------------------------------------------------------------------------------


def test_japanese_changes_are_shown_word_by_word() -> None:
    ops = diff.diff("確認させていただきます。", "至急確認させていただきます！")
    assert [(o.op, o.text) for o in ops] == [
        ("delete", "確認"),
        ("insert", "至急確認"),
        ("equal", "させていただきます"),
        ("delete", "。"),
        ("insert", "！"),
    ]


def test_english_changes_are_shown_word_by_word() -> None:
    ops = diff.diff("We will reply soon.", "We will reply within a day.")
    assert [(o.op, o.text) for o in ops] == [
        ("equal", "We will reply "),
        ("delete", "soon"),
        ("insert", "within a day"),
        ("equal", "."),
    ]
    assert diff.diff("same", "same") == [diff.Op("equal", "same")]
