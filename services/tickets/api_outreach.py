"""The outreach part of TicketsService (issue 20, OUT-6): the tenant's custom fields of
contacts, contact lists and their members, and ResolveAudience for outbound's campaigns.

Every method but GetContactFields (any operator) and ResolveAudience (another service, or
an operator with the permission) needs manage_outreach. Another tenant's list answers
NOT_FOUND."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
from switchboard.v1 import common_pb2, tickets_pb2

from services.runtime import identity, log
from services.runtime.errors import InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid
from services.runtime.permissions import MANAGE_OUTREACH

from . import outreach_repo as repo
from . import outreach_rules as rules
from . import segment_repo
from .contacts import changed_event
from .deps import Deps
from .domain import page_size


def require_outreach() -> Identity:
    ident = identity.require_operator()
    identity.require_permission(ident, MANAGE_OUTREACH, "manage contact lists and segments")
    return ident


def _after(cursor: str) -> uuid.UUID | None:
    return parse_uuid(cursor, "cursor") if cursor else None


class OutreachApi:
    _deps: Deps

    async def GetContactFields(
        self, request: tickets_pb2.GetContactFieldsRequest, context: Context
    ) -> tickets_pb2.ContactFields:
        ident = identity.require_operator()
        defs = await repo.fields(self._deps.db.pool, ident.tenant_id)
        return tickets_pb2.ContactFields(
            fields=[tickets_pb2.ContactField(key=d.key, label=d.label, type=d.type) for d in defs]
        )

    async def SetContactFields(
        self, request: tickets_pb2.ContactFields, context: Context
    ) -> tickets_pb2.ContactFields:
        ident = require_outreach()
        defs = rules.clean_fields([rules.FieldDef(f.key, f.label, f.type) for f in request.fields])
        async with self._deps.db.transaction() as conn:
            await repo.set_fields(conn, ident.tenant_id, defs, self._deps.clock.now())
        return await self.GetContactFields(tickets_pb2.GetContactFieldsRequest(), context)

    # -- lists -------------------------------------------------------------------------

    async def ListContactLists(
        self, request: tickets_pb2.ListContactListsRequest, context: Context
    ) -> tickets_pb2.ListContactListsResponse:
        ident = require_outreach()
        return tickets_pb2.ListContactListsResponse(
            lists=await repo.lists(self._deps.db.pool, ident.tenant_id)
        )

    async def CreateContactList(
        self, request: tickets_pb2.CreateContactListRequest, context: Context
    ) -> tickets_pb2.ContactList:
        ident = require_outreach()
        name = rules.clean_list_name(request.name)
        description = rules.clean_description(request.description)
        d = self._deps
        async with d.db.transaction() as conn:
            out = await repo.create_list(
                conn, ident.tenant_id, d.ids.new(), name, description, d.clock.now()
            )
        log.get("tickets.outreach").info("contact list created", list_id=out.id)
        return out

    async def GetContactList(
        self, request: tickets_pb2.ContactListRef, context: Context
    ) -> tickets_pb2.ContactList:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        return await repo.get_list(self._deps.db.pool, ident.tenant_id, list_id)

    async def UpdateContactList(
        self, request: tickets_pb2.UpdateContactListRequest, context: Context
    ) -> tickets_pb2.ContactList:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        name = rules.clean_list_name(request.name) if request.HasField("name") else None
        description = (
            rules.clean_description(request.description)
            if request.HasField("description")
            else None
        )
        async with self._deps.db.transaction() as conn:
            return await repo.update_list(
                conn, ident.tenant_id, list_id, name, description, self._deps.clock.now()
            )

    async def DeleteContactList(
        self, request: tickets_pb2.ContactListRef, context: Context
    ) -> tickets_pb2.DeleteOutreachResponse:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        async with self._deps.db.transaction() as conn:
            await repo.delete_list(conn, ident.tenant_id, list_id)
        log.get("tickets.outreach").info("contact list deleted", list_id=str(list_id))
        return tickets_pb2.DeleteOutreachResponse()

    # -- members -----------------------------------------------------------------------

    async def ListListMembers(
        self, request: tickets_pb2.ListListMembersRequest, context: Context
    ) -> tickets_pb2.ListListMembersResponse:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        if len(request.query) > 200:
            raise InvalidArgument("query is longer than 200 characters", field="query")
        limit = page_size(request.page.limit)
        pool = self._deps.db.pool
        await repo.get_list(pool, ident.tenant_id, list_id)
        rows = await repo.members(
            pool, ident.tenant_id, list_id, request.query, limit, _after(request.page.cursor)
        )
        resp = tickets_pb2.ListListMembersResponse(members=rows[:limit])
        if len(rows) > limit:
            resp.next_cursor = rows[limit - 1].contact_id
        return resp

    async def AddListMembers(
        self, request: tickets_pb2.AddListMembersRequest, context: Context
    ) -> tickets_pb2.AddListMembersResponse:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        if len(request.contacts) > rules.MEMBERS_MAX:
            raise InvalidArgument(
                f"at most {rules.MEMBERS_MAX} contacts at a time", field="contacts"
            )
        d = self._deps
        defs = await repo.fields(d.db.pool, ident.tenant_id)
        edits: list[rules.MemberEdit] = []
        resp = tickets_pb2.AddListMembersResponse()
        seen: set[str] = set()
        for i, c in enumerate(request.contacts):
            try:
                edit = member_edit(c, defs)
            except InvalidArgument as err:
                resp.errors.add(index=i, field=err.field or "", message=str(err))
                continue
            if edit.address in seen:
                resp.errors.add(index=i, field="address", message="address is given twice")
                continue
            seen.add(edit.address)
            edits.append(edit)
        added, updated = await add_members(d, ident, list_id, edits)
        resp.added, resp.updated = added, updated
        return resp

    async def RemoveListMember(
        self, request: tickets_pb2.RemoveListMemberRequest, context: Context
    ) -> tickets_pb2.DeleteOutreachResponse:
        ident = require_outreach()
        list_id = parse_uuid(request.list_id, "list_id")
        contact_id = parse_uuid(request.contact_id, "contact_id")
        async with self._deps.db.transaction() as conn:
            await repo.get_list(conn, ident.tenant_id, list_id, lock=True)
            gone = await repo.remove_member(
                conn, ident.tenant_id, list_id, contact_id, self._deps.clock.now()
            )
        if not gone:
            raise NotFound("the contact is not in the list", field="contact_id")
        return tickets_pb2.DeleteOutreachResponse()

    # -- audiences ---------------------------------------------------------------------

    async def ResolveAudience(
        self, request: tickets_pb2.ResolveAudienceRequest, context: Context
    ) -> AsyncIterator[tickets_pb2.AudienceBatch]:
        ident = identity.require_tenant()
        if ident.operator_id:
            identity.require_permission(ident, MANAGE_OUTREACH, "read a campaign's audience")
        pool = self._deps.db.pool
        which = request.WhichOneof("audience")
        after: uuid.UUID | None = None
        if which == "list_id":
            list_id = parse_uuid(request.list_id, "list_id")
            await repo.get_list(pool, ident.tenant_id, list_id)
            while True:
                batch = await repo.list_audience(pool, ident.tenant_id, list_id, after)
                if batch or after is None:
                    yield tickets_pb2.AudienceBatch(members=batch)
                if len(batch) < repo.AUDIENCE_BATCH:
                    return
                after = uuid.UUID(batch[-1].contact_id)
        elif which == "segment_id":
            segment_id = parse_uuid(request.segment_id, "segment_id")
            where, args = await segment_repo.compiled(
                self._deps, ident.tenant_id, segment_id, first_arg=3
            )
            while True:
                batch = await repo.segment_audience(pool, ident.tenant_id, where, args, after)
                if batch or after is None:
                    yield tickets_pb2.AudienceBatch(members=batch)
                if len(batch) < repo.AUDIENCE_BATCH:
                    return
                after = uuid.UUID(batch[-1].contact_id)
        else:
            raise InvalidArgument("give list_id or segment_id", field="audience")


def member_edit(c: tickets_pb2.MemberInput, defs: list[rules.FieldDef]) -> rules.MemberEdit:
    return rules.clean_member(
        address=c.address,
        name=c.name if c.HasField("name") else None,
        time_zone=c.time_zone if c.HasField("time_zone") else None,
        language=c.language if c.HasField("language") else None,
        labels=list(c.labels) if c.set_labels else None,
        custom=dict(c.custom),
        defs=defs,
    )


async def add_members(
    d: Deps, ident: Identity, list_id: uuid.UUID, edits: list[rules.MemberEdit]
) -> tuple[int, int]:
    """Checked contacts into the list in one transaction. (added, already members)."""
    async with d.db.transaction() as conn:
        await repo.get_list(conn, ident.tenant_id, list_id, lock=True)
        added, updated = await apply_members(
            d,
            conn,
            ident.tenant_id,
            list_id,
            edits,
            identity.operator_actor(ident),
            ident.correlation_id,
        )
    d.outbox.wake()
    return added, updated


async def apply_members(
    d: Deps,
    conn: asyncpg.Connection,
    tenant_id: str,
    list_id: uuid.UUID,
    edits: list[rules.MemberEdit],
    actor: common_pb2.Actor,
    correlation_id: str = "",
) -> tuple[int, int]:
    """Checked contacts into the list (locked by the caller) in the caller's transaction,
    contact.changed for each contact created or changed. (added, already members)."""
    now = d.clock.now()
    added, updated, touched = await repo.upsert_members(
        conn, tenant_id, list_id, edits, [d.ids.new() for _ in edits], now
    )
    for contact_id, created in touched:
        await d.outbox.add(
            conn,
            changed_event(
                d.ids,
                tenant_id,
                now,
                contact_id,
                "created" if created else "updated",
                actor,
                correlation_id=correlation_id,
            ),
        )
    return added, updated
