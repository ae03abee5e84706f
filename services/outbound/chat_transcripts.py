"""A web chat's transcript by mail (issue 21, ING-6): when ingestion announces that a chat
ended (`channel.conversation` action "ended": the visitor ended it, or it went quiet),
outbound reads the transcript (ingestion's ChatService.ChatHistory, as a service) and,
when the visitor left an address, mails it as an agentless notification from the
channel's inbox — in the visitor's language (ja/en), once per conversation (the
notification's idempotency key `chat-transcript:<conversation id>`; a redelivered event
finds the key's first result). A peer that is down naks the event: it comes back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc
from switchboard.v1 import events_pb2, ingestion_channels_pb2, ingestion_channels_pb2_grpc
from switchboard.v1 import outbound_outreach_pb2 as opb

from services.runtime import events, identity, log, registry
from services.runtime.bus import Delivery
from services.runtime.errors import DomainError, Unavailable
from services.runtime.identity import Identity

from .api_outreach import OutreachApi
from .peers import Peers

CHAT_TRANSCRIPTS = registry.OUTBOUND_CHAT_TRANSCRIPTS
BODY_MAX = 90_000  # below the notification's 100 000

_WORDS = {
    "ja": {
        "subject": "チャットの記録",
        "intro": "{inbox}とのチャットの記録をお送りします。",
        "you": "あなた",
        "staff": "担当者",
        "cut": "（以下省略）",
        "zone": "時刻は {zone} の時刻です。",
    },
    "en": {
        "subject": "Your chat transcript",
        "intro": "Here is the transcript of your chat with {inbox}.",
        "you": "You",
        "staff": "Staff",
        "cut": "(the rest is left out)",
        "zone": "Times are in {zone}.",
    },
}


def _plain(text: str) -> str:
    """A visitor's or operator's words where a notification reads `{{…}}` as its words:
    the braces kept apart (a zero-width space) so nothing is taken for one."""
    return text.replace("{{", "{\u200b{").replace("}}", "}\u200b}")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def transcript(
    language: str,
    inbox_name: str,
    lines: Sequence[ingestion_channels_pb2.ChatMessage],
    time_zone: str = "UTC",
) -> tuple[str, str]:
    """(subject, body) of the transcript mail, plain text, its times in `time_zone` (the
    tenant's)."""
    w = _WORDS["ja" if language == "ja" else "en"]
    zone = _zone(time_zone)
    out = [w["intro"].format(inbox=_plain(inbox_name)), w["zone"].format(zone=zone.key), ""]
    size = sum(len(s) for s in out)
    for m in lines:
        at = (
            m.created_at.ToDatetime(tzinfo=UTC).astimezone(zone)
            if m.HasField("created_at")
            else None
        )
        stamp = at.strftime("%Y-%m-%d %H:%M") if at else ""
        who = w["you"] if m.direction == "in" else (m.author_name or w["staff"])
        block = f"[{stamp}] {_plain(who)}:\n{_plain(m.text)}\n"
        if size + len(block) > BODY_MAX:
            out.append(w["cut"])
            break
        out.append(block)
        size += len(block)
    return w["subject"], "\n".join(out)


class ChatTranscripts:
    def __init__(self, ingestion: grpc.aio.Channel, outreach: OutreachApi, peers: Peers) -> None:
        self._peers = peers
        self._chat = ingestion_channels_pb2_grpc.ChatServiceStub(ingestion)  # type: ignore[no-untyped-call,unused-ignore]
        self._outreach = outreach
        self._log = log.get("outbound.chat_transcripts")

    async def on_conversation(self, env: events_pb2.EventEnvelope, delivery: Delivery) -> None:
        p = events.payload_of(env, events.CHANNEL_CONVERSATION)
        if p.action != "ended" or p.kind != "chat":
            return
        with log.bound(tenant_id=env.tenant_id, conversation_id=p.conversation_id):
            await self._mail(env.tenant_id, p)

    async def _history(
        self, tenant_id: str, conversation_id: str
    ) -> tuple[ingestion_channels_pb2.Conversation, list[ingestion_channels_pb2.ChatMessage]]:
        md = Identity(tenant_id=tenant_id).metadata()
        lines: list[ingestion_channels_pb2.ChatMessage] = []
        after = 0
        while True:
            try:
                resp = await self._chat.ChatHistory(
                    ingestion_channels_pb2.ChatHistoryRequest(
                        conversation_id=conversation_id, after_seq=after, limit=500
                    ),
                    metadata=md,
                    timeout=10,
                )
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.NOT_FOUND:
                    raise DomainError("the conversation is gone") from None
                raise Unavailable(f"ingestion.ChatHistory: {err.code().name}") from None
            lines.extend(resp.messages)
            if len(resp.messages) < 500:
                return resp.conversation, lines
            after = resp.messages[-1].seq

    async def _mail(self, tenant_id: str, p: events_pb2.ChannelConversationChanged) -> None:
        try:
            conv, lines = await self._history(tenant_id, p.conversation_id)
        except DomainError as err:
            if isinstance(err, Unavailable):
                raise
            self._log.info("no transcript", why=err.message)
            return
        if not conv.email or not lines:
            return  # no address left, or nothing said
        inbox_name = await self._inbox_name(tenant_id, conv.inbox_id)
        zone = await self._peers.tenant_zone(Identity(tenant_id=tenant_id).metadata())
        subject, body = transcript(conv.language, inbox_name, lines, zone)
        token = identity.set_current(Identity(tenant_id=tenant_id))
        try:
            resp = await self._outreach.CreateNotification(
                opb.CreateNotificationRequest(
                    idempotency_key=f"chat-transcript:{conv.id}",
                    inbox_id=conv.inbox_id,
                    subject=subject,
                    body=body,
                    to=opb.Recipient(address=conv.email, name=conv.sender_name),
                ),
                None,  # type: ignore[arg-type]
            )
        except Unavailable:
            raise
        except DomainError as err:
            self._log.warning("transcript not mailed", error=err.message, field=err.field or None)
            return
        finally:
            identity.reset(token)
        self._log.info(
            "transcript mailed" if resp.created else "transcript mailed before",
            notification_id=resp.notification.id,
            at=datetime.now(UTC).isoformat(),
        )

    async def _inbox_name(self, tenant_id: str, inbox_id: str) -> str:
        inboxes = await self._peers.inboxes(Identity(tenant_id=tenant_id).metadata())
        found = next((i for i in inboxes if i.id == inbox_id), None)
        return found.name if found is not None else ""
