"""ingestion's LINE client against the local LINE peer (issue 21;
services/ingestion/line_client.py, services/devstack/line_peer.py): a reply goes through
the reply API while the customer's reply token is good, else through the push API once;
failures LINE means as final are not retried; content and display names are fetched."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from services.devstack import line_peer
from services.devstack.line_peer import LinePeer
from services.ingestion.channel_model import (
    ChannelRow,
    ContentRef,
    ConversationRow,
    InboundMessage,
    OutboundMessage,
)
from services.ingestion.line_client import LineClient, LineEndpoints, text_messages
from services.runtime.errors import NotFound, Unavailable
from services.runtime.hosts import ConnectPolicy

NOW = datetime.now(UTC)
TENANT = uuid.uuid4()
CHANNEL = ChannelRow(
    uuid.uuid4(), TENANT, "line", uuid.uuid4(), "LINE", "pk", {}, True, "abcd", True, NOW, NOW
)


@pytest.fixture
async def peer() -> AsyncIterator[LinePeer]:
    p = LinePeer(hang_s=1.5)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def client(peer: LinePeer) -> AsyncIterator[LineClient]:
    c = LineClient(
        LineEndpoints(api_url=peer.url, data_url=peer.url, timeout_s=1.0, profile_timeout_s=0.5),
        ConnectPolicy.parse("127.0.0.1"),
    )
    yield c
    await c.close()


def conversation(token: str | None, expires: datetime | None) -> ConversationRow:
    user = line_peer.user_id()
    return ConversationRow(
        uuid.uuid4(),
        TENANT,
        CHANNEL.id,
        user,
        user,
        "",
        "",
        "",
        None,
        NOW,
        token,
        expires,
        1,
        None,
        NOW,
    )


def outgoing(text: str = "お問い合わせありがとうございます。") -> OutboundMessage:
    return OutboundMessage(uuid.uuid4(), "send-1", 2, text, "佐藤")


async def test_a_reply_within_the_token_window_uses_the_reply_api(
    peer: LinePeer, client: LineClient
) -> None:
    token = peer.reply_token()
    conv = conversation(token, NOW + timedelta(seconds=50))
    result = await client.send(CHANNEL, "secret", peer.token, conv, outgoing(), NOW)
    assert result.ok and result.used_reply_token
    assert peer.replies == [
        {
            "replyToken": token,
            "messages": [{"type": "text", "text": "お問い合わせありがとうございます。"}],
        }
    ]
    assert peer.pushes == []


async def test_an_expired_or_spent_token_falls_back_to_push_with_the_retry_key(
    peer: LinePeer, client: LineClient
) -> None:
    # our clock says expired: no reply call at all
    conv = conversation(peer.reply_token(), NOW - timedelta(seconds=1))
    msg = outgoing()
    result = await client.send(CHANNEL, "secret", peer.token, conv, msg, NOW)
    assert result.ok and not result.used_reply_token
    assert peer.replies == []
    assert peer.pushes == [
        {
            "to": conv.external_id,
            "messages": text_messages(msg.text),
            "retry_key": str(msg.delivery_id),
        }
    ]
    # LINE says the token is no longer good (used, or expired on its clock): push
    token = peer.reply_token()
    peer.expire(token)
    conv2 = conversation(token, NOW + timedelta(seconds=30))
    result = await client.send(CHANNEL, "secret", peer.token, conv2, outgoing(), NOW)
    assert result.ok and result.used_reply_token
    assert ("reply", 400) in peer.calls and peer.pushes[-1]["to"] == conv2.external_id


async def test_a_push_retried_after_a_lost_answer_is_sent_once(
    peer: LinePeer, client: LineClient
) -> None:
    conv = conversation(None, None)
    msg = outgoing()
    peer.fail("push", 500, times=1)
    first = await client.send(CHANNEL, "secret", peer.token, conv, msg, NOW)
    assert not first.ok and first.retry and "HTTP 500" in first.error
    assert (await client.send(CHANNEL, "secret", peer.token, conv, msg, NOW)).ok
    # the same delivery again (say, its answer was lost): LINE answers 409, delivered
    assert (await client.send(CHANNEL, "secret", peer.token, conv, msg, NOW)).ok
    assert len(peer.pushes) == 1 and ("push", 409) in peer.calls


async def test_failures_worth_retrying_and_final_ones(peer: LinePeer, client: LineClient) -> None:
    conv = conversation(None, None)
    peer.fail("push", 429, times=1)
    busy = await client.send(CHANNEL, "secret", peer.token, conv, outgoing(), NOW)
    assert not busy.ok and busy.retry
    peer.fail("push", 0, times=1)  # no answer within the timeout
    slow = await client.send(CHANNEL, "secret", peer.token, conv, outgoing(), NOW)
    assert not slow.ok and slow.retry and "did not answer" in slow.error
    wrong = await client.send(CHANNEL, "secret", "not-the-token", conv, outgoing(), NOW)
    assert not wrong.ok and not wrong.retry and "HTTP 401" in wrong.error
    none = await client.send(CHANNEL, "secret", None, conv, outgoing(), NOW)
    assert not none.ok and not none.retry
    assert peer.pushes == []


async def test_a_reply_whose_answer_is_lost_spends_the_token(
    peer: LinePeer, client: LineClient
) -> None:
    conv = conversation(peer.reply_token(), NOW + timedelta(seconds=50))
    peer.fail("reply", 503, times=1)
    result = await client.send(CHANNEL, "secret", peer.token, conv, outgoing(), NOW)
    assert not result.ok and result.retry and result.used_reply_token
    # the deliverer's next attempt sees no token: a push
    retried = replace(conv, reply_token=None, reply_token_expires_at=None)
    assert (await client.send(CHANNEL, "secret", peer.token, retried, outgoing(), NOW)).ok
    assert len(peer.pushes) == 1


async def test_a_long_reply_is_split_into_lines_message_objects(
    peer: LinePeer, client: LineClient
) -> None:
    conv = conversation(None, None)
    text = "あ" * 12_000
    assert (await client.send(CHANNEL, "secret", peer.token, conv, outgoing(text), NOW)).ok
    sent = peer.pushes[0]["messages"]
    assert [len(m["text"]) for m in sent] == [5000, 5000, 2000]
    assert len(text_messages("x" * 40_000)) == 5


async def test_content_and_display_names(peer: LinePeer, client: LineClient) -> None:
    peer.add_content("777", b"\xff\xd8\xff\xe0 jpeg bytes", "image/jpeg")
    got = await client.fetch(CHANNEL, peer.token, ContentRef("777", "image-777", "image/jpeg"))
    assert got.content == b"\xff\xd8\xff\xe0 jpeg bytes" and got.content_type == "image/jpeg"
    assert got.name.startswith("image-777.")
    with pytest.raises(NotFound):
        await client.fetch(CHANNEL, peer.token, ContentRef("778", "image-778", "image/jpeg"))
    peer.fail("content", 500, times=1)
    with pytest.raises(Unavailable):
        await client.fetch(CHANNEL, peer.token, ContentRef("777", "image-777", "image/jpeg"))

    user, group = line_peer.user_id(), line_peer.group_id()
    peer.add_profile(user, "山田 花子")
    msg = InboundMessage(user, user, "", "hi", "m:1")
    assert await client.display_name(CHANNEL, peer.token, msg) == "山田 花子"
    in_group = InboundMessage(group, user, "", "hi", "m:2")
    assert await client.display_name(CHANNEL, peer.token, in_group) == "山田 花子"
    stranger = line_peer.user_id()
    assert (
        await client.display_name(
            CHANNEL, peer.token, InboundMessage(stranger, stranger, "", "", "m:3")
        )
        == ""
    )
    peer.fail("profile", 0, times=1)  # LINE slow: the message is not held up for long
    other = line_peer.user_id()
    peer.add_profile(other, "遅い")
    assert (
        await client.display_name(CHANNEL, peer.token, InboundMessage(other, other, "", "", "m:4"))
        == ""
    )


async def test_lines_address_must_be_allowed(peer: LinePeer) -> None:
    closed = LineClient(
        LineEndpoints(api_url=peer.url, data_url=peer.url, timeout_s=1.0), ConnectPolicy()
    )
    try:
        result = await closed.send(
            CHANNEL, "s", peer.token, conversation(None, None), outgoing(), NOW
        )
        assert not result.ok and not result.retry and "not allowed" in result.error
    finally:
        await closed.close()
    assert peer.pushes == []
