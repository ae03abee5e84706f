"""What outbound asks the services that own the data: composition (the draft's checks and
exact bytes, its state; templates for automatic replies), tickets (the reply lock's
fence, signed Message-IDs, the status after sending, the lock's release), ingestion (the
sent mail recorded in its ticket; a channel reply's window and delivery, issue 21) and
accounts (inbox addresses). Calls made for an
operator carry the operator's identity, so that the owners' own checks apply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import grpc
from switchboard.v1 import (
    accounts_pb2,
    accounts_pb2_grpc,
    approval_pb2,
    approval_pb2_grpc,
    composition_pb2,
    composition_pb2_grpc,
    ingestion_channels_pb2,
    ingestion_channels_pb2_grpc,
    ingestion_pb2,
    ingestion_pb2_grpc,
    tickets_pb2,
    tickets_pb2_grpc,
)

from services.runtime.grpc_client import passed_on

Metadata = Sequence[tuple[str, str]]


class Peers:
    def __init__(
        self,
        composition: grpc.aio.Channel,
        tickets: grpc.aio.Channel,
        ingestion: grpc.aio.Channel,
        accounts: grpc.aio.Channel,
        approval: grpc.aio.Channel,
    ) -> None:
        self.composition = composition_pb2_grpc.CompositionServiceStub(composition)
        self.tickets = tickets_pb2_grpc.TicketsServiceStub(tickets)
        self.ingestion = ingestion_pb2_grpc.IngestionServiceStub(ingestion)
        self.channels = ingestion_channels_pb2_grpc.ChannelsServiceStub(ingestion)
        self.accounts = accounts_pb2_grpc.AccountsServiceStub(accounts)
        self.approval = approval_pb2_grpc.ApprovalServiceStub(approval)

    async def _call(
        self, service: str, method: Any, request: Any, md: Metadata, timeout: float
    ) -> Any:
        try:
            return await method(request, metadata=list(md), timeout=timeout)
        except grpc.aio.AioRpcError as err:
            raise passed_on(err, service) from err

    # -- composition ------------------------------------------------------------------

    async def check_draft(self, md: Metadata, draft_id: str) -> Any:
        return await self._call(
            "composition",
            self.composition.CheckDraft,
            composition_pb2.CheckDraftRequest(draft_id=draft_id),
            md,
            20,
        )

    async def get_draft(self, md: Metadata, draft_id: str) -> Any:
        return await self._call(
            "composition",
            self.composition.GetDraft,
            composition_pb2.GetDraftRequest(draft_id=draft_id),
            md,
            10,
        )

    async def render_mime(self, md: Metadata, draft_id: str, message_id: str, date: Any) -> Any:
        req = composition_pb2.RenderDraftMimeRequest(draft_id=draft_id, message_id=message_id)
        req.date.FromDatetime(date)
        return await self._call("composition", self.composition.RenderDraftMime, req, md, 30)

    async def set_draft_state(
        self, md: Metadata, draft_id: str, state: str, send_id: str, revision: int = 0
    ) -> Any:
        return await self._call(
            "composition",
            self.composition.SetDraftState,
            composition_pb2.SetDraftStateRequest(
                draft_id=draft_id, state=state, send_id=send_id, revision=revision
            ),
            md,
            10,
        )

    async def render_template(
        self, md: Metadata, template_id: str, ticket_id: str, message_id: str
    ) -> Any:
        return await self._call(
            "composition",
            self.composition.RenderTemplate,
            composition_pb2.RenderTemplateRequest(
                template_id=template_id, ticket_id=ticket_id, message_id=message_id
            ),
            md,
            15,
        )

    async def get_template(self, md: Metadata, template_id: str, field: str) -> Any:
        try:
            return await self.composition.GetTemplate(
                composition_pb2.GetTemplateRequest(template_id=template_id),
                metadata=list(md),
                timeout=10,
            )
        except grpc.aio.AioRpcError as err:
            refusal = passed_on(err, "composition")
            refusal.field = field
            raise refusal from err

    # -- tickets ----------------------------------------------------------------------

    async def check_fence(self, md: Metadata, ticket_id: str, fence: int) -> Any:
        return await self._call(
            "tickets",
            self.tickets.CheckFence,
            tickets_pb2.CheckFenceRequest(ticket_id=ticket_id, fence=fence),
            md,
            10,
        )

    async def require_ticket(self, md: Metadata, ticket_id: str) -> None:
        """NotFound unless the caller may see this ticket."""
        await self._call(
            "tickets",
            self.tickets.GetTicket,
            tickets_pb2.GetTicketRequest(ticket_id=ticket_id),
            md,
            10,
        )

    async def mint_message_id(self, md: Metadata, ticket_id: str, domain: str) -> str:
        resp = await self._call(
            "tickets",
            self.tickets.MintMessageId,
            tickets_pb2.MintMessageIdRequest(ticket_id=ticket_id, domain=domain),
            md,
            10,
        )
        return str(resp.message_id)

    async def set_status(
        self, md: Metadata, ticket_id: str, status: int, *, without_survey: bool = False
    ) -> Any:
        return await self._call(
            "tickets",
            self.tickets.UpdateTicket,
            tickets_pb2.UpdateTicketRequest(
                ticket_id=ticket_id,
                status=status,  # type: ignore[arg-type]
                without_survey=without_survey,
            ),
            md,
            15,
        )

    async def release_lock(
        self, md: Metadata, ticket_id: str, fence: int, unless_reacquired_after: Any = None
    ) -> bool:
        """The operator's reply lock let go; after a send, not when they acquired it again
        since it was queued (`unless_reacquired_after`: writing their next reply)."""
        request = tickets_pb2.ReplyLockRequest(ticket_id=ticket_id, fence=fence)
        if unless_reacquired_after is not None:
            request.unless_reacquired_after.FromDatetime(unless_reacquired_after)
        resp = await self._call("tickets", self.tickets.ReleaseReplyLock, request, md, 10)
        return bool(resp.released)

    # -- approval ---------------------------------------------------------------------

    async def evaluate(
        self, md: Metadata, draft_id: str, *, requested: bool = False
    ) -> approval_pb2.Evaluation:
        """Whether the caller's draft needs approval, and whether a final approval binds
        its current revision (approval decides; outbound only enforces). `requested`: the
        operator ticked "request approval"."""
        found: approval_pb2.Evaluation = await self._call(
            "approval",
            self.approval.Evaluate,
            approval_pb2.EvaluateRequest(draft_id=draft_id, requested=requested),
            md,
            10,
        )
        return found

    # -- ingestion, accounts ----------------------------------------------------------

    async def record_sent(
        self,
        md: Metadata,
        inbox_id: str,
        raw: bytes,
        sender: str,
        recipients: Sequence[str],
        ticket_id: str,
        sent_at: datetime | None = None,
    ) -> Any:
        """File the mail as sent in the ticket it was sent from (none: a new mail, which
        starts one), at the time it was sent."""
        request = ingestion_pb2.RecordSentRequest(
            inbox_id=inbox_id,
            raw=raw,
            envelope_from=sender,
            recipients=list(recipients),
            ticket_id=ticket_id,
        )
        if sent_at is not None:
            request.sent_at.FromDatetime(sent_at)
        return await self._call(
            "ingestion",
            self.ingestion.RecordSent,
            request,
            md,
            60,
        )

    async def check_reply(
        self, md: Metadata, address: str, at: Any
    ) -> ingestion_channels_pb2.CheckReplyResponse:
        """May a reply go to this conversation at `at` (its reply window, the channel)."""
        req = ingestion_channels_pb2.CheckReplyRequest(address=address)
        req.at.FromDatetime(at)
        found: ingestion_channels_pb2.CheckReplyResponse = await self._call(
            "ingestion", self.channels.CheckReply, req, md, 10
        )
        return found

    async def deliver(
        self, md: Metadata, request: ingestion_channels_pb2.DeliverRequest
    ) -> ingestion_channels_pb2.DeliveryReceipt:
        """A channel reply handed to ingestion (idempotent by its send_id)."""
        receipt: ingestion_channels_pb2.DeliveryReceipt = await self._call(
            "ingestion", self.channels.Deliver, request, md, 30
        )
        return receipt

    async def ticket(self, md: Metadata, ticket_id: str) -> tickets_pb2.GetTicketResponse:
        found: tickets_pb2.GetTicketResponse = await self._call(
            "tickets",
            self.tickets.GetTicket,
            tickets_pb2.GetTicketRequest(ticket_id=ticket_id),
            md,
            10,
        )
        return found

    async def inboxes(self, md: Metadata) -> list[Any]:
        resp = await self._call(
            "accounts", self.accounts.ListInboxes, accounts_pb2.ListInboxesRequest(), md, 10
        )
        return list(resp.inboxes)

    async def tenant_zone(self, md: Metadata) -> str:
        """The tenant's time zone (asked as the service: no operator needed)."""
        found = await self._call(
            "accounts",
            self.accounts.GetTenantSettings,
            accounts_pb2.GetTenantSettingsRequest(),
            md,
            10,
        )
        return str(found.time_zone)

    async def operator(self, md: Metadata, operator_id: str) -> accounts_pb2.Operator:
        """An operator as accounts knows them now (roles, permissions, inboxes): asked as
        that operator, who may read themselves."""
        found: accounts_pb2.Operator = await self._call(
            "accounts",
            self.accounts.GetOperator,
            accounts_pb2.GetOperatorRequest(operator_id=operator_id),
            md,
            10,
        )
        return found
