"""What composition asks the services that own the data — always as the caller, so that
their own checks (tenant, inbox membership, permissions) apply: tickets (the ticket, its
contact, the reply-lock fence), accounts (inbox addresses, the operator's address) and
ingestion (the parsed mail being answered, its attachments)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime.errors import DomainError, FailedPrecondition, NotFound, Unavailable
from services.runtime.identity import Identity

from . import reserved


@dataclass(frozen=True)
class InboxInfo:
    name: str
    addresses: tuple[str, ...]
    plain_text_only: bool  # replies are plain text: no HTML body


@dataclass(frozen=True)
class MailRef:
    """One mail of a ticket, as the draft needs it."""

    message_id: str  # ingestion's id
    rfc822_id: str
    subject: str
    sender: reserved.Person
    date: datetime | None
    references: tuple[str, ...]
    channel: str = ""
    to: tuple[tuple[str, str], ...] = ()  # (name, address)
    stranger: bool = False  # ADR 0009: its sender was not a participant of the ticket
    verified: bool = False  # a trusted host vouches for its From address


@dataclass(frozen=True)
class TicketView:
    id: str
    number: int
    subject: str
    inbox_id: str
    inbox_name: str
    customer: reserved.Person
    mails: tuple[MailRef, ...]  # oldest first
    participants: tuple[str, ...]  # every address that wrote or was written to (no stranger)

    def first_written_to(self) -> tuple[tuple[str, str], ...]:
        """The recipients of the first mail we sent on the ticket (its customer, when we
        started it)."""
        return next((m.to for m in self.mails if m.channel == "sent"), ())

    def mail(self, message_id: str) -> MailRef:
        if not message_id:
            if not self.mails:
                raise NotFound("the ticket has no mail to answer", field="message_id")
            return self.mails[-1]
        for m in self.mails:
            if m.message_id == message_id:
                return m
        raise NotFound("no such mail in this ticket", field="message_id")


@dataclass(frozen=True)
class Parsed:
    """The parsed mail from ingestion (its document, as JSON)."""

    doc: dict[str, Any] = field(default_factory=dict)

    def addresses(self, key: str) -> list[tuple[str, str]]:
        return [
            (a.get("name") or "", a.get("address") or "")
            for a in self.doc.get(key) or []
            if a.get("valid", True) and a.get("address")
        ]

    @property
    def text(self) -> str:
        return str(self.doc.get("text") or "")


def _raise(err: grpc.aio.AioRpcError, what: str) -> None:
    code = err.code()
    if code == grpc.StatusCode.NOT_FOUND:
        raise NotFound(err.details() or f"no such {what}", field=f"{what}_id") from None
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        raise FailedPrecondition(err.details() or "refused", field="fence") from None
    if code == grpc.StatusCode.PERMISSION_DENIED:
        from services.runtime.errors import PermissionDenied

        raise PermissionDenied(err.details() or "refused") from None
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        from services.runtime.errors import InvalidArgument

        raise InvalidArgument(err.details() or "refused", field=f"{what}_id") from None
    raise Unavailable(f"{what}: {code.name}") from None


class Peers:
    def __init__(
        self, tickets: grpc.aio.Channel, accounts: grpc.aio.Channel, ingestion: grpc.aio.Channel
    ) -> None:
        self._tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self._accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self._ingestion = ingestion_pb2_grpc.IngestionServiceStub(ingestion)

    async def check_fence(self, ident: Identity, ticket_id: str, fence: int) -> None:
        """The caller holds the ticket's reply lock with this fence, or FailedPrecondition."""
        if fence <= 0:
            raise FailedPrecondition(
                "take the reply lock first: saving a reply needs its fence", field="fence"
            )
        try:
            await self._tickets.CheckFence(
                tickets_pb2.CheckFenceRequest(ticket_id=ticket_id, fence=fence),
                metadata=ident.metadata(),
                timeout=5,
            )
        except grpc.aio.AioRpcError as err:
            _raise(err, "ticket")

    async def ticket(self, ident: Identity, ticket_id: str) -> TicketView:
        try:
            resp = await self._tickets.GetTicket(
                tickets_pb2.GetTicketRequest(ticket_id=ticket_id),
                metadata=ident.metadata(),
                timeout=10,
            )
        except grpc.aio.AioRpcError as err:
            _raise(err, "ticket")
        t = resp.ticket
        company, customer_name = "", getattr(t, "from").name
        contact_addresses: list[str] = []
        if t.contact_id:
            try:
                contact = await self._tickets.GetContact(
                    tickets_pb2.GetContactRequest(contact_id=t.contact_id),
                    metadata=ident.metadata(),
                    timeout=5,
                )
                company, customer_name = contact.company, contact.name or customer_name
                contact_addresses = list(contact.addresses)
            except grpc.aio.AioRpcError:
                pass  # a contact merged away meanwhile: the ticket's sender will do
        mails: list[MailRef] = []
        people: set[str] = set(contact_addresses)
        for m in resp.messages:
            if not m.HasField("mail"):
                continue
            s = m.mail
            sender = getattr(s, "from")
            if not m.stranger:  # a stranger's mail makes nobody a participant
                people.update(a.address.lower() for a in (sender, *s.to, *s.cc) if a.address)
            date = s.date.ToDatetime(tzinfo=UTC) if s.HasField("date") else None
            mails.append(
                MailRef(
                    message_id=m.id,
                    rfc822_id=s.rfc822_message_id,
                    subject=s.subject,
                    sender=reserved.Person(sender.name, sender.address),
                    date=date or m.received_at.ToDatetime(tzinfo=UTC),
                    references=tuple(s.references),
                    channel=m.channel,
                    to=tuple((a.name, a.address) for a in s.to),
                    stranger=m.stranger,
                    verified=s.sender_auth.verified,
                )
            )
        frm = getattr(t, "from")
        return TicketView(
            id=t.id,
            number=t.number,
            subject=t.subject,
            inbox_id=t.inbox.id,
            inbox_name=t.inbox.name,
            customer=reserved.Person(customer_name, frm.address, company),
            mails=tuple(mails),
            participants=tuple(sorted(people)),
        )

    async def inbox_addresses(self, ident: Identity, inbox_id: str) -> tuple[str, list[str]]:
        """The inbox's name and addresses, if the caller may see it."""
        inbox = await self.inbox(ident, inbox_id)
        return inbox.name, list(inbox.addresses)

    async def inbox(self, ident: Identity, inbox_id: str) -> InboxInfo:
        """The inbox, if the caller may see it."""
        try:
            resp = await self._accounts.ListInboxes(
                accounts_pb2.ListInboxesRequest(), metadata=ident.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError as err:
            raise Unavailable(f"accounts: {err.code().name}") from None
        for inbox in resp.inboxes:
            if inbox.id == inbox_id:
                return InboxInfo(inbox.name, tuple(inbox.addresses), inbox.plain_text_only)
        raise NotFound("no such inbox", field="inbox_id")

    async def operator_address(self, ident: Identity) -> str:
        try:
            me = await self._accounts.GetMe(
                accounts_pb2.GetMeRequest(), metadata=ident.metadata(), timeout=5
            )
        except grpc.aio.AioRpcError:
            return ""
        return me.operator.addresses[0] if me.operator.addresses else ""

    async def parsed(self, ident: Identity, message_id: str) -> Parsed:
        try:
            resp = await self._ingestion.GetMessage(
                ingestion_pb2.GetMessageRequest(message_id=message_id),
                metadata=ident.metadata(),
                timeout=30,
            )
        except grpc.aio.AioRpcError as err:
            _raise(err, "message")
        return Parsed(json.loads(resp.parsed_json) if resp.parsed_json else {})

    async def attachment(
        self, ident: Identity, message_id: str, index: int
    ) -> tuple[str, str, bytes]:
        try:
            resp = await self._ingestion.GetAttachment(
                ingestion_pb2.GetAttachmentRequest(message_id=message_id, index=index),
                metadata=ident.metadata(),
                timeout=60,
            )
        except grpc.aio.AioRpcError as err:
            _raise(err, "message")
        return resp.filename, resp.content_type, bytes(resp.data)


__all__ = ["DomainError", "MailRef", "Parsed", "Peers", "TicketView"]
