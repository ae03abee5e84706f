"""CustomerLookupService (issue 21, DAT-3, RTE-3): the tenant's customer-data lookup —
its configuration and "try it" (manage_inboxes), and the data of a ticket's contact or a
contact for any operator who sees it.

A contact's data is read from the cache while fresh; otherwise fetched (lookup_fetch),
mapped (lookup_rules), cached for the configured TTL and — when a mapped field is the
customer value — written to the contact's customer_value, whose tickets follow it through
`ticket_facts.follow_customer_value` (ticket.updated, so routing's priority and the lists
move). A failure is an answer ("unavailable" with its reason), never an error: the ticket
opens whatever the tenant's system does. Logs carry ids and the reason, never the secret,
the URL's values or the data."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from switchboard.v1 import tickets_lookup_pb2 as L
from switchboard.v1 import tickets_lookup_pb2_grpc, tickets_pb2

from services.runtime import events, identity, log, permissions
from services.runtime import metrics as m
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.grpc_server import Context
from services.runtime.hosts import ConnectPolicy
from services.runtime.identity import Identity
from services.runtime.ids import parse_uuid
from services.runtime.metrics import Metrics
from services.runtime.secrets import SecretBox

from . import lookup_rules as rules
from . import ticket_facts
from .contacts import changed_event
from .deps import Deps
from .lookup_fetch import Fetched, fetch
from .lookup_repo import CachedAnswer, LookupRepo, StoredConfig
from .lookup_rules import ContactKeys, LookupConfig, LookupField, MissingValue

_log = log.get("tickets.lookup")


def config_pb(stored: StoredConfig | None) -> L.LookupConfig:
    if stored is None:
        return L.LookupConfig(  # the defaults of a new configuration (on once saved)
            configured=False,
            enabled=True,
            timeout_ms=rules.TIMEOUT_MS_DEFAULT,
            cache_ttl_s=rules.TTL_S_DEFAULT,
        )
    c = stored.config
    out = L.LookupConfig(
        configured=True,
        enabled=c.enabled,
        url_template=c.url_template,
        header_name=c.header_name,
        secret_hint=stored.secret_hint if stored.sealed_secret else "",
        timeout_ms=c.timeout_ms,
        cache_ttl_s=c.cache_ttl_s,
        fields=[
            L.LookupField(pointer=f.pointer, label_ja=f.label_ja, label_en=f.label_en, type=f.type)
            for f in c.fields
        ],
        value_pointer=c.value_pointer,
        allow_hosts=list(c.allow_hosts),
    )
    out.updated_at.FromDatetime(stored.updated_at)
    return out


def _config_of(pb: L.LookupConfig) -> LookupConfig:
    return rules.validated(
        url_template=pb.url_template,
        enabled=pb.enabled,
        header_name=pb.header_name,
        timeout_ms=pb.timeout_ms,
        cache_ttl_s=pb.cache_ttl_s,
        fields=[LookupField(f.pointer, f.label_ja, f.label_en, f.type) for f in pb.fields],
        value_pointer=pb.value_pointer,
        allow_hosts=list(pb.allow_hosts),
    )


def _keys(contact: tickets_pb2.Contact) -> ContactKeys:
    return ContactKeys(
        email=contact.addresses[0] if contact.addresses else "",
        phone=contact.phones[0] if contact.phones else "",
        custom=dict(contact.custom),
    )


def _values(config: LookupConfig, found: dict[str, tuple[str, bool]]) -> list[L.LookupValue]:
    return [
        L.LookupValue(
            pointer=f.pointer,
            label_ja=f.label_ja,
            label_en=f.label_en,
            type=f.type,
            value=found.get(f.pointer, ("", False))[0],
            found=found.get(f.pointer, ("", False))[1],
        )
        for f in config.fields
    ]


class CustomerLookupApi(tickets_lookup_pb2_grpc.CustomerLookupServiceServicer):
    def __init__(
        self,
        deps: Deps,
        repo: LookupRepo,
        box: SecretBox,
        deployment: ConnectPolicy,
        metrics: Metrics | None = None,
    ) -> None:
        self._deps = deps
        self._outcomes = m.Children(metrics.counter(m.CUSTOMER_LOOKUPS)) if metrics else None
        self._took = metrics.histogram(m.CUSTOMER_LOOKUP_DURATION) if metrics else None
        self._repo = repo
        self._box = box
        self._deployment = deployment
        self._inflight: dict[tuple[str, uuid.UUID], asyncio.Task[L.LookupResult]] = {}

    # -- configuration (manage_inboxes) -----------------------------------------------

    def _admin(self) -> Identity:
        ident = identity.require_operator()
        identity.require_permission(
            ident, permissions.MANAGE_INBOXES, "configure the customer-data lookup"
        )
        return ident

    async def GetLookupConfig(
        self, request: L.GetLookupConfigRequest, context: Context
    ) -> L.LookupConfig:
        ident = self._admin()
        return config_pb(await self._repo.config(ident.tenant_id))

    async def _secret_for(
        self, ident: Identity, req: L.PutLookupConfigRequest, stored: StoredConfig | None
    ) -> tuple[bytes | None, str]:
        """The sealed secret and its hint the saved configuration keeps."""
        if req.secret:
            rules.check_secret(req.secret)
            if not req.config.header_name.strip():
                raise InvalidArgument(
                    "a secret needs a header name to send it in", field="header_name"
                )
            return self._box.seal(req.secret, ident.tenant_id), rules.secret_hint(req.secret)
        if req.clear_secret or stored is None or not req.config.header_name.strip():
            return None, ""
        return stored.sealed_secret, stored.secret_hint

    async def PutLookupConfig(
        self, request: L.PutLookupConfigRequest, context: Context
    ) -> L.LookupConfig:
        ident = self._admin()
        config = _config_of(request.config)
        d = self._deps
        async with d.db.transaction() as conn:
            stored = await self._repo.config(ident.tenant_id, conn)
            sealed, hint = await self._secret_for(ident, request, stored)
            await self._repo.save(conn, ident.tenant_id, config, sealed, hint, d.clock.now())
        _log.info("customer lookup configured", enabled=config.enabled, fields=len(config.fields))
        return config_pb(await self._repo.config(ident.tenant_id))

    async def TryLookup(self, request: L.TryLookupRequest, context: Context) -> L.LookupResult:
        ident = self._admin()
        given = [n for n in ("email", "phone", "contact_id") if getattr(request, n).strip()]
        if len(given) != 1:
            raise InvalidArgument("give one of email, phone or contact_id", field="email")
        stored = await self._repo.config(ident.tenant_id)
        if request.HasField("config"):
            config = _config_of(request.config.config)
            sealed, _ = await self._secret_for(ident, request.config, stored)
        elif stored is None:
            raise FailedPrecondition("no customer-data lookup is configured", field="config")
        else:
            config, sealed = stored.config, stored.sealed_secret
        if request.contact_id:
            contact = await self._contact(ident, parse_uuid(request.contact_id, "contact_id"))
            keys = _keys(contact)
        else:
            keys = ContactKeys(email=request.email.strip(), phone=request.phone.strip())
        result, fetched = await self._lookup(ident, config, sealed, keys)
        if fetched is not None and fetched.text:
            result.body = fetched.text[: rules.TRY_BODY_MAX]
        _log.info("customer lookup tried", ok=result.ok, error=result.error)
        return result

    # -- the data (any operator who sees the ticket or contact) -------------------------

    async def _contact(self, ident: Identity, contact_id: uuid.UUID) -> tickets_pb2.Contact:
        """The contact (the one it was merged into), if the caller sees it."""
        contacts = self._deps.contacts
        contact = await contacts.get(None, ident.tenant_id, contact_id, ident.inbox_filter())
        if contact is None:
            raise NotFound("no such contact", field="contact_id")
        if contact.merged_into:
            merged = await contacts.get(None, ident.tenant_id, uuid.UUID(contact.merged_into))
            if merged is not None:
                return merged
        return contact

    async def TicketCustomerData(
        self, request: L.TicketCustomerDataRequest, context: Context
    ) -> L.LookupResult:
        ident = identity.require_operator()
        ticket_id = parse_uuid(request.ticket_id, "ticket_id")
        row = await self._deps.db.pool.fetchrow(
            "SELECT inbox_id, contact_id FROM tickets WHERE tenant_id = $1 AND id = $2",
            uuid.UUID(ident.tenant_id),
            ticket_id,
        )
        if row is None or not ident.sees_inbox(row["inbox_id"]):
            raise NotFound("no such ticket", field="ticket_id")
        stored = await self._repo.config(ident.tenant_id)
        if stored is None:
            return L.LookupResult(configured=False)
        if row["contact_id"] is None:
            return L.LookupResult(
                configured=True, error="missing", error_detail="the ticket has no contact"
            )
        contact = await self._deps.contacts.get(None, ident.tenant_id, row["contact_id"])
        if contact is not None and contact.merged_into:
            contact = await self._deps.contacts.get(
                None, ident.tenant_id, uuid.UUID(contact.merged_into)
            )
        if contact is None:
            return L.LookupResult(
                configured=True, error="missing", error_detail="the ticket has no contact"
            )
        return await self._data(ident, stored, contact)

    async def ContactCustomerData(
        self, request: L.ContactCustomerDataRequest, context: Context
    ) -> L.LookupResult:
        ident = identity.require_operator()
        contact = await self._contact(ident, parse_uuid(request.contact_id, "contact_id"))
        stored = await self._repo.config(ident.tenant_id)
        if stored is None:
            return L.LookupResult(configured=False)
        return await self._data(ident, stored, contact)

    async def prefetch(self, tenant_id: str, contact_id: str, correlation_id: str) -> str:
        """A new ticket's contact (issue 21, RTE-3): when the tenant's lookup is on and maps
        a customer value, fetch (or find cached) its answer so the value reaches the
        contact and its tickets' priority at once. What happened, for the log: "cached",
        "fetched", or why nothing was asked ("no_lookup", "no_value", "no_contact") or what
        failed (the lookup's error)."""
        stored = await self._repo.config(tenant_id)
        if stored is None or not stored.config.enabled:
            return "no_lookup"
        if not stored.config.value_pointer:
            return "no_value"
        contacts = self._deps.contacts
        contact = await contacts.get(None, tenant_id, uuid.UUID(contact_id))
        if contact is not None and contact.merged_into:
            contact = await contacts.get(None, tenant_id, uuid.UUID(contact.merged_into))
        if contact is None:
            return "no_contact"
        ident = Identity(tenant_id=tenant_id, correlation_id=correlation_id)
        result = await self._data(ident, stored, contact)
        if not result.ok:
            return result.error or "error"
        return "cached" if result.cached else "fetched"

    async def _data(
        self, ident: Identity, stored: StoredConfig, contact: tickets_pb2.Contact
    ) -> L.LookupResult:
        config = stored.config
        contact_id = uuid.UUID(contact.id)
        if not config.enabled:
            return L.LookupResult(
                configured=True,
                contact_id=contact.id,
                error="disabled",
                error_detail="the lookup is switched off",
            )
        d = self._deps
        cached = await self._repo.cached(ident.tenant_id, contact_id, d.clock.now())
        if cached is not None:
            return self._cached_result(config, cached, contact.id)
        # one lookup a contact at a time in this process: operators opening the same
        # ticket meanwhile wait for its answer instead of asking the system again
        key = (ident.tenant_id, contact_id)
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch_and_keep(ident, stored, contact))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
        out = L.LookupResult()
        out.CopyFrom(await asyncio.shield(task))
        return out

    async def _fetch_and_keep(
        self, ident: Identity, stored: StoredConfig, contact: tickets_pb2.Contact
    ) -> L.LookupResult:
        """Fetch now; keep a successful answer and its customer value."""
        d, config, contact_id = self._deps, stored.config, uuid.UUID(contact.id)
        result, fetched = await self._lookup(ident, config, stored.sealed_secret, _keys(contact))
        result.contact_id = contact.id
        if not result.ok or fetched is None:
            _log.warning(
                "customer lookup unavailable",
                contact_id=contact.id,
                error=result.error,
                elapsed_ms=result.elapsed_ms,
            )
            return result
        now = d.clock.now()
        value = result.customer_value if result.has_customer_value else None
        answer = CachedAnswer(
            now,
            result.http_status,
            result.elapsed_ms,
            [{"pointer": v.pointer, "value": v.value, "found": v.found} for v in result.fields],
            value,
        )
        async with d.db.transaction() as conn:
            if config.cache_ttl_s > 0:
                expires = now + timedelta(seconds=config.cache_ttl_s)
                await self._repo.store(conn, ident.tenant_id, contact_id, answer, expires)
            changed = value is not None and await self._repo.set_customer_value(
                conn, ident.tenant_id, contact_id, value, now
            )
            if changed:
                actor = events.system_actor("tickets")
                await ticket_facts.follow_customer_value(
                    d, conn, ident, contact_id, value, now, actor=actor
                )
                await d.outbox.add(
                    conn,
                    changed_event(
                        d.ids,
                        ident.tenant_id,
                        now,
                        contact_id,
                        "updated",
                        actor,
                        correlation_id=ident.correlation_id,
                    ),
                )
        if changed:
            d.outbox.wake()
        _log.info(
            "customer lookup fetched",
            contact_id=contact.id,
            elapsed_ms=result.elapsed_ms,
            customer_value_changed=changed,
        )
        return result

    def _cached_result(
        self, config: LookupConfig, cached: CachedAnswer, contact_id: str
    ) -> L.LookupResult:
        found = {v["pointer"]: (str(v["value"]), bool(v["found"])) for v in cached.values}
        out = L.LookupResult(
            configured=True,
            ok=True,
            cached=True,
            contact_id=contact_id,
            http_status=cached.http_status,
            elapsed_ms=cached.elapsed_ms,
            fields=_values(config, found),
        )
        if cached.customer_value is not None:
            out.has_customer_value = True
            out.customer_value = cached.customer_value
        out.fetched_at.FromDatetime(cached.fetched_at)
        return out

    async def _lookup(
        self, ident: Identity, config: LookupConfig, sealed: bytes | None, keys: ContactKeys
    ) -> tuple[L.LookupResult, Fetched | None]:
        """One fetch for `keys`, mapped: (the result, what came back — None when nothing
        was fetched)."""
        out = L.LookupResult(configured=True)
        try:
            url = rules.expand(config.url_template, keys)
        except MissingValue as missing:
            out.error, out.error_detail = "missing", str(missing)
            return out, None
        header = None
        if config.header_name and sealed:
            try:
                header = (config.header_name, self._box.open(sealed, ident.tenant_id))
            except FailedPrecondition as err:
                out.error, out.error_detail = "error", err.message
                return out, None
        policy = rules.policy_for(self._deployment, config.allow_hosts)
        fetched = await fetch(url, header=header, timeout_ms=config.timeout_ms, policy=policy)
        if self._outcomes is not None and self._took is not None:
            self._outcomes(fetched.error or "ok").inc()
            self._took.observe(fetched.elapsed_ms / 1000)
        out.fetched_at.FromDatetime(self._deps.clock.now())
        out.http_status = fetched.status
        out.elapsed_ms = fetched.elapsed_ms
        if not fetched.ok:
            out.error, out.error_detail = fetched.error, fetched.detail
            return out, fetched
        out.ok = True
        mapped = rules.map_fields(fetched.doc, config.fields)
        out.fields.extend(_values(config, {m.field.pointer: (m.value, m.found) for m in mapped}))
        value = rules.value_of(fetched.doc, config)
        if value is not None:
            out.has_customer_value = True
            out.customer_value = value
        return out, fetched
