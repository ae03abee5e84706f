"""The mail a channel message becomes (issue 21; services/ingestion/channel_mail.py) and
the API channel's signature and body checks (api_channel.py): untrusted names never reach
a header line, Japanese text survives, later messages thread onto the first one."""

from __future__ import annotations

import email
import json
import uuid
from datetime import UTC, datetime, timedelta
from email import policy

import pytest

from services.ingestion import channel_mail
from services.ingestion.api_channel import ApiParser
from services.ingestion.channel_deliveries import judge
from services.ingestion.channel_model import (
    LINK_RECENT_S,
    ChannelRow,
    ConversationRow,
    InboundAttachment,
    awaits_link,
    parse_pseudo_address,
)
from services.ingestion.parser import parse
from services.runtime import signing
from services.runtime.errors import InvalidArgument

CONV = uuid.UUID("0190f3a0-0000-7000-8000-000000000001")
AT = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def _mail(seq: int = 1, **more: object) -> bytes:
    fields: dict[str, object] = {
        "kind": "chat",
        "conversation_id": CONV,
        "seq": seq,
        "first_seq": 1,
        "first_text": "注文した商品がまだ届きません。確認をお願いします",
        "sender_name": "山田 花子",
        "inbox_address": "help@shop.example",
        "text": "注文した商品がまだ届きません。確認をお願いします",
        "sent_at": AT,
    }
    fields.update(more)
    return channel_mail.to_mail(channel_mail.ChannelMail(**fields))  # type: ignore[arg-type]


def test_the_first_message_is_a_mail_from_the_pseudo_address_to_the_inbox() -> None:
    raw = _mail()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["From"].addresses[0].addr_spec == f"{CONV}@chat.channels.invalid"
    assert msg["From"].addresses[0].display_name == "山田 花子"
    assert parse_pseudo_address(msg["From"].addresses[0].addr_spec) == (CONV, "chat")
    assert msg["To"] == "help@shop.example"
    assert msg["Subject"] == "Chat: 注文した商品がまだ届きません。確認をお願いします"
    assert msg["Message-ID"] == f"<{CONV}.1@chat.channels.invalid>"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["X-Switchboard-Channel"] == "chat"
    body = msg.get_body(("plain",))
    assert body is not None and body.get_content_charset() == "utf-8"
    assert body.get_content() == "注文した商品がまだ届きません。確認をお願いします\n"
    parsed = parse(raw)
    assert parsed.subject == "Chat: 注文した商品がまだ届きません。確認をお願いします"
    assert parsed.message_id == f"{CONV}.1@chat.channels.invalid"


def test_later_messages_keep_the_subject_and_reference_the_first() -> None:
    msg = email.message_from_bytes(
        _mail(3, text="追跡番号は 123 です", sender_name="Hanako"), policy=policy.default
    )
    first = f"<{CONV}.1@chat.channels.invalid>"
    assert msg["Message-ID"] == f"<{CONV}.3@chat.channels.invalid>"
    assert msg["In-Reply-To"] == first and msg["References"] == first
    assert msg["Subject"] == "Chat: 注文した商品がまだ届きません。確認をお願いします"
    assert msg.get_body(("plain",)).get_content() == "追跡番号は 123 です\n"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.com",
        "Eve\nX-Injected: 1",
        "Eve\x00\rSubject: hi",
        "Eve\u2028Bcc: x@example.com",
    ],
)
def test_cr_lf_and_nul_in_a_name_never_reach_a_header(name: str) -> None:
    raw = _mail(sender_name=name, first_text="hello\r\nBcc: a@example.com", kind="api")
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert msg.get_all("Subject") == ["API: hello Bcc: a@example.com"]
    for line in head.split("\n"):
        assert "\r" not in line.rstrip("\r") and "\x00" not in line
        assert not line.startswith(("Bcc", "X-Injected"))
    assert "Eve" in msg["From"].addresses[0].display_name


def test_a_long_first_message_is_cut_in_the_subject_and_an_empty_one_named() -> None:
    long = "あ" * 200
    assert channel_mail.subject("line", long) == "LINE: " + "あ" * 60 + "…"
    assert channel_mail.subject("api", "  \n ", "Bridge user") == "API: Bridge user"
    assert channel_mail.subject("api", "") == "API: (no text)"


def test_attachments_are_mime_parts_with_safe_names() -> None:
    raw = _mail(
        attachments=[
            InboundAttachment("写真.jpg", "image/jpeg", b"\xff\xd8\xff\xe0jpeg"),
            InboundAttachment("a\r\nb.txt", "text/plain\r\nX: y", b"plain"),
        ]
    )
    msg = email.message_from_bytes(raw, policy=policy.default)
    parts = list(msg.iter_attachments())
    assert [p.get_filename() for p in parts] == ["写真.jpg", "a b.txt"]
    assert parts[0].get_content_type() == "image/jpeg"
    assert parts[0].get_content() == b"\xff\xd8\xff\xe0jpeg"
    assert parts[1].get_content_type() == "application/octet-stream"
    assert msg["X"] is None


def _signed(secret: str, body: bytes, ts: int) -> tuple[str, str]:
    return signing.signature(secret, ts, body), str(ts)


def test_the_api_signature_is_checked_with_a_300_second_window() -> None:
    p = ApiParser()
    body = b'{"messages":[]}'
    now = AT.timestamp()
    sig, ts = _signed("whsec_x", body, int(now) - 300)
    assert p.verify("whsec_x", body, sig, ts, AT)
    sig, ts = _signed("whsec_x", body, int(now) - 301)
    assert not p.verify("whsec_x", body, sig, ts, AT)
    sig, ts = _signed("whsec_x", body, int(now))
    assert not p.verify("whsec_y", body, sig, ts, AT)
    assert not p.verify("whsec_x", body + b" ", sig, ts, AT)
    assert not p.verify("whsec_x", body, sig, "soon", AT)


def test_the_api_body_is_read_and_bad_fields_named() -> None:
    p = ApiParser()
    body = {
        "messages": [
            {
                "id": "m-1",
                "conversation": "c-1",
                "sender": {"id": "u-9", "name": "花子"},
                "text": "こんにちは",
                "sent_at": "2026-12-07T09:00:00Z",
                "attachments": [{"name": "a.txt", "content_base64": "aGk="}],
            }
        ]
    }
    [m] = p.parse(json.dumps(body).encode(), AT)
    assert (m.external_id, m.key, m.sender_id, m.sender_name, m.text) == (
        "c-1",
        "m-1",
        "u-9",
        "花子",
        "こんにちは",
    )
    assert m.attachments[0].content == b"hi" and m.sent_at == datetime(2026, 12, 7, 9, tzinfo=UTC)
    bad = [
        (b"not json", "body"),
        (b'{"messages": []}', "messages"),
        (b'{"messages": [{"conversation": "c"}]}', "messages[0].id"),
        (b'{"messages": [{"id": "m"}]}', "messages[0].conversation"),
        (b'{"messages": [{"id": "m", "conversation": "c", "text": 5}]}', "messages[0].text"),
        (
            b'{"messages": [{"id": "m", "conversation": "c", '
            b'"attachments": [{"content_base64": "%%%"}]}]}',
            "messages[0].attachments[0].content_base64",
        ),
    ]
    for raw, field in bad:
        with pytest.raises(InvalidArgument) as err:
            p.parse(raw, AT)
        assert err.value.field == field, raw


def _channel(kind: str, enabled: bool = True) -> ChannelRow:
    return ChannelRow(
        uuid.uuid4(), uuid.uuid4(), kind, uuid.uuid4(), "x", "k", {}, enabled, "", False, AT, AT
    )


def _conv(last_inbound_at: datetime | None) -> ConversationRow:
    return ConversationRow(
        CONV, uuid.uuid4(), uuid.uuid4(), "e", "", "", "", "", None,
        last_inbound_at, None, None, 1, None, AT,
    )  # fmt: skip


def test_the_reply_window_closes_a_day_after_the_customer_wrote_on_line() -> None:
    line = _channel("line")
    ok = judge(line, False, _conv(AT), datetime(2026, 12, 8, 9, 30, tzinfo=UTC))
    assert ok.allowed and ok.window_ends_at == datetime(2026, 12, 8, 9, 30, tzinfo=UTC)
    late = judge(line, False, _conv(AT), datetime(2026, 12, 8, 9, 31, tzinfo=UTC))
    assert not late.allowed and late.reason == "reply_window_closed"
    assert judge(_channel("api"), False, _conv(AT), datetime(2027, 1, 1, tzinfo=UTC)).allowed
    off = judge(_channel("api", enabled=False), False, _conv(AT), AT)
    assert not off.allowed and off.reason == "channel_disabled"
    assert judge(_channel("chat"), True, _conv(AT), AT).reason == "channel_disabled"


def test_a_later_message_of_a_new_conversation_waits_for_its_ticket() -> None:
    """The second of two quick first messages waits for the first's ticket (one ticket,
    not two); the first never waits, nor does a message of a linked conversation, nor one
    whose first never became a ticket long ago."""
    first_at = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    soon = datetime(2026, 12, 7, 9, 0, 1, tzinfo=UTC)
    assert awaits_link(2, 1, False, first_at, soon)
    assert not awaits_link(1, 1, False, first_at, soon)
    assert not awaits_link(2, 1, True, first_at, soon)
    late = first_at + timedelta(seconds=LINK_RECENT_S)
    assert not awaits_link(5, 1, False, first_at, late)
