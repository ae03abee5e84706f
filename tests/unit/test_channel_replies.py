"""Replies through channels (issue 21) without the system: a conversation's pseudo-address
told from a mailbox, one conversation per reply, the pre-send checks of a channel reply,
what a channel reply's text is (composition writes it, outbound hands it over), and the
words of a refusal."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from switchboard.v1 import ingestion_channels_pb2

from services.composition import checks, richtext
from services.ingestion import channel_model
from services.outbound import channel_sends
from services.outbound.records import Send
from services.runtime import channel_address as ca
from services.runtime import mail as mime
from services.runtime.errors import FailedPrecondition
from tests.unit.test_composition import PEOPLE, SETTINGS, codes, out
from tests.unit.test_richmail import revision

CONV = uuid.UUID("0b7f1c4e-52a4-4b8e-9d51-3b8f4b7e2a10")
CHAT = f"{CONV}@chat.channels.invalid"
WHEN = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)


def test_a_pseudo_address_is_told_from_a_mailbox() -> None:
    assert ca.pseudo_address(CONV, "chat") == CHAT
    assert ca.parse_pseudo_address(CHAT) == (CONV, "chat")
    assert ca.parse_pseudo_address(f'"山田 太郎" <{CHAT.upper()}>') == (CONV, "chat")
    assert ca.parse_pseudo_address(f"{CONV}@line.channels.invalid") == (CONV, "line")
    for other in (
        "taro@customer.example",
        f"{CONV}@sms.channels.invalid",  # not a kind of ours
        f"{CONV}@chat.channels.invalid.example",
        "not-an-id@chat.channels.invalid",
        "chat.channels.invalid",
    ):
        assert ca.parse_pseudo_address(other) is None, other
    # ingestion's adapter model uses the same one copy
    assert channel_model.parse_pseudo_address is ca.parse_pseudo_address
    assert channel_model.pseudo_address(CONV, "api") == f"{CONV}@api.channels.invalid"


def test_a_reply_goes_to_mailboxes_or_to_one_conversation() -> None:
    assert ca.channel_target(["taro@customer.example", "hanako@customer.example"]) is None
    target = ca.channel_target([f"Taro <{CHAT}>", CHAT])
    assert target == ca.ChannelTarget(CONV, "chat", CHAT)
    with pytest.raises(FailedPrecondition) as mixed:
        ca.channel_target([CHAT, "boss@customer.example"])
    assert mixed.value.reason == ca.MIXED_RECIPIENTS and mixed.value.field == "to"
    assert "boss@customer.example" in mixed.value.message
    with pytest.raises(FailedPrecondition) as two:
        ca.channel_target([CHAT, ca.pseudo_address(uuid.uuid4(), "line")])
    assert "one conversation" in two.value.message


def test_mail_only_checks_do_not_stop_a_channel_reply() -> None:
    # no subject and a word about attachments: warnings for a mail, nothing for a chat
    mail = out(subject="", body="添付をご確認ください", to=["taro@customer.example"])
    assert codes(checks.run(mail, SETTINGS, PEOPLE)) == [
        ("attachment_forgotten", "warning"),
        ("subject_missing", "warning"),
    ]
    chat = out(subject="", body="添付をご確認ください", to=[CHAT])
    assert checks.run(chat, SETTINGS, [*PEOPLE, CHAT]) == []
    # the checks every message needs still apply
    assert ("error_keyword", "blocking") in codes(
        checks.run(out(subject="", body="○○様", to=[CHAT]), SETTINGS, [CHAT])
    )


def test_a_channel_reply_with_mailboxes_or_files_is_blocked() -> None:
    mixed = checks.run(out(to=[CHAT], cc=["boss@customer.example"]), SETTINGS, [CHAT])
    assert codes(mixed) == [
        ("channel_mixed_recipients", "blocking"),
        ("recipient_not_participant", "warning"),
    ]
    assert mixed[0].field == "to"
    files = checks.run(out(to=[CHAT], attachment_count=1), SETTINGS, [CHAT])
    assert codes(files) == [("channel_attachments", "blocking")]


def test_a_channel_reply_is_what_was_written_as_plain_text() -> None:
    rev = revision(
        to_addrs=[CHAT],
        body_html='<p>ご注文は<strong>発送済み</strong>です。</p><ul><li><a href="https://shop.example/t/1">追跡</a></li></ul>',
        signature_text="サポート 佐藤\nsupport@demo.example",
        quote_text="> 届きません",
        include_quote=True,
    )
    text = richtext.channel_text(rev)
    assert text.startswith("ご注文は発送済みです。")
    assert "https://shop.example/t/1" in text and "<strong>" not in text
    assert "サポート 佐藤" not in text and "届きません" not in text  # no signature, no quote
    assert richtext.channel_text(replace(rev, body_text="  はい、承知しました。\n\n")) == (
        "はい、承知しました。\n"
    )


def _raw(text: str, html: str = "", sender: mime.Mailbox | None = None, subject: str = "") -> bytes:
    built = mime.build(
        mime.Outgoing(
            sender=sender or mime.Mailbox("サポート", "support@demo.example"),
            to=[mime.Mailbox("", CHAT)],
            cc=[],
            subject=subject,
            text=text,
            html=html,
        ),
        message_id="a.1@demo.example",
        date=WHEN,
    )
    return built.as_bytes()


def test_outbound_hands_over_the_text_part_or_the_html_as_text() -> None:
    assert channel_sends.reply_text(_raw("こんにちは。\n2 行目です。  \n")) == (
        "こんにちは。\n2 行目です。"
    )
    survey = _raw(
        "評価をお願いします:\n5: https://sb.example/s/abc?r=5\n",
        "<p>評価をお願いします</p><a href='https://sb.example/s/abc?r=5'>5</a>",
    )
    assert "https://sb.example/s/abc?r=5" in channel_sends.reply_text(survey)
    msg = email.message_from_bytes(_raw("x"), policy=email.policy.default)
    msg.replace_header("Content-Type", 'text/html; charset="utf-8"')
    msg.set_content("<p>Only <b>HTML</b></p>", subtype="html")
    assert channel_sends.reply_text(msg.as_bytes()) == "Only HTML"


def test_a_notification_s_subject_is_its_first_line_a_reply_s_is_not() -> None:
    raw = _raw("明日 10 時にお届けします。\n", subject="ご注文 123 を発送しました")
    assert channel_sends.reply_text(raw, titled=True) == (
        "ご注文 123 を発送しました\n\n明日 10 時にお届けします。"
    )
    assert channel_sends.reply_text(raw) == "明日 10 時にお届けします。"
    assert "notification" in channel_sends.TITLED_KINDS
    assert "reply" not in channel_sends.TITLED_KINDS


def _send(raw: bytes, operator_name: str) -> Send:
    fields: dict[str, object] = {name: None for name in Send.__dataclass_fields__}
    fields.update(raw=raw, operator_name=operator_name)
    return Send(**fields)  # type: ignore[arg-type]


def test_the_author_is_the_operator_else_the_sending_inbox() -> None:
    raw = _raw("x", sender=mime.Mailbox("ACME サポート", "support@demo.example"))
    assert channel_sends.author_of(_send(raw, "佐藤 花子")) == "佐藤 花子"
    assert channel_sends.author_of(_send(raw, "")) == "ACME サポート"


def test_a_closed_window_is_refused_naming_when_it_closed() -> None:
    target = ca.ChannelTarget(CONV, "line", ca.pseudo_address(CONV, "line"))
    closed = ingestion_channels_pb2.CheckReplyResponse(
        allowed=False, reason="reply_window_closed", message="closed"
    )
    closed.window_ends_at.FromDatetime(datetime(2026, 12, 6, 9, 30, tzinfo=UTC))
    words = channel_sends.refusal(target, closed)
    assert "closed at 2026-12-06 09:30 UTC" in words and "LINE" in words
    disabled = ingestion_channels_pb2.CheckReplyResponse(
        allowed=False, reason="channel_disabled", message="the channel is disabled"
    )
    assert channel_sends.refusal(target, disabled) == "the channel is disabled"


def test_an_api_channel_s_reply_window_is_its_administrator_s() -> None:
    assert channel_model.reply_window_s("line", {}) == 86400  # the kind's own
    assert channel_model.reply_window_s("chat", {"reply_window_s": 60}) == 0
    assert channel_model.reply_window_s("api", {}) == 0
    assert channel_model.reply_window_s("api", {"reply_window_s": 86400}) == 86400
    assert channel_model.reply_window_s("api", {"reply_window_s": 10**9}) == 30 * 86400
    assert channel_model.reply_window_s("api", {"reply_window_s": "x"}) == 0
