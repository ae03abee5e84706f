"""Contacts (TKT-9): made from senders, edited, merged; and their timeline (TKT-8).

Storage only; the rules are in `contact_rules`. Every query is scoped by tenant: another
tenant's contact is the same as a missing one.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from switchboard.v1 import common_pb2, events_pb2, tickets_pb2

from services.runtime import events
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.ids import IdGenerator
from services.runtime.outbox import Outbox

from . import contact_rules as rules
from .contact_rules import ContactEdit, Search
from .contact_timeline import ContactTimelineRepo
from .domain import Cursor

MERGE_DEPTH_MAX = 32  # merged_into chains are kept flat; this only stops a corrupt loop

# The columns of a contact with its addresses and ticket count (`c` is the contact).
_CONTACT_COLUMNS = (
    "c.*, ARRAY(SELECT a.address FROM contact_addresses a WHERE a.tenant_id = c.tenant_id "
    "AND a.contact_id = c.id ORDER BY a.address) AS addresses, "
    "(SELECT count(*) FROM tickets t WHERE t.tenant_id = c.tenant_id "
    "AND t.contact_id = c.id{inboxes}) AS ticket_count, "
    "(SELECT ca.last_contact_at FROM contact_activity ca WHERE ca.tenant_id = c.tenant_id "
    "AND ca.contact_id = c.id) AS last_contact_at"
)


def _columns(inboxes: str | None) -> str:
    """`_CONTACT_COLUMNS`, the tickets counted only in the inboxes of the SQL argument
    `inboxes` (a uuid[]) when given: an operator counts the tickets they may see."""
    return _CONTACT_COLUMNS.format(
        inboxes="" if inboxes is None else f" AND t.inbox_id = ANY({inboxes}::uuid[])"
    )


def visible_sql(inboxes: str) -> str:
    """The condition that contact `c` is one an operator of the inboxes in the SQL
    argument `inboxes` (a uuid[]) may see (SEC-5, SEC-6): it has a ticket in one of them —
    a merged-away contact through the contact it was merged into (its tickets moved there).
    An index-only probe of tickets_contact_inbox per contact."""
    return (
        "EXISTS (SELECT 1 FROM tickets vt WHERE vt.tenant_id = c.tenant_id "
        "AND vt.contact_id = coalesce(c.merged_into, c.id) "
        f"AND vt.inbox_id = ANY({inboxes}::uuid[]))"
    )


def _inbox_ids(visible: Sequence[str]) -> list[uuid.UUID]:
    return [uuid.UUID(i) for i in visible]


def contact_pb(row: asyncpg.Record) -> tickets_pb2.Contact:
    """A contact row selected with `_CONTACT_COLUMNS`."""
    out = tickets_pb2.Contact(
        id=str(row["id"]),
        name=row["name"],
        addresses=list(row["addresses"]),
        phones=list(row["phones"]),
        company=row["company"],
        memo=row["memo"],
        custom=dict(row["custom"]),
        merged_into=str(row["merged_into"] or ""),
        ticket_count=row["ticket_count"],
        vip=row["vip"],
        labels=list(row["labels"]),
        time_zone=row["time_zone"],
        language=row["language"],
    )
    if row["customer_value"] is not None:
        out.customer_value = row["customer_value"]
    if row["last_contact_at"] is not None:
        out.last_contact_at.FromDatetime(row["last_contact_at"])
    out.created_at.FromDatetime(row["created_at"])
    out.updated_at.FromDatetime(row["updated_at"])
    return out


def changed_event(
    ids: IdGenerator,
    tenant_id: str,
    now: datetime,
    contact_id: uuid.UUID,
    action: str,
    actor: common_pb2.Actor,
    *,
    merged_into: uuid.UUID | None = None,
    correlation_id: str = "",
    cause: events_pb2.EventEnvelope | None = None,
) -> events_pb2.EventEnvelope:
    """A contact.changed envelope: `action` is "created", "updated" or "merged"."""
    payload = events_pb2.ContactChanged(
        contact_id=str(contact_id), action=action, merged_into=str(merged_into or "")
    )
    if cause is not None:
        return events.caused_by(
            events.CONTACT_CHANGED,
            cause,
            event_id=ids.new_str(),
            occurred_at=now,
            payload=payload,
            actor=actor,
        )
    return events.envelope(
        events.CONTACT_CHANGED,
        event_id=ids.new_str(),
        tenant_id=tenant_id,
        occurred_at=now,
        payload=payload,
        actor=actor,
        correlation_id=correlation_id,
    )


class ContactsRepo(ContactTimelineRepo):
    """`outbox` and `ids`, when given, let `for_sender` announce the contacts it creates
    (contact.changed "created") in the caller's transaction."""

    def __init__(
        self, pool: asyncpg.Pool, outbox: Outbox | None = None, ids: IdGenerator | None = None
    ) -> None:
        self._pool = pool
        self._outbox = outbox
        self._ids = ids

    # -- made from senders -------------------------------------------------------------

    async def for_sender(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        address: str,
        name: str,
        now: datetime,
        *,
        cause: events_pb2.EventEnvelope | None = None,
    ) -> uuid.UUID | None:
        """The contact of `address` in the tenant, created when new; None without address.

        Safe under concurrency. A new address is claimed under a transaction-scoped
        advisory lock on (tenant, address), so of two transactions filing mail from the
        same new sender the second waits for the first to commit and then finds its
        contact. The address row stays the arbiter (`ON CONFLICT DO NOTHING` on its primary
        key): should it have been filed some other way meanwhile, the contact just inserted
        is dropped again and the address's contact is answered."""
        key = rules.sender_key(address)
        if key is None:
            return None
        tenant = uuid.UUID(tenant_id)
        found = await self._contact_of_address(conn, tenant, key)
        if found is not None:
            return found
        await _lock_addresses(conn, tenant, [key])
        found = await self._contact_of_address(conn, tenant, key)
        if found is not None:
            return found
        new_id = self._ids.new() if self._ids is not None else uuid.uuid4()
        await conn.execute(
            "INSERT INTO contacts (id, tenant_id, name, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $4)",
            new_id,
            tenant,
            rules.sender_name(name),
            now,
        )
        won = await conn.fetchval(
            "INSERT INTO contact_addresses (tenant_id, address, contact_id) VALUES ($1, $2, $3) "
            "ON CONFLICT (tenant_id, address) DO NOTHING RETURNING contact_id",
            tenant,
            key,
            new_id,
        )
        if won is None:  # someone else filed this sender first
            await conn.execute(
                "DELETE FROM contacts WHERE tenant_id = $1 AND id = $2", tenant, new_id
            )
            return await self._contact_of_address(conn, tenant, key)
        if self._outbox is not None and self._ids is not None:
            actor = events.system_actor("tickets")
            await self._outbox.add(
                conn,
                changed_event(self._ids, tenant_id, now, new_id, "created", actor, cause=cause),
            )
        return new_id

    async def _contact_of_address(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, address: str
    ) -> uuid.UUID | None:
        contact_id = await conn.fetchval(
            "SELECT contact_id FROM contact_addresses WHERE tenant_id = $1 AND address = $2",
            tenant,
            address,
        )
        if contact_id is None:
            return None
        return await self._follow(conn, tenant, contact_id)

    async def _follow(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, contact_id: uuid.UUID
    ) -> uuid.UUID:
        """The contact `contact_id` was merged into, transitively (itself when not merged).

        Read FOR SHARE: a merge or edit of the contact under way (FOR NO KEY UPDATE) is
        waited for and its result read, and no merge can begin until the caller commits,
        so a mail is never filed under a contact that a merge has just emptied."""
        current = contact_id
        for _ in range(MERGE_DEPTH_MAX):
            merged_into = await conn.fetchval(
                "SELECT merged_into FROM contacts WHERE tenant_id = $1 AND id = $2 FOR SHARE",
                tenant,
                current,
            )
            if merged_into is None:
                return current
            current = merged_into
        return current

    # -- read ----------------------------------------------------------------------------

    async def of_sender(self, tenant_id: str, address: str) -> tickets_pb2.Contact | None:
        """What routing's rules read of a sender's contact (issue 18): its id, custom
        fields, customer value and VIP flag — one indexed read (merges keep chains flat)."""
        key = rules.sender_key(address)
        if key is None:
            return None
        return await self._rule_facts(
            "JOIN contact_addresses a ON a.tenant_id = m.tenant_id AND a.contact_id = m.id"
            " WHERE m.tenant_id = $1 AND a.address = $2",
            uuid.UUID(tenant_id),
            key,
        )

    async def of_ticket(self, tenant_id: str, contact_id: str) -> tickets_pb2.Contact | None:
        """The same of a ticket's contact (routing's rules on a stored ticket)."""
        if not contact_id:
            return None
        return await self._rule_facts(
            "WHERE m.tenant_id = $1 AND m.id = $2", uuid.UUID(tenant_id), uuid.UUID(contact_id)
        )

    async def _rule_facts(self, where: str, *args: Any) -> tickets_pb2.Contact | None:
        row = await self._pool.fetchrow(
            "SELECT c.id, c.custom, c.customer_value, c.vip FROM contacts m"
            " JOIN contacts c ON c.tenant_id = m.tenant_id"
            f" AND c.id = coalesce(m.merged_into, m.id) {where}",
            *args,
        )
        if row is None:
            return None
        out = tickets_pb2.Contact(id=str(row["id"]), custom=dict(row["custom"]), vip=row["vip"])
        if row["customer_value"] is not None:
            out.customer_value = row["customer_value"]
        return out

    async def get(
        self,
        conn: asyncpg.Connection | asyncpg.Pool | None,
        tenant_id: str,
        contact_id: uuid.UUID,
        visible: Sequence[str] | None = None,
    ) -> tickets_pb2.Contact | None:
        """One contact of the tenant with its addresses and ticket count (None if missing,
        or not one an operator of the inboxes `visible` sees; None: every inbox)."""
        args: list[Any] = [uuid.UUID(tenant_id), contact_id]
        where = "c.tenant_id = $1 AND c.id = $2"
        if visible is not None:
            args.append(_inbox_ids(visible))
            where += f" AND {visible_sql('$3')}"
        row = await (conn or self._pool).fetchrow(
            f"SELECT {_columns(None if visible is None else '$3')} FROM contacts c WHERE {where}",
            *args,
        )
        return None if row is None else contact_pb(row)

    async def list(
        self,
        tenant_id: str,
        search: Search | None,
        limit: int,
        after: Cursor | None,
        visible: Sequence[str] | None = None,
    ) -> list[tickets_pb2.Contact]:
        """Contacts not merged away, newest-updated first, keyset-paged on (updated_at, id);
        `limit + 1` rows so the caller knows whether a next page exists. `visible`: the
        inboxes of an operator who sees only the contacts of their tickets (None: all)."""
        args: list[Any] = [uuid.UUID(tenant_id), limit + 1]
        where = ["c.tenant_id = $1", "c.merged_into IS NULL"]
        inboxes = None
        if visible is not None:
            args.append(_inbox_ids(visible))
            inboxes = f"${len(args)}"
            where.append(visible_sql(inboxes))
        if search is not None and not search.addresses:
            # SEC-6: name and company without addresses and phone numbers, nothing else
            args.append(search.text)
            where.append(f"c.search_masked LIKE ${len(args)}")
        elif search is not None:
            args.append(search.text)
            p = f"${len(args)}"
            terms = [
                f"lower(normalize(c.name, NFKC)) LIKE {p}",
                f"lower(normalize(c.company, NFKC)) LIKE {p}",
                "EXISTS (SELECT 1 FROM contact_addresses a WHERE a.tenant_id = c.tenant_id "
                f"AND a.contact_id = c.id AND lower(normalize(a.address, NFKC)) LIKE {p})",
                f"EXISTS (SELECT 1 FROM unnest(c.phones) ph WHERE ph LIKE {p})",
            ]
            if search.digits is not None:
                args.append(search.digits)
                terms.append(
                    "EXISTS (SELECT 1 FROM unnest(c.phones) ph "
                    f"WHERE regexp_replace(ph, '[^0-9]', '', 'g') LIKE ${len(args)})"
                )
            where.append(f"({' OR '.join(terms)})")
        if after is not None:
            args.extend([after.received_at, after.id])
            where.append(f"(c.updated_at, c.id) < (${len(args) - 1}, ${len(args)})")
        sql = (
            f"SELECT {_columns(inboxes)} FROM contacts c WHERE {' AND '.join(where)} "
            "ORDER BY c.updated_at DESC, c.id DESC LIMIT $2"
        )
        return [contact_pb(r) for r in await self._pool.fetch(sql, *args)]

    # -- change --------------------------------------------------------------------------

    async def _locked(
        self, conn: asyncpg.Connection, tenant: uuid.UUID, contact_id: uuid.UUID, field: str
    ) -> Any:
        row = await conn.fetchrow(
            # NO KEY UPDATE: mail filed meanwhile may still reference the contact (KEY SHARE)
            "SELECT * FROM contacts WHERE tenant_id = $1 AND id = $2 FOR NO KEY UPDATE",
            tenant,
            contact_id,
        )
        if row is None:
            raise NotFound("no such contact", field=field)
        if row["merged_into"] is not None:
            raise FailedPrecondition(
                f"contact {contact_id} was merged into {row['merged_into']}", field=field
            )
        return row

    async def update(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        contact_id: uuid.UUID,
        edit: ContactEdit,
        now: datetime,
    ) -> bool:
        """Apply a validated edit in the caller's transaction; False when it changed nothing.
        An address of another contact of the tenant is refused (FAILED_PRECONDITION naming
        it), and then nothing is changed."""
        tenant = uuid.UUID(tenant_id)
        row = await self._locked(conn, tenant, contact_id, "contact_id")
        current = [
            r["address"]
            for r in await conn.fetch(
                "SELECT address FROM contact_addresses WHERE tenant_id = $1 AND contact_id = $2",
                tenant,
                contact_id,
            )
        ]
        changes = edit.changes(row, current)
        if not changes:
            return False
        if "addresses" in changes:
            await self._set_addresses(conn, tenant, contact_id, current, edit.addresses or [])
        values = {k: v for k, v in changes.items() if k != "addresses"}
        values["updated_at"] = now
        cols = list(values)
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(cols, start=3))
        await conn.execute(
            f"UPDATE contacts SET {sets} WHERE tenant_id = $1 AND id = $2",
            tenant,
            contact_id,
            *(values[c] for c in cols),
        )
        return True

    async def _set_addresses(
        self,
        conn: asyncpg.Connection,
        tenant: uuid.UUID,
        contact_id: uuid.UUID,
        current: Sequence[str],
        wanted: Sequence[str],
    ) -> None:
        added = [a for a in wanted if a not in current]
        removed = [a for a in current if a not in wanted]
        if added:
            await _lock_addresses(conn, tenant, added)
            taken = await conn.fetchrow(
                "SELECT address, contact_id FROM contact_addresses "
                "WHERE tenant_id = $1 AND address = ANY($2::text[]) AND contact_id <> $3 "
                "ORDER BY address LIMIT 1",
                tenant,
                added,
                contact_id,
            )
            if taken is not None:
                raise _address_taken(taken["address"], taken["contact_id"])
        if removed:
            await conn.execute(
                "DELETE FROM contact_addresses WHERE tenant_id = $1 AND contact_id = $2 "
                "AND address = ANY($3::text[])",
                tenant,
                contact_id,
                removed,
            )
        for address in added:
            # Another transaction may have filed this address since the check: the insert
            # waits for it and then finds the conflict; the caller's transaction rolls back.
            won = await conn.fetchval(
                "INSERT INTO contact_addresses (tenant_id, address, contact_id) "
                "VALUES ($1, $2, $3) ON CONFLICT (tenant_id, address) DO NOTHING "
                "RETURNING contact_id",
                tenant,
                address,
                contact_id,
            )
            if won is None:
                owner = await conn.fetchval(
                    "SELECT contact_id FROM contact_addresses WHERE tenant_id = $1 "
                    "AND address = $2",
                    tenant,
                    address,
                )
                raise _address_taken(address, owner)

    async def merge(
        self,
        conn: asyncpg.Connection,
        tenant_id: str,
        target_id: uuid.UUID,
        source_id: uuid.UUID,
        now: datetime,
    ) -> None:
        """Merge `source` into `target` in the caller's transaction: the source's addresses,
        phones and tickets move to the target, custom fields are joined (the target's win),
        and the source is kept as a record with `merged_into` = target."""
        if target_id == source_id:
            raise FailedPrecondition(
                "a contact cannot be merged into itself", field="source_contact_id"
            )
        tenant = uuid.UUID(tenant_id)
        # Both rows locked, always in the same order, so two merges cannot deadlock.
        fields = {target_id: "target_contact_id", source_id: "source_contact_id"}
        rows = {}
        for cid in sorted(fields):
            rows[cid] = await self._locked(conn, tenant, cid, fields[cid])
        target, source = rows[target_id], rows[source_id]
        merged = rules.merge(target, source)
        count = "SELECT count(*) FROM contact_addresses WHERE tenant_id = $1 AND contact_id = $2"
        rules.check_merged_addresses(
            await conn.fetchval(count, tenant, target_id),
            await conn.fetchval(count, tenant, source_id),
        )
        await conn.execute(
            "UPDATE contact_addresses SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2",
            tenant,
            source_id,
            target_id,
        )
        await conn.execute(
            "UPDATE tickets SET contact_id = $3 WHERE tenant_id = $1 AND contact_id = $2",
            tenant,
            source_id,
            target_id,
        )
        # Contacts merged into the source earlier now point at the target: chains stay flat.
        await conn.execute(
            "UPDATE contacts SET merged_into = $3 WHERE tenant_id = $1 AND merged_into = $2",
            tenant,
            source_id,
            target_id,
        )
        await conn.execute(
            "UPDATE contacts SET name = $3, company = $4, memo = $5, phones = $6, custom = $7, "
            "updated_at = $8 WHERE tenant_id = $1 AND id = $2",
            tenant,
            target_id,
            merged.name,
            merged.company,
            merged.memo,
            merged.phones,
            merged.custom,
            now,
        )
        # issue 18: the target's customer value stands, else the source's; VIP if either
        await conn.execute(
            "UPDATE contacts SET customer_value = coalesce(customer_value, $3), vip = vip OR $4,"
            # issue 20: labels joined; the target's time zone and language, else the source's
            " labels = ARRAY(SELECT DISTINCT unnest(labels || $5::text[])),"
            " time_zone = CASE WHEN time_zone = '' THEN $6 ELSE time_zone END,"
            " language = CASE WHEN language = '' THEN $7 ELSE language END"
            " WHERE tenant_id = $1 AND id = $2",
            tenant,
            target_id,
            source["customer_value"],
            source["vip"],
            source["labels"],
            source["time_zone"],
            source["language"],
        )
        await conn.execute(
            "UPDATE contacts SET merged_into = $3, updated_at = $4 "
            "WHERE tenant_id = $1 AND id = $2",
            tenant,
            source_id,
            target_id,
            now,
        )


async def _lock_addresses(
    conn: asyncpg.Connection, tenant: uuid.UUID, addresses: Sequence[str]
) -> None:
    """Transaction-scoped advisory locks on (tenant, address), taken in sorted order so that
    two transactions claiming several addresses cannot deadlock on them."""
    for address in sorted(set(addresses)):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"sb-contact-address {tenant} {address}",
        )


def _address_taken(address: str, owner: Any) -> FailedPrecondition:
    return FailedPrecondition(
        f"{address} already belongs to contact {owner}; merge the two contacts instead",
        field="addresses",
    )
