"""Queueing a draft: the one exactly-once path every draft takes into `sends`, whether an
operator sends it (`SubmitDraft`) or a final approval hands it over
(`approvals.ApprovedSends`). Composition renders the exact bytes of the draft's current
revision; the draft is marked `submitted` at that revision (refused if it was saved
again meanwhile); the item and its `send.changed` are one transaction; the unique
(tenant, draft, revision) of live `sends` turns a second submission of the same
revision into the first item.

A reply to a channel conversation (issue 21, channel_sends.py) needs no SMTP route; its
reply window is asked at the sending time, and a closed one refuses it here (409
`reply_window_closed`); mailboxes and a conversation together are refused
(`channel_mixed_recipients`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, events_pb2

from services.runtime import log
from services.runtime.channel_address import MIXED_RECIPIENTS, channel_target
from services.runtime.clock import Clock
from services.runtime.db import Database
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.identity import Identity
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox, first_time
from services.runtime.secrets import SecretBox

from . import domain, signing
from .changes import send_changed
from .channel_sends import ChannelReplies, route_name
from .dispatcher import Dispatcher, Routes
from .domain import State
from .peers import Peers
from .records import Send
from .repo import NewSend, OutboundRepo

APPROVAL_REQUIRED = "approval_required"  # the refusal's reason: 403 `approval_required`


@dataclass
class Deps:
    db: Database
    repo: OutboundRepo
    outbox: Outbox
    peers: Peers
    routes: Routes
    box: SecretBox
    clock: Clock
    ids: IdGenerator
    dispatcher: Dispatcher
    max_attempts: int


@dataclass(frozen=True)
class Submission:
    """A draft's current revision to queue, for `ident` (its sender: the send's operator,
    whose identity finishes it — the draft marked sent, the ticket's status)."""

    draft_id: str
    ticket_id: str
    from_address: str  # the draft's sender (the domain of its Message-ID)
    send_at: datetime
    scheduled: bool
    status_after: int
    actor: common_pb2.Actor  # who made it go (the send.changed's actor)
    fence: int = 0  # the sender's reply lock on the ticket (0: none held)
    approved_revision: int = 0  # > 0: an approval binds this revision, only it may go
    # a consumer's submission: the event it applies, recorded once in the transaction
    cause: events_pb2.EventEnvelope | None = None
    consumer: str = ""
    without_survey: bool = False  # "resolve without survey" (issue 20)
    # a channel reply's window and channel judged at delivery only, not refused here: an
    # approval's hand-over, which has nobody to answer a 409 to — a refusal then is a
    # failed send with its reason in the ticket, and the draft opens again for its author
    channel_judged_at_delivery: bool = False


class _AlreadyApplied(Exception):
    """The event was applied before: nothing is written."""


class Submitter:
    _d: Deps
    _log: Any

    def __init__(self, deps: Deps) -> None:
        self._d = deps
        self._channels = ChannelReplies(deps.peers)
        self._log = log.get("outbound.api")

    async def sign(self, tenant: str, raw: bytes, sender: str) -> tuple[bytes, bool]:
        """DKIM-signed when the tenant has a key for the sender's domain (OUT-7)."""
        d = self._d
        key = await d.repo.dkim_key(tenant, domain.domain_of(sender))
        if key is None:
            return raw, False
        pem = d.box.open(bytes(key.private_key_sealed), f"{tenant}:{key.domain}")
        return signing.sign(raw, domain=key.domain, selector=key.selector, private_pem=pem), True

    async def refuse_blocked(
        self, md: Sequence[tuple[str, str]], draft_id: str, acknowledged: Sequence[str] | None
    ) -> None:
        """The pre-send checks: a blocking finding refuses; a warning refuses unless
        acknowledged (None: warnings do not stop it — an approver has read the mail)."""
        found = await self._d.peers.check_draft(md, draft_id)
        blocking = [f for f in found.findings if f.severity == "blocking"]
        if blocking:
            raise FailedPrecondition(
                f"the draft cannot be sent: {blocking[0].message}",
                field=blocking[0].field or "draft_id",
                # a channel reply to mailboxes too: the same refusal as outbound's own
                reason=MIXED_RECIPIENTS if blocking[0].code == MIXED_RECIPIENTS else None,
            )
        if acknowledged is None:
            return
        unseen = sorted(
            {f.code for f in found.findings if f.severity == "warning"} - set(acknowledged)
        )
        if unseen:
            raise FailedPrecondition(
                "the pre-send checks warn about: "
                + ", ".join(unseen)
                + " — look at them, then send again acknowledging them",
                field="acknowledged_warnings",
            )

    async def queue(self, ident: Identity, sub: Submission) -> Send | None:
        """The draft's current revision as an outbox item (or the live item of that
        revision already there). None only for a consumer's event applied before whose
        item is no longer live (cancelled since)."""
        d = self._d
        md = ident.metadata()
        draft_id, ticket_id = sub.draft_id, sub.ticket_id
        send_id = d.ids.new()
        sender_domain = domain.domain_of(sub.from_address)
        if ticket_id:
            message_id = await d.peers.mint_message_id(md, ticket_id, sender_domain)
        else:
            message_id = f"{send_id.hex}.sb@{sender_domain}"
        mime = await d.peers.render_mime(md, draft_id, message_id, sub.send_at)
        if sub.approved_revision and mime.revision != sub.approved_revision:
            raise PermissionDenied(
                "the draft changed after its approval: request approval again",
                reason=APPROVAL_REQUIRED,
            )
        recipients = list(mime.recipients)
        target = channel_target(recipients)
        if target is None:
            domain.choose_route(await d.routes.of(ident.tenant_id), mime.inbox_id, recipients)
        elif not sub.channel_judged_at_delivery:
            await self._channels.check(ident.tenant_id, target, sub.send_at)
        raw, signed = await self.sign(ident.tenant_id, bytes(mime.raw), mime.envelope_from)
        await d.peers.set_draft_state(md, draft_id, "submitted", str(send_id), mime.revision)
        new = NewSend(
            id=send_id,
            tenant_id=uuid.UUID(ident.tenant_id),
            kind="reply",
            draft_id=uuid.UUID(draft_id),
            draft_revision=mime.revision,
            ticket_id=uuid.UUID(ticket_id) if ticket_id else None,
            inbox_id=uuid.UUID(mime.inbox_id),
            operator_id=uuid.UUID(ident.operator_id),
            operator_name=ident.display_name,
            operator_md=md,
            fence=sub.fence if ticket_id else 0,
            lock_held=bool(ticket_id) and bool(sub.fence) and not sub.scheduled,
            status_after=sub.status_after,
            message_id=message_id,
            subject=mime.subject,
            envelope_from=mime.envelope_from,
            recipients=recipients,
            raw=raw,
            dkim_signed=signed,
            send_at=sub.send_at,
            max_attempts=d.max_attempts,
            route_name=route_name(target) if target else "",
            without_survey=sub.without_survey,
        )
        now = d.clock.now()
        try:
            async with d.db.transaction() as conn:
                if sub.cause is not None and not await first_time(conn, sub.consumer, sub.cause):
                    raise _AlreadyApplied
                row = await d.repo.insert_send(conn, new, now, None)
                await d.repo.add_event(
                    conn,
                    send_changed(
                        d.ids,
                        row,
                        action="submitted",
                        state=State.SCHEDULED,
                        previous="",
                        at=now,
                        actor=sub.actor,
                        cause=sub.cause,
                        correlation_id=ident.correlation_id,
                        draft_kind=mime.draft_kind,
                    ),
                )
        except (asyncpg.UniqueViolationError, _AlreadyApplied) as err:
            existing = await d.repo.live_send(ident.tenant_id, uuid.UUID(draft_id), mime.revision)
            if existing is None and isinstance(err, asyncpg.UniqueViolationError):
                raise
            if existing is None:  # marked submitted for nothing: open again
                await self._reopen_quietly(md, draft_id, str(send_id))
            return existing
        except BaseException:
            await self._reopen_quietly(md, draft_id, str(send_id))
            raise
        d.outbox.wake()
        d.dispatcher.wake()
        self._log.info(
            "draft submitted",
            send_id=str(send_id),
            draft_id=draft_id,
            ticket_id=ticket_id or None,
            send_at=sub.send_at.isoformat(),
            recipients=len(recipients),
            dkim=signed,
        )
        return row

    async def _reopen_quietly(self, md: Any, draft_id: str, send_id: str) -> None:
        try:
            await self._d.peers.set_draft_state(md, draft_id, "open", send_id)
        except Exception as err:
            self._log.warning("could not reopen the draft", draft_id=draft_id, error=repr(err))
