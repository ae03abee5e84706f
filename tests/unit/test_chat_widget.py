"""The web chat's pure parts (issue 21, ING-6): visitor tokens, what a visitor may send,
the transcript mail's words, the widget's size and its requests, and the visitor socket's
ordering (a resume neither loses nor repeats a message)."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from switchboard.v1 import ingestion_channels_pb2 as pb

from gateway.chat_hub import ChatHub, VisitorSocket
from gateway.routes_chat import WIDGET_JS
from services.ingestion import chat_domain as cd
from services.outbound.chat_transcripts import transcript
from services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted

SECRET = cd.derived_secret("x" * 44)


def test_a_visitor_token_names_its_visitor_and_a_tampered_one_nothing() -> None:
    v = cd.Visitor("c1", "v1", "e1")
    token = cd.sign_visitor(SECRET, v)
    assert cd.read_visitor(SECRET, token) == v
    with pytest.raises(NotFound):
        cd.read_visitor(SECRET, token[:-2] + ("A" if token[-1] != "A" else "B") + token[-1])
    with pytest.raises(NotFound):
        cd.read_visitor(cd.derived_secret("y" * 44), token)
    with pytest.raises(NotFound):
        cd.read_visitor(SECRET, "")


def test_a_message_is_checked_for_size_and_emptiness_naming_text() -> None:
    limits = cd.ChatLimits(max_chars=10)
    assert cd.check_text(" hi\r\nthere\x07 ", limits) == "hi\nthere"
    with pytest.raises(InvalidArgument) as err:
        cd.check_text("x" * 11, limits)
    assert err.value.field == "text"
    with pytest.raises(InvalidArgument):
        cd.check_text(" \n ", limits)


def test_the_rate_is_per_minute_and_says_when_to_retry() -> None:
    limits = cd.ChatLimits(per_minute=3)
    cd.check_rate(2, limits)
    with pytest.raises(ResourceExhausted) as err:
        cd.check_rate(3, limits)
    assert err.value.retry_after_s > 0


def test_keys_names_and_addresses() -> None:
    assert cd.check_key("w-0a1b") == "w-0a1b"
    for bad in ("", "a b", "x" * 101, "é"):
        with pytest.raises(InvalidArgument):
            cd.check_key(bad)
    assert cd.clean_name("Eve\r\nBcc: x@y.z\x00") == "Eve Bcc: x@y.z"
    assert cd.check_email(" a@b.example ") == "a@b.example"
    assert cd.check_email("") == ""
    with pytest.raises(InvalidArgument):
        cd.check_email("a@b")
    assert cd.language("ja-JP") == "ja" and cd.language("de") == "en"


def test_a_returning_visitor_starts_anew_after_an_end_or_a_resolved_ticket() -> None:
    now = datetime.now(UTC)
    assert not cd.starts_anew(None, "open")
    assert not cd.starts_anew(None, "")
    assert cd.starts_anew(now, "open")
    assert cd.starts_anew(None, "resolved")


def _line(seq: int, direction: str, text: str, author: str = "") -> pb.ChatMessage:
    m = pb.ChatMessage(seq=seq, direction=direction, text=text, author_name=author)
    m.created_at.FromDatetime(datetime(2026, 12, 7, 6, 30, tzinfo=UTC))
    return m


def test_the_transcript_is_in_the_visitors_language_and_keeps_their_braces_inert() -> None:
    lines = [_line(1, "in", "{{var.x}} の件"), _line(2, "out", "承知しました", "佐藤")]
    subject, body = transcript("ja", "サポート", lines, "Asia/Tokyo")
    assert subject == "チャットの記録"
    assert "サポートとのチャットの記録" in body and "[2026-12-07 15:30] あなた:" in body
    assert "Asia/Tokyo" in body
    assert "佐藤:\n承知しました" in body
    assert "{{" not in body  # a notification would read it as one of its words
    subject, body = transcript("en", "Support", lines, "no/such zone")
    assert subject == "Your chat transcript" and "[2026-12-07 06:30] You:" in body
    assert "Times are in UTC." in body


def test_the_widget_is_small_and_asks_nobody_else() -> None:
    source = WIDGET_JS.read_text(encoding="utf-8")
    assert len(gzip.compress(source.encode())) <= 50 * 1024
    # every URL it builds starts from the gateway that served it (`base`, `wsBase`)
    assert not re.findall(r"https?://(?!www\.w3\.org)", source.replace("you@example.com", ""))


class _Ws:
    async def send_str(self, text: str) -> None:  # pragma: no cover - the writer's
        pass


def _sent(sock: VisitorSocket) -> list[dict[str, Any]]:
    out = []
    while not sock.queue.empty():
        item = sock.queue.get_nowait()
        assert item is not None
        out.append(json.loads(item))
    return out


async def test_a_presence_that_lapsed_without_an_event_reaches_the_visitors() -> None:
    """The recheck asks each inbox with visitors again: those told "online" hear "offline"
    once when the operator's presence lapsed (no event came), the others nothing."""
    present = {("t", "help"): False, ("t", "sales"): True}
    asked: list[tuple[str, str]] = []

    async def presence(tenant: str, inbox: str) -> bool:
        asked.append((tenant, inbox))
        return present[(tenant, inbox)]

    hub = ChatHub(recheck_s=0.05)
    hub.presence = presence
    lapsed = VisitorSocket(_Ws(), "t", "help", "c1", online=True)  # type: ignore[arg-type]
    still = VisitorSocket(_Ws(), "t", "sales", "c2", online=True)  # type: ignore[arg-type]
    for sock in (lapsed, still):
        hub.join(sock)
    await hub.recheck()
    assert _sent(lapsed) == [{"type": "presence", "online": False}]
    assert _sent(still) == []
    assert sorted(asked) == [("t", "help"), ("t", "sales")]
    await hub.recheck()  # told once
    assert _sent(lapsed) == []


async def test_a_resuming_socket_gets_each_line_once_in_order() -> None:
    hub = ChatHub()
    sock = VisitorSocket(_Ws(), "t", "i", "c")  # type: ignore[arg-type]
    hub.join(sock)
    sock.last_seq = 3  # the client had 1..3
    # pushes that come while the history is being read wait …
    hub.push_line(sock, {"type": "message", "seq": 5})
    hub.push_line(sock, {"type": "message", "seq": 4})
    # … the history (4) goes out, then the held pushes, without 4 again
    hub.send(sock, {"type": "message", "seq": 4})
    sock.last_seq = 4
    hub.release(sock)
    hub.push_line(sock, {"type": "message", "seq": 5})  # the same event twice
    hub.push_line(sock, {"type": "message", "seq": 6})
    assert [m["seq"] for m in _sent(sock)] == [4, 5, 6]
    hub.leave(sock)
    assert hub.socket_count == 0
    await asyncio.sleep(0)
