"""Running the rules on intake (RTE-1): for a mail that starts a ticket (`new_ticket`) or
joins one (`customer_reply`), the tenant-wide rules and those of the mail's inbox run in
their order, read from the in-memory cache, and their decision goes into message.routed
for tickets to apply. A mail we sent runs no rules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from switchboard.v1 import events_pb2, tickets_pb2

from services.runtime import log
from services.runtime.clock import Clock
from services.runtime.identity import Identity

from . import rules_facts
from .peers import Peers
from .rule_store import RuleCache, RuleStore
from .rules import engine, model
from .rules.conditions import InHours
from .rules.model import Rule

# hours_of(tenant_id) → the engine's in_hours over that tenant's calendars (only)
HoursOf = Callable[[str], Awaitable[InHours]]
# detect_language(subject, text) → an ISO 639-1 code or "" (language.LanguageDetector)
DetectLanguage = Callable[[str, str], str]


def no_language(subject: str, text: str) -> str:
    return ""


@dataclass
class Runs:
    """The once-per-ticket rules that ran, noted with the routed event (same transaction)."""

    tenant: str = ""
    ticket_id: str = ""
    rule_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RulesContext:
    """What running rules needs: the rules (stored, cached), the peers that know the
    mail and the ticket, the clock and the business-hours calendars."""

    store: RuleStore
    cache: RuleCache
    peers: Peers
    clock: Clock
    hours_of: HoursOf
    detect_language: DetectLanguage = no_language


@dataclass(frozen=True)
class InboxRules:
    """An inbox's rules in order, worked out once per loaded rule list: whether one
    reads the stored mail (headers, attachments) or the sender's contact."""

    loaded: list[Rule]
    rules: tuple[Rule, ...]
    details: bool
    contact: bool


def _no_hours(calendar_id: str, at: datetime) -> bool | None:
    """No rule reads business hours: no calendar is known."""
    return None


class RulesIntake:
    def __init__(self, ctx: RulesContext) -> None:
        self._c = ctx
        self._log = log.get("routing.rules")
        self._by_inbox: dict[tuple[str, str], InboxRules] = {}

    @property
    def ctx(self) -> RulesContext:
        return self._c

    async def _of_inbox(self, tenant: str, inbox: str) -> InboxRules:
        """The rules of an inbox, in order, and what they read — worked out once per
        loaded rule list, not per mail (a tuple: the engine prepares it once per trigger,
        `engine.prepared`)."""
        loaded = await self._c.cache.rules(tenant)
        hit = self._by_inbox.get((tenant, inbox))
        if hit is not None and hit.loaded is loaded:
            return hit
        if len(self._by_inbox) > 10_000:
            self._by_inbox.clear()
        rules = tuple(r for r in loaded if engine.applies_to(r, inbox))
        found = InboxRules(
            loaded, rules, engine.needs_mail_details(rules), engine.needs_contact(rules)
        )
        self._by_inbox[(tenant, inbox)] = found
        return found

    async def wants_contact(self, tenant: str, received: events_pb2.MessageReceived) -> bool:
        """Whether an enabled rule of the mail's inbox reads the sender's contact (then
        app.py asks tickets for it with the thread: no call of its own)."""
        if received.channel == "sent":
            return False
        return (await self._of_inbox(tenant, received.inbox.id)).contact

    async def decide(
        self,
        env: events_pb2.EventEnvelope,
        received: events_pb2.MessageReceived,
        routed: events_pb2.MessageRouted,
        existing: events_pb2.TicketSummary | None,
        contact: tickets_pb2.Contact | None = None,
    ) -> Runs:
        """Detect the mail's language and evaluate the rules for this mail, both into
        `routed`. `contact`: the sender's, when `wants_contact` asked for it."""
        if received.channel == "sent":
            return Runs()
        mail = received.mail
        routed.language = self._c.detect_language(mail.subject, mail.search_text or mail.snippet)
        tenant = env.tenant_id
        inbox = received.inbox.id
        of_inbox = await self._of_inbox(tenant, inbox)
        rules, details_needed = of_inbox.rules, of_inbox.details
        if not rules:
            return Runs()
        reply = bool(routed.thread_ticket_id)
        trigger = model.CUSTOMER_REPLY if reply else model.NEW_TICKET
        ticket_id = routed.thread_ticket_id or routed.new_ticket_id
        ran: frozenset[str] = frozenset()
        if reply and any(r.definition.once_per_ticket for r in rules):
            ran = await self._c.store.ran_on(self._c.store.pool, tenant, ticket_id)
        details = None
        if details_needed:
            md = Identity(tenant_id=tenant, correlation_id=env.correlation_id).metadata()
            details = await self._c.peers.mail_details(md, received.message_id)
        facts = rules_facts.facts_of(
            received.mail,
            channel=received.channel,
            received_at=received.received_at.ToDatetime(tzinfo=UTC),
            envelope_recipients=list(received.envelope_recipients),
            ticket=rules_facts.ticket_state(existing or events_pb2.TicketSummary(), inbox),
            details=details,
            contact=contact,
            language=routed.language,
        )
        # the tenant's calendars only when a rule reads them (a cache that is read again
        # every few seconds: a mail of a tenant without such rules never waits for it)
        in_hours = await self._c.hours_of(tenant) if engine.needs_hours(rules) else _no_hours
        evaluation = engine.evaluate(rules, facts, trigger, in_hours, ran_before=ran, traced=False)
        decision = evaluation.decision
        if decision.empty:
            return Runs()
        routed.decision.CopyFrom(rules_facts.decision_pb(decision, trigger))
        self._log.info(
            "rules applied",
            message_id=received.message_id,
            trigger=trigger,
            rules=len(decision.fired),
            actions=len(decision.trace),
        )
        once = {r.id for r in rules if r.definition.once_per_ticket}
        return Runs(tenant, ticket_id, [r for r in decision.fired if r in once])

    async def note(self, conn: asyncpg.Connection, runs: Runs) -> None:
        if runs.rule_ids:
            await self._c.store.note_runs(
                conn, runs.tenant, runs.ticket_id, runs.rule_ids, self._c.clock.now()
            )
