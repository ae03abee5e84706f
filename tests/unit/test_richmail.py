"""An operator's HTML mail (CMP-5): the sanitiser's allow-list, the text alternative made
from the HTML, and the MIME structure with inline images."""

from __future__ import annotations

import email
import email.policy
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from services.composition import richtext
from services.composition.records import Revision
from services.runtime import mail as mime

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000000000500010d0a2db40000000049454e44ae426082"
)
WHEN = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def revision(**kw: object) -> Revision:
    base: dict[str, object] = {
        "draft_id": uuid.uuid4(),
        "revision": 2,
        "saved_at": WHEN,
        "saved_by": uuid.uuid4(),
        "saved_by_name": "Agent",
        "fence": 1,
        "from_address": "support@demo.example",
        "from_name": "Support",
        "to_addrs": ["customer@example.com"],
        "cc_addrs": [],
        "bcc_addrs": [],
        "subject": "Re: Order",
        "body_text": "",
        "body_html": "",
        "signature_text": "",
        "quote_text": "",
        "include_quote": False,
        "attachment_ids": [],
    }
    base.update(kw)
    return Revision(**base)  # type: ignore[arg-type]


def build(rev: Revision, parts: list[mime.Part]) -> email.message.Message:
    out = mime.Outgoing(
        sender=mime.Mailbox(rev.from_name, rev.from_address),
        to=mime.parse_addresses(rev.to_addrs, "to"),
        cc=[],
        subject=rev.subject,
        text=richtext.compose_text(rev),
        html=richtext.compose_html(rev),
        parts=parts,
    )
    raw = mime.build(out, message_id="a.1@demo.example", date=WHEN).as_bytes()
    return email.message_from_bytes(raw, policy=email.policy.default)


def structure(msg: email.message.Message) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []

    def walk(part: email.message.Message, depth: int) -> None:
        out.append((depth, part.get_content_type()))
        if part.is_multipart():
            for sub in part.get_payload():  # type: ignore[union-attr]
                walk(sub, depth + 1)

    walk(msg, 0)
    return out


def test_editor_formatting_survives_and_code_does_not() -> None:
    html = (
        "<p>Hi <strong>there</strong>, <em>see</em> <u>this</u> <s>old</s> "
        '<span style="color: #e03131; position: fixed">red</span> '
        '<a href="https://shop.example/o/1" onclick="steal()">order</a></p>'
        "<ul><li>one</li></ul><ol><li>first</li></ol><blockquote><p>quoted</p></blockquote>"
        '<script>alert(1)</script><img src="x" onerror="alert(2)">'
        '<a href="javascript:alert(3)">bad</a><iframe src="https://evil.example"></iframe>'
        '<p style="background-image: url(https://track.example/p)">bg</p>'
        '<p style="color: expression(alert(4))">ex</p>'
    )
    clean = richtext.sanitize(html)
    for kept in (
        "<strong>there</strong>",
        "<em>see</em>",
        "<u>this</u>",
        "<s>old</s>",
        'style="color:#e03131"',
        'href="https://shop.example/o/1"',
        "<ul><li>one</li></ul>",
        "<ol><li>first</li></ol>",
        "<blockquote>",
    ):
        assert kept in clean, kept
    for gone in (
        "script",
        "alert",
        "onerror",
        "onclick",
        "javascript",
        "iframe",
        "url(",
        "position",
    ):
        assert gone not in clean, gone
    assert richtext.sanitize(clean) == clean


def test_only_inline_images_are_kept_remote_and_data_images_are_removed() -> None:
    html = (
        '<p><img src="cid:img-1@switchboard" alt="chart">'
        '<img src="https://tracker.example/pixel.gif" alt="pixel">'
        '<img src="data:image/png;base64,iVBORw0KGgo=" alt="pasted"></p>'
    )
    clean = richtext.sanitize(html)
    assert richtext.cids(clean) == ["img-1@switchboard"]
    assert "tracker.example" not in clean
    assert "data:" not in clean
    assert clean.count("<img") == 1


def test_the_text_alternative_is_made_from_the_html_when_no_text_was_written() -> None:
    rev = revision(
        body_html='<p>Hello <strong>Mr Sato</strong>, see <a href="https://shop.example/o/1">'
        "your order</a>.</p><ul><li>apples</li><li>pears</li></ul><ol><li>pay</li>"
        "<li>wait</li></ol><p>よろしくお願いします</p>",
        signature_text="Support team",
    )
    text = richtext.compose_text(rev)
    assert "Hello Mr Sato" in text
    assert "<strong>" not in text
    assert "https://shop.example/o/1" in text
    assert "* apples" in text and "* pears" in text
    assert "1. pay" in text and "2. wait" in text
    assert "よろしくお願いします" in text
    assert text.rstrip().endswith("Support team")


def test_text_written_by_the_operator_is_kept_as_the_alternative() -> None:
    rev = revision(body_text="My own text", body_html="<p>My <b>own</b> text</p>")
    assert richtext.compose_text(rev).startswith("My own text")


def test_html_with_an_inline_image_and_a_file_is_mixed_alternative_related() -> None:
    rev = revision(
        body_html='<p>See <b>this</b>:</p><p><img src="cid:img-1@switchboard" alt="x"></p>'
        "<script>alert(1)</script>"
    )
    msg = build(
        rev,
        [
            mime.Part("shot.png", "image/png", PNG, inline=True, content_id="img-1@switchboard"),
            mime.Part("terms.pdf", "application/pdf", b"%PDF-1.4 x"),
        ],
    )
    assert structure(msg) == [
        (0, "multipart/mixed"),
        (1, "multipart/alternative"),
        (2, "text/plain"),
        (2, "multipart/related"),
        (3, "text/html"),
        (3, "image/png"),
        (1, "application/pdf"),
    ]
    assert isinstance(msg, EmailMessage)
    html = msg.get_body(("html",))
    text = msg.get_body(("plain",))
    assert html is not None and text is not None
    assert "<b>this</b>" in html.get_content()
    assert "script" not in html.get_content()
    assert "See this:" in text.get_content()
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<img-1@switchboard>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_a_plain_text_inbox_sends_no_html_part() -> None:
    rev = revision(body_text="plain words", body_html="<p>plain <b>words</b></p>")
    out = richtext.compose_html(rev, plain_text_only=True)
    assert out == ""
    msg = build(revision(body_text="plain words"), [])
    assert structure(msg) == [(0, "text/plain")]


@pytest.mark.parametrize("name", ["a\r\nBcc: x@evil.example.png", "a\x00.png", "a\nX-A: 1.png"])
def test_an_inline_image_name_cannot_break_a_header(name: str) -> None:
    rev = revision(body_html='<p><img src="cid:img-2@switchboard"></p>')
    try:
        msg = build(
            rev, [mime.Part(name, "image/png", PNG, inline=True, content_id="img-2@switchboard")]
        )
    except Exception as err:  # refused outright is fine too
        assert "line break" in str(err) or "filename" in str(err)
        return
    for part in msg.walk():
        for header, value in part.items():
            assert "\r" not in str(value) and "\n" not in str(value), header
    assert "X-A" not in [h for p in msg.walk() for h in p.keys()]
    assert "Bcc" not in [h for p in msg.walk() for h in p.keys()]
