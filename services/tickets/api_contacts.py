"""The contacts part of TicketsService: list, read, edit and merge contacts (TKT-9), and a
contact's timeline (TKT-8). Every change is announced with contact.changed, written to the
outbox in the transaction of the change.

An operator sees the contacts that have a ticket in an inbox they may see (all of them
with all_inboxes): any other is answered as missing, in every method (SEC-5). A search
by an operator without see_customer_addresses is compared with names and companies only
(SEC-6, `contact_rules.Search`), and every search counts against the operator's search
rate (`SearchLimiter`)."""

from __future__ import annotations

import uuid

import asyncpg
from switchboard.v1 import tickets_pb2

from services.runtime import identity, log
from services.runtime.errors import NotFound
from services.runtime.grpc_server import Context
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid

from . import contact_rules, outreach_repo, ticket_facts
from .contact_rules import ContactEdit, TimelineCursor
from .contacts import changed_event
from .deps import Deps
from .domain import Cursor, page_size


class ContactsApi:
    _deps: Deps

    async def _contact(
        self,
        ident: Identity,
        contact_id: uuid.UUID,
        field: str = "contact_id",
        conn: asyncpg.Connection | None = None,
    ) -> tickets_pb2.Contact:
        """The contact, if the caller may see it; NOT_FOUND naming `field` otherwise."""
        contact = await self._deps.contacts.get(
            conn, ident.tenant_id, contact_id, ident.inbox_filter()
        )
        if contact is None:
            raise NotFound("no such contact", field=field)
        return contact

    async def ListContacts(
        self, request: tickets_pb2.ListContactsRequest, context: Context
    ) -> tickets_pb2.ListContactsResponse:
        ident = identity.require_operator()
        search = contact_rules.search(request.query, addresses=ident.sees_addresses())
        limit = page_size(request.page.limit)
        after = Cursor.decode(request.page.cursor) if request.page.cursor else None
        if search is not None:
            await self._deps.search_limit.count(ident)
        rows = await self._deps.contacts.list(
            ident.tenant_id, search, limit, after, ident.inbox_filter()
        )
        resp = tickets_pb2.ListContactsResponse(contacts=rows[:limit])
        if len(rows) > limit:
            last = rows[limit - 1]
            resp.next_cursor = Cursor.of(last.updated_at, last.id).encode()
        return resp

    async def GetContact(
        self, request: tickets_pb2.GetContactRequest, context: Context
    ) -> tickets_pb2.Contact:
        ident = identity.require_operator()
        return await self._contact(ident, parse_uuid(request.contact_id, "contact_id"))

    async def UpdateContact(
        self, request: tickets_pb2.UpdateContactRequest, context: Context
    ) -> tickets_pb2.Contact:
        ident = identity.require_operator()
        contact_id = parse_uuid(request.contact_id, "contact_id")
        addresses = list(request.addresses) if request.set_addresses else None
        phones = list(request.phones) if request.set_phones else None
        d = self._deps
        async with d.db.transaction() as conn:
            current = await self._contact(ident, contact_id, conn=conn)
            if not ident.sees_addresses():  # SEC-6: what they see masked stays as it is
                contact_rules.masked_edit("addresses", addresses, current.addresses)
                contact_rules.masked_edit("phones", phones, current.phones)
                addresses = phones = None
            edit = ContactEdit.validated(
                name=request.name if request.HasField("name") else None,
                company=request.company if request.HasField("company") else None,
                memo=request.memo if request.HasField("memo") else None,
                addresses=addresses,
                phones=phones,
                custom=dict(request.custom) if request.set_custom else None,
                set_customer_value=request.HasField("customer_value")
                or request.clear_customer_value,
                customer_value=(
                    request.customer_value if request.HasField("customer_value") else None
                ),
                vip=request.vip if request.HasField("vip") else None,
                labels=list(request.labels) if request.set_labels else None,
                time_zone=request.time_zone if request.HasField("time_zone") else None,
                language=request.language if request.HasField("language") else None,
            )
            now = d.clock.now()
            changed = await d.contacts.update(conn, ident.tenant_id, contact_id, edit, now)
            if changed and edit.set_customer_value:
                await ticket_facts.follow_customer_value(
                    d, conn, ident, contact_id, edit.customer_value, now
                )
            if changed:
                await d.outbox.add(
                    conn,
                    changed_event(
                        d.ids,
                        ident.tenant_id,
                        now,
                        contact_id,
                        "updated",
                        identity.operator_actor(ident),
                        correlation_id=ident.correlation_id,
                    ),
                )
            contact = await d.contacts.get(conn, ident.tenant_id, contact_id, ident.inbox_filter())
        if changed:
            d.outbox.wake()
            log.get("tickets.contacts").info("contact updated", contact_id=str(contact_id))
        if contact is None:
            raise NotFound("no such contact", field="contact_id")
        return contact

    async def MergeContacts(
        self, request: tickets_pb2.MergeContactsRequest, context: Context
    ) -> tickets_pb2.Contact:
        ident = identity.require_operator()
        target = parse_uuid(request.target_contact_id, "target_contact_id")
        source = parse_uuid(request.source_contact_id, "source_contact_id")
        d = self._deps
        actor = identity.operator_actor(ident)
        async with d.db.transaction() as conn:
            await self._contact(ident, target, "target_contact_id", conn)
            await self._contact(ident, source, "source_contact_id", conn)
            now = d.clock.now()
            await d.contacts.merge(conn, ident.tenant_id, target, source, now)
            await outreach_repo.merge_memberships(conn, uuid.UUID(ident.tenant_id), target, source)
            merged = await d.contacts.get(conn, ident.tenant_id, target)
            if merged is not None:  # the source's tickets take the merged customer value
                value = merged.customer_value if merged.HasField("customer_value") else None
                await ticket_facts.follow_customer_value(d, conn, ident, target, value, now)
            for contact_id, action, into in ((source, "merged", target), (target, "updated", None)):
                await d.outbox.add(
                    conn,
                    changed_event(
                        d.ids,
                        ident.tenant_id,
                        now,
                        contact_id,
                        action,
                        actor,
                        merged_into=into,
                        correlation_id=ident.correlation_id,
                    ),
                )
            contact = await d.contacts.get(conn, ident.tenant_id, target, ident.inbox_filter())
        d.outbox.wake()
        log.get("tickets.contacts").info(
            "contacts merged", contact_id=str(target), source_contact_id=str(source)
        )
        if contact is None:
            raise NotFound("no such contact", field="target_contact_id")
        return contact

    async def ContactTimeline(
        self, request: tickets_pb2.ContactTimelineRequest, context: Context
    ) -> tickets_pb2.ContactTimelineResponse:
        ident = identity.require_operator()
        contact_id = parse_uuid(request.contact_id, "contact_id")
        limit = page_size(request.page.limit)
        after = TimelineCursor.decode(request.page.cursor) if request.page.cursor else None
        contact = await self._contact(ident, contact_id)
        page = await self._deps.contacts.timeline(
            ident.tenant_id, contact_id, limit, after, ident.inbox_filter()
        )
        return tickets_pb2.ContactTimelineResponse(
            contact=contact,
            entries=page.entries,
            next_cursor=page.next_cursor.encode() if page.next_cursor else "",
        )
