"""What routing asks the services that own the data: tickets (a ticket by number for the
dry run), ingestion (a stored mail's parsed document and header block, for the rules that
read headers or attachments) and accounts (the tenant's inboxes and operators, to check
the ids a rule names). An administrator's call carries their identity, so the owners'
checks (tenant, inbox) apply; intake calls as routing, within the mail's tenant."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    composition_pb2,
    composition_pb2_grpc,
    events_pb2,
    ingestion_pb2,
    ingestion_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.grpc_client import call_peer

from .rules_facts import MailDetails, details_of

Metadata = Sequence[tuple[str, str]]


class Peers:
    def __init__(
        self,
        tickets: grpc.aio.Channel,
        ingestion: grpc.aio.Channel,
        accounts: grpc.aio.Channel,
        composition: grpc.aio.Channel | None = None,
    ) -> None:
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self.ingestion = ingestion_pb2_grpc.IngestionServiceStub(ingestion)
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        # an auto_reply action's template is checked when the rule is saved
        self.composition = (
            composition_pb2_grpc.CompositionServiceStub(composition) if composition else None
        )

    async def template_exists(self, md: Metadata, template_id: str) -> bool:
        """Whether the caller (the administrator saving the rule) sees that template."""
        assert self.composition is not None, "routing's rules need composition"
        try:
            await call_peer(
                "composition",
                self.composition.GetTemplate,
                composition_pb2.GetTemplateRequest(template_id=template_id),
                md,
            )
        except NotFound:
            return False
        return True

    async def ticket_by_number(self, md: Metadata, number: int) -> tickets_pb2.GetTicketResponse:
        try:
            found: tickets_pb2.GetTicketResponse = await call_peer(
                "tickets",
                self.tickets.GetTicket,
                tickets_pb2.GetTicketRequest(number=number, with_contact=True),
                md,
            )
        except NotFound:
            raise NotFound(f"no ticket #{number}", field="ticket_number") from None
        return found

    async def ticket(self, md: Metadata, ticket_id: str) -> tickets_pb2.GetTicketResponse:
        found: tickets_pb2.GetTicketResponse = await call_peer(
            "tickets",
            self.tickets.GetTicket,
            tickets_pb2.GetTicketRequest(ticket_id=ticket_id, with_contact=True),
            md,
        )
        return found

    async def apply_decision(
        self,
        md: Metadata,
        ticket_id: str,
        decision: events_pb2.RoutingDecision,
        rule_depth: int,
        cause_event_id: str,
    ) -> None:
        await call_peer(
            "tickets",
            self.tickets.ApplyRoutingDecision,
            tickets_pb2.ApplyRoutingDecisionRequest(
                ticket_id=ticket_id,
                decision=decision,
                rule_depth=rule_depth,
                cause_event_id=cause_event_id,
            ),
            md,
        )

    async def mail_details(self, md: Metadata, message_id: str) -> MailDetails:
        """The stored mail's headers, attachments and text. A mail whose original may not
        be read (an infected one) is judged on its parsed document alone."""
        parsed: ingestion_pb2.GetMessageResponse = await call_peer(
            "ingestion",
            self.ingestion.GetMessage,
            ingestion_pb2.GetMessageRequest(message_id=message_id),
            md,
        )
        try:
            raw: ingestion_pb2.GetRawMessageResponse = await call_peer(
                "ingestion",
                self.ingestion.GetRawMessage,
                ingestion_pb2.GetRawMessageRequest(message_id=message_id),
                md,
            )
            data = raw.raw
        except (FailedPrecondition, NotFound):
            data = b""
        return details_of(parsed.parsed_json, data)

    async def inbox_ids(self, md: Metadata) -> set[str]:
        found = await call_peer(
            "accounts", self.accounts.ListInboxes, accounts_pb2.ListInboxesRequest(), md
        )
        return {i.id for i in found.inboxes}

    async def operator_ids(self, md: Metadata) -> set[str]:
        found = await call_peer(
            "accounts",
            self.accounts.ListOperators,
            accounts_pb2.ListOperatorsRequest(include_inactive=False),
            md,
        )
        return {o.id for o in found.operators}
