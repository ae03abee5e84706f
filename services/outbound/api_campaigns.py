"""CampaignsService (issue 20, OUT-6): campaigns created, changed, scheduled, paused,
resumed and cancelled by operators with `manage_outreach`; their recipients listed.
The state machine is campaign_domain's; another tenant's id is NOT_FOUND."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from switchboard.v1 import outbound_campaigns_pb2 as pb
from switchboard.v1 import outbound_campaigns_pb2_grpc as pb_grpc

from services.runtime import identity, log, permissions
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid
from services.runtime.paging import page_size

from . import campaign_domain as cd
from .api import Deps
from .campaign_domain import Person
from .campaign_repo import Campaign, CampaignRepo, columns_of
from .campaigns import announce


def _manager() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, permissions.MANAGE_OUTREACH, "manage campaigns")
    return ident


def _ts(target: Timestamp, value: datetime | None) -> None:
    if value is not None:
        target.FromDatetime(value)


def campaign_pb(c: Campaign, totals: dict[str, int]) -> pb.Campaign:
    out = pb.Campaign(
        id=str(c.id),
        name=c.name,
        inbox_id=str(c.inbox_id),
        subject=c.subject,
        body=c.body,
        language=c.language,
        list_id=str(c.list_id or ""),
        segment_id=str(c.segment_id or ""),
        throttle_per_domain_per_minute=c.throttle or 0,
        state=c.state,
        created_by=str(c.created_by or ""),
        errors=c.errors,
        snapshot_done=c.snapshot_done,
        totals=pb.CampaignTotals(recipients=sum(totals.values()), **totals),
    )
    if c.window is not None:
        start, end = c.window.text()
        out.window.CopyFrom(pb.SendingWindow(start=start, end=end, days=list(c.window.days)))
    _ts(out.scheduled_at, c.scheduled_at)
    _ts(out.created_at, c.created_at)
    _ts(out.updated_at, c.updated_at)
    _ts(out.started_at, c.started_at)
    _ts(out.finished_at, c.finished_at)
    return out


def recipient_pb(r: Any) -> pb.CampaignRecipient:
    out = pb.CampaignRecipient(
        id=str(r["id"]),
        contact_id=str(r["contact_id"]),
        address=r["address"],
        name=r["name"],
        state=r["state"],
        error=r["error"],
        time_zone=r["time_zone"],
        message_id=r["message_id"] or "",
    )
    _ts(out.not_before, r["not_before"])
    _ts(out.sent_at, r["sent_at"])
    _ts(out.updated_at, r["updated_at"])
    return out


class CampaignsApi(pb_grpc.CampaignsServiceServicer):
    def __init__(self, d: Deps, repo: CampaignRepo, wake: Any) -> None:
        self._d = d
        self._repo = repo
        self._wake = wake
        self._log = log.get("outbound.campaigns")

    async def _pb(self, c: Campaign) -> pb.Campaign:
        totals = await self._repo.totals(self._repo.pool, [c.id])
        return campaign_pb(c, totals[c.id])

    async def _inbox(self, ident: Identity, raw: str) -> uuid.UUID:
        inbox_id = parse_uuid(raw, "inbox_id")
        inboxes = await self._d.peers.inboxes(Identity(tenant_id=ident.tenant_id).metadata())
        if str(inbox_id) not in {i.id for i in inboxes}:
            raise NotFound("no such inbox", field="inbox_id")
        return inbox_id

    async def _found(self, ident: Identity, raw: str, conn: Any = None) -> Campaign:
        cid = parse_uuid(raw, "id")
        c = await self._repo.get(
            conn or self._repo.pool, ident.tenant_id, cid, lock=conn is not None
        )
        if c is None:
            raise NotFound("no such campaign", field="id")
        return c

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: Context
    ) -> pb.ListCampaignsResponse:
        ident = _manager()
        if request.state and request.state not in cd.STATES:
            raise InvalidArgument(f"state is one of {', '.join(cd.STATES)}", field="state")
        found = await self._repo.list_campaigns(ident.tenant_id, request.state)
        totals = await self._repo.totals(self._repo.pool, [c.id for c in found])
        return pb.ListCampaignsResponse(campaigns=[campaign_pb(c, totals[c.id]) for c in found])

    async def GetCampaign(self, request: pb.CampaignRef, context: Context) -> pb.Campaign:
        ident = _manager()
        return await self._pb(await self._found(ident, request.id))

    async def _checked(self, ident: Identity, c: Campaign, w: pb.CampaignWrite) -> Campaign:
        """`c` with the fields of `w` that are set, each checked (400 naming it)."""
        now = self._d.clock.now()
        if w.HasField("name"):
            c = replace(c, name=w.name.strip())
        if w.HasField("subject"):
            c = replace(c, subject=w.subject)
        if w.HasField("body"):
            c = replace(c, body=w.body)
        if w.HasField("language"):
            cd.check_language(w.language)
            c = replace(c, language=w.language)
        if w.HasField("inbox_id"):
            c = replace(c, inbox_id=await self._inbox(ident, w.inbox_id))
        if w.HasField("list_id") and w.list_id:
            c = replace(c, list_id=parse_uuid(w.list_id, "audience.list_id"), segment_id=None)
        elif w.HasField("segment_id") and w.segment_id:
            c = replace(c, segment_id=parse_uuid(w.segment_id, "audience.segment_id"), list_id=None)
        if w.clear_window:
            c = replace(c, window=None)
        elif w.HasField("window"):
            c = replace(c, window=cd.parse_window(w.window.start, w.window.end, w.window.days))
        if w.HasField("throttle_per_domain_per_minute"):
            value = w.throttle_per_domain_per_minute
            cd.check_throttle(value or None)
            c = replace(c, throttle=value or None)
        if w.clear_scheduled_at:
            c = replace(c, scheduled_at=None, state="draft")
        elif w.HasField("scheduled_at"):
            at = cd.check_schedule(w.scheduled_at.ToDatetime(tzinfo=UTC), now)
            c = replace(c, scheduled_at=at, state="scheduled")
        cd.check_text(c.name, c.subject, c.body)
        if c.list_id is None and c.segment_id is None:
            raise InvalidArgument("audience needs a list_id or a segment_id", field="audience")
        return c

    async def CreateCampaign(self, request: pb.CampaignWrite, context: Context) -> pb.Campaign:
        ident = _manager()
        if not request.HasField("inbox_id"):
            raise InvalidArgument("inbox_id is required", field="inbox_id")
        now = self._d.clock.now()
        blank = Campaign(
            uuid.UUID(ident.tenant_id), self._d.ids.new(), "", uuid.UUID(int=0), "", "", "",
            None, None, None, None, None, "draft", parse_uuid(ident.operator_id, "operator"),
            ident.display_name, False, "UTC", [],
            now, now, None, None,
        )  # fmt: skip
        c = await self._checked(ident, blank, request)
        async with self._d.db.transaction() as conn:
            c = await self._repo.insert(conn, c)
            await announce(self._d, conn, c, {}, "", now, ident_actor(ident))
        self._d.outbox.wake()
        self._log.info("campaign created", campaign_id=str(c.id), state=c.state)
        return await self._pb(c)

    async def UpdateCampaign(self, request: pb.CampaignWrite, context: Context) -> pb.Campaign:
        ident = _manager()
        now = self._d.clock.now()
        async with self._d.db.transaction() as conn:
            c = await self._found(ident, request.id, conn)
            cd.editable(c.state)
            changed = await self._checked(ident, c, request)
            before = columns_of(c)
            values = {k: v for k, v in columns_of(changed).items() if v != before[k]}
            c2 = await self._repo.update(conn, c.id, values, now)
            if c2.state != c.state:
                await announce(self._d, conn, c2, {}, c.state, now, ident_actor(ident))
        self._d.outbox.wake()
        return await self._pb(c2)

    async def DeleteCampaign(
        self, request: pb.CampaignRef, context: Context
    ) -> pb.DeleteCampaignResponse:
        ident = _manager()
        async with self._d.db.transaction() as conn:
            c = await self._found(ident, request.id, conn)
            cd.editable(c.state)
            await self._repo.delete(conn, c.id)
        self._log.info("campaign deleted", campaign_id=str(c.id))
        return pb.DeleteCampaignResponse()

    async def ScheduleCampaign(
        self, request: pb.ScheduleCampaignRequest, context: Context
    ) -> pb.Campaign:
        ident = _manager()
        now = self._d.clock.now()
        at = (
            cd.check_schedule(request.scheduled_at.ToDatetime(tzinfo=UTC), now)
            if request.HasField("scheduled_at")
            else now
        )
        async with self._d.db.transaction() as conn:
            c = await self._found(ident, request.id, conn)
            state = cd.move(c.state, "schedule")
            cd.check_text(c.name, c.subject, c.body)
            c2 = await self._repo.update(conn, c.id, {"state": state, "scheduled_at": at}, now)
            await announce(self._d, conn, c2, {}, c.state, now, ident_actor(ident))
        self._d.outbox.wake()
        self._wake()
        self._log.info("campaign scheduled", campaign_id=str(c.id), at=at.isoformat())
        return await self._pb(c2)

    async def _act(self, request: pb.CampaignRef, action: str) -> pb.Campaign:
        ident = _manager()
        now = self._d.clock.now()
        async with self._d.db.transaction() as conn:
            c = await self._found(ident, request.id, conn)
            state = cd.move(c.state, action)
            values: dict[str, Any] = {"state": state}
            if state == "cancelled":
                values["finished_at"] = now
                await self._repo.cancel_pending(conn, c.id, now)
            c2 = await self._repo.update(conn, c.id, values, now)
            totals = await self._repo.totals(conn, [c.id])
            await announce(self._d, conn, c2, totals[c.id], c.state, now, ident_actor(ident))
        self._d.outbox.wake()
        self._wake()
        self._log.info("campaign " + state, campaign_id=str(c.id))
        return await self._pb(c2)

    async def PauseCampaign(self, request: pb.CampaignRef, context: Context) -> pb.Campaign:
        return await self._act(request, "pause")

    async def ResumeCampaign(self, request: pb.CampaignRef, context: Context) -> pb.Campaign:
        return await self._act(request, "resume")

    async def CancelCampaign(self, request: pb.CampaignRef, context: Context) -> pb.Campaign:
        return await self._act(request, "cancel")

    async def ListRecipients(
        self, request: pb.ListRecipientsRequest, context: Context
    ) -> pb.ListRecipientsResponse:
        ident = _manager()
        c = await self._found(ident, request.campaign_id)
        if request.state and request.state not in cd.RECIPIENT_STATES:
            raise InvalidArgument(
                f"state is one of {', '.join(cd.RECIPIENT_STATES)}", field="state"
            )
        limit = page_size(request.limit, 100, 1000)
        after = parse_uuid(request.cursor, "cursor") if request.cursor else None
        rows = await self._repo.recipients(ident.tenant_id, c.id, request.state, after, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return pb.ListRecipientsResponse(
            recipients=[recipient_pb(r) for r in rows],
            next_cursor=str(rows[-1]["id"]) if more else "",
        )

    async def PreviewCampaign(
        self, request: pb.PreviewCampaignRequest, context: Context
    ) -> pb.PreviewCampaignResponse:
        ident = _manager()
        problems = []
        for text, field in ((request.subject, "subject"), (request.body, "body")):
            try:
                cd.check_words(text, field)
            except InvalidArgument as err:
                problems.append(f"{field}: {err.message}")
        inbox_name = ""
        if request.inbox_id:
            inbox_id = await self._inbox(ident, request.inbox_id)
            inboxes = await self._d.peers.inboxes(Identity(tenant_id=ident.tenant_id).metadata())
            inbox_name = next((i.name for i in inboxes if i.id == str(inbox_id)), "")
        person = Person(
            address=request.address or "customer@example.com",
            name=request.name,
            custom=dict(request.custom),
        )
        today = cd.local_date(self._d.clock.now(), cd.zone(request.time_zone))
        url = "https://example.invalid/unsubscribe/…"
        return pb.PreviewCampaignResponse(
            subject=cd.render(
                request.subject, person, inbox_name=inbox_name, today=today, unsubscribe_url=url
            ),
            body=cd.render(
                request.body, person, inbox_name=inbox_name, today=today, unsubscribe_url=url
            ),
            problems=problems,
        )


def ident_actor(ident: Identity) -> Any:
    return identity.operator_actor(ident)
