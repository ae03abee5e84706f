"""LINE's webhook, as ingestion reads it (issue 21; services/ingestion/line_adapter.py):
the signature LINE computes, message events → normalised messages, redeliveries and the
reply token's window."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.devstack import line_peer
from services.ingestion.channel_intake import check
from services.ingestion.line_adapter import REPLY_TOKEN_TTL_S, LineParser, signature
from services.runtime.errors import InvalidArgument

NOW = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
SECRET = "8c5f3e2a1b0d4e6f8a9b0c1d2e3f4a5b"
PARSER = LineParser()


def test_the_signature_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    body = line_peer.webhook_body([line_peer.text_event(line_peer.user_id(), "こんにちは")])
    good = line_peer.sign(SECRET, body)
    assert signature(SECRET, body) == good
    assert PARSER.verify(SECRET, body, good, "", NOW)
    # one byte changed, another channel's secret, no header, or garbage: refused
    assert not PARSER.verify(SECRET, body.replace(b"}", b" }", 1), good, "", NOW)
    assert not PARSER.verify("another-secret", body, good, "", NOW)
    assert not PARSER.verify(SECRET, body, "", "", NOW)
    assert not PARSER.verify(SECRET, body, "not base64 at all", "", NOW)
    assert not PARSER.verify("", body, good, "", NOW)


def test_a_text_message_from_a_user() -> None:
    user = line_peer.user_id()
    event = line_peer.text_event(user, "注文の件で質問です", "token-1")
    [msg] = PARSER.parse(line_peer.webhook_body([event]), NOW)
    assert msg.external_id == user and msg.sender_id == user
    assert msg.text == "注文の件で質問です"
    assert msg.key == f"m:{event['message']['id']}"
    assert msg.reply_token == "token-1"
    assert msg.reply_token_expires_at == NOW + timedelta(seconds=REPLY_TOKEN_TTL_S)
    assert REPLY_TOKEN_TTL_S < 60  # LINE: within one minute of the webhook
    assert msg.sent_at is not None and abs(msg.sent_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert msg.fetch == () and msg.attachments == ()


def test_a_text_of_blanks_is_a_note_and_the_webhooks_other_events_are_kept() -> None:
    """LINE does not redeliver: a message our checks would refuse (nothing but blanks)
    is kept as a note, and the other events of its webhook with it."""
    user = line_peer.user_id()
    events = [line_peer.text_event(user, " \u3000\n"), line_peer.text_event(user, "注文番号 42")]
    blank, text = PARSER.parse(line_peer.webhook_body(events), NOW)
    assert "空白" in blank.text and "blanks" in blank.text
    assert text.text == "注文番号 42"
    for msg in (blank, text):
        check(msg)


def test_a_redelivered_event_is_the_same_message_without_its_stale_token() -> None:
    user = line_peer.user_id()
    first = line_peer.text_event(user, "hello", "token-2")
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    [a] = PARSER.parse(line_peer.webhook_body([first]), NOW)
    [b] = PARSER.parse(line_peer.webhook_body([again]), NOW + timedelta(minutes=5))
    assert a.key == b.key and a.external_id == b.external_id
    assert b.reply_token == "" and b.reply_token_expires_at is None


def test_a_group_message_is_the_groups_conversation_and_the_members_message() -> None:
    user, group = line_peer.user_id(), line_peer.group_id()
    [msg] = PARSER.parse(
        line_peer.webhook_body([line_peer.text_event(user, "hi", group=group)]), NOW
    )
    assert msg.external_id == group and msg.sender_id == user


def test_an_image_is_fetched_from_the_content_api_and_an_external_one_never() -> None:
    user = line_peer.user_id()
    [msg] = PARSER.parse(line_peer.webhook_body([line_peer.image_event(user, "4711")]), NOW)
    [ref] = msg.fetch
    assert ref.ref == "4711" and ref.content_type.startswith("image/")
    assert msg.text == ""
    external = line_peer.image_event(user, "4712")
    external["message"]["contentProvider"] = {
        "type": "external",
        "originalContentUrl": "https://cdn.example/p.jpg",
    }
    [ext] = PARSER.parse(line_peer.webhook_body([external]), NOW)
    assert ext.fetch == () and "https://cdn.example/p.jpg" in ext.text


def test_other_events_and_the_consoles_verify_request_give_nothing() -> None:
    user = line_peer.user_id()
    follow = {"type": "follow", "source": {"type": "user", "userId": user}, "timestamp": 1}
    body = json.dumps({"destination": "Ubot", "events": [follow]}).encode()
    assert PARSER.parse(body, NOW) == []
    assert PARSER.parse(b'{"destination":"Ubot","events":[]}', NOW) == []
    sticker = line_peer.text_event(user, "x")
    sticker["message"] = {"type": "sticker", "id": "99", "packageId": "1", "stickerId": "2"}
    [msg] = PARSER.parse(line_peer.webhook_body([sticker]), NOW)
    assert msg.text and msg.key == "m:99"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"events": {}}', b'{"x": 1}'])
def test_a_body_that_is_not_a_webhook_is_invalid(body: bytes) -> None:
    with pytest.raises(InvalidArgument):
        PARSER.parse(body, NOW)
