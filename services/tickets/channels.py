"""Channel adapters (ING-6): every channel's items land in the same ticket model as
messages of a ticket. An adapter knows how a stored message of its channel looks in the
timeline; mail and phone memos have one today, chat and social ones will add theirs."""

from __future__ import annotations

from typing import Protocol

from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from .records import StoredMessage

MAIL_CHANNELS = ("smtp", "imap", "form", "import")


class ChannelAdapter(Protocol):
    channels: tuple[str, ...]

    def message_pb(self, row: StoredMessage) -> tickets_pb2.TicketMessage:
        """A stored message row of this channel as a timeline message."""
        ...

    def participant(self, row: StoredMessage) -> common_pb2.Address:
        """Who the customer is in this message (for a ticket split out of it)."""
        ...


def _base(row: StoredMessage) -> tickets_pb2.TicketMessage:
    msg = tickets_pb2.TicketMessage(id=str(row.id), channel=row.channel, stranger=row.stranger)
    msg.received_at.FromDatetime(row.received_at)
    return msg


class MailAdapter:
    channels: tuple[str, ...] = MAIL_CHANNELS

    def message_pb(self, row: StoredMessage) -> tickets_pb2.TicketMessage:
        msg = _base(row)
        if row.summary is not None:
            msg.mail.CopyFrom(events_pb2.MailSummary.FromString(bytes(row.summary)))
        return msg

    def participant(self, row: StoredMessage) -> common_pb2.Address:
        if row.summary is None:
            return common_pb2.Address()
        sender = getattr(events_pb2.MailSummary.FromString(bytes(row.summary)), "from")
        return common_pb2.Address(name=sender.name, address=sender.address)


class PhoneAdapter:
    channels: tuple[str, ...] = ("phone",)

    def message_pb(self, row: StoredMessage) -> tickets_pb2.TicketMessage:
        msg = _base(row)
        msg.memo.CopyFrom(
            tickets_pb2.PhoneMemo(
                body=row.memo_body or "",
                direction=row.memo_direction or "inbound",
                caller_name=row.memo_caller_name or "",
                phone=row.memo_phone or "",
                duration_s=row.memo_duration_s or 0,
                author=common_pb2.OperatorRef(
                    id=str(row.author_id or ""), display_name=row.author_name or ""
                ),
            )
        )
        return msg

    def participant(self, row: StoredMessage) -> common_pb2.Address:
        return common_pb2.Address(name=row.memo_caller_name or "")


_ADAPTERS: dict[str, ChannelAdapter] = {}
_adapter: ChannelAdapter
for _adapter in (MailAdapter(), PhoneAdapter()):
    for _channel in _adapter.channels:
        _ADAPTERS[_channel] = _adapter


def adapter(channel: str) -> ChannelAdapter:
    """The adapter of a channel; mail's for channels without their own."""
    return _ADAPTERS.get(channel, _ADAPTERS["smtp"])


def message_pb(row: StoredMessage) -> tickets_pb2.TicketMessage:
    return adapter(row.channel).message_pb(row)
