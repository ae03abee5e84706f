"""The scale data set's tenant (`make seed-scale`), generated free of I/O and deterministic
for a seed: 20 inboxes, 200 operators, and tickets over two years ending at `end` — more
on weekdays and in Tokyo's office hours, growing over the two years — each with its
customer's mails (Japanese or English) and our replies, statuses by age, assignees among
the inbox's members, labels, categories, priorities, and approvals for trainees' replies.

`Generator.batches()` yields the tickets a day at a time in received order (the ticket
numbers follow it), grouped into batches of about `batch` tickets; each batch holds what
every service's bulk path writes for it."""

from __future__ import annotations

import bisect
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from services.accounts.bulk import BulkInbox, BulkOperator, BulkTenant
from services.ingestion.bulk import BulkMail
from services.tickets.bulk import BulkChange, BulkContact, BulkTicket

from . import scale_mail
from .scale_mail import Envelope, Topic

SCALE_TENANT = uuid.UUID("0191f000-0000-7000-8000-000000005ca1")
DOMAIN = "scale.example"
ADMIN_LOGIN = f"admin@{DOMAIN}"
DAYS = 730
INBOXES = 20
OPERATORS = 200
SUPERVISORS = 10
TRAINEES = 30
# Tokyo office hours (UTC+9) get most mail: weight per UTC hour
_HOUR_WEIGHTS = [8, 9, 9, 8, 7, 6, 5, 4, 3, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 7]
_PRIORITIES = (("low", 10), ("normal", 70), ("high", 15), ("urgent", 5))
_EXTRA_LABELS = ("VIP", "要確認", "至急", "bug", "feedback", "再送")


def uuid7(ms: int, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 of millisecond `ms` with its random bits from `rng`."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64
    return uuid.UUID(int=value | 0b10 << 62 | rng.getrandbits(62))


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class Operator:
    account: BulkOperator
    trainee: bool


@dataclass(frozen=True)
class Linked:
    """A mail of a batch and the ticket it is filed in."""

    mail: BulkMail
    ticket_id: uuid.UUID
    operator_id: uuid.UUID | None = None  # who sent it, for a mail we sent


@dataclass
class Batch:
    contacts: list[BulkContact] = field(default_factory=list)
    tickets: list[BulkTicket] = field(default_factory=list)
    mails: list[Linked] = field(default_factory=list)
    audit_ids: list[uuid.UUID] = field(default_factory=list)


class Generator:
    def __init__(self, tickets: int, seed: int, end: datetime, batch: int = 2000) -> None:
        self.total = tickets
        self.seed = seed
        self.end = end.astimezone(UTC)
        self.start = self.end - timedelta(days=DAYS)
        self.batch = batch
        rng = random.Random(f"{seed}:accounts")
        self.tenant = BulkTenant(SCALE_TENANT, "scale", "Scale Company", "Asia/Tokyo")
        names = ("サポート", "Support", "営業", "Sales", "請求窓口", "Billing", "採用", "Partners")
        self.inboxes = [
            BulkInbox(
                id=uuid7(_ms(self.start) - 1000 + i, rng),
                name=f"{names[i % len(names)]} {i + 1:02d}",
                addresses=(f"inbox{i + 1:02d}@{DOMAIN}",),
                created_at=self.start - timedelta(days=30),
            )
            for i in range(INBOXES)
        ]
        # Zipf-like: a few inboxes get most mail
        self._inbox_cum = _cumulative([1.0 / (i + 1) ** 0.8 for i in range(INBOXES)])
        self.operators = [self._operator(n, rng) for n in range(OPERATORS)]
        self.members: dict[uuid.UUID, list[Operator]] = {i.id: [] for i in self.inboxes}
        for op in self.operators:
            for inbox_id in op.account.inbox_ids:
                self.members[inbox_id].append(op)
        self._customers = max(1, tickets * 2 // 5)
        self._seen: set[int] = set()

    def _operator(self, n: int, rng: random.Random) -> Operator:
        at = self.start - timedelta(days=30)
        oid = uuid7(_ms(at) + n, rng)
        if n == 0:
            inboxes = tuple(i.id for i in self.inboxes)
            return Operator(
                BulkOperator(
                    oid, ADMIN_LOGIN, "Scale Admin", ("admin", "supervisor"), inboxes, "ja", at
                ),
                trainee=False,
            )
        if n <= SUPERVISORS:
            kind, roles, count = "supervisor", ("supervisor",), 6
        elif n <= SUPERVISORS + TRAINEES:
            kind, roles, count = "trainee", ("trainee",), 1
        else:
            kind, roles, count = "agent", ("agent",), rng.randint(2, 4)
        first = (n * 7) % INBOXES  # every inbox gets members
        inbox_ids = tuple(self.inboxes[(first + k * 3) % INBOXES].id for k in range(count))
        ja = n % 3 != 0
        name = scale_mail.customer_name(rng, ja)
        login = f"{kind}{n:03d}@{DOMAIN}"
        return Operator(
            BulkOperator(oid, login, name, roles, inbox_ids, "ja" if ja else "en", at),
            trainee=kind == "trainee",
        )

    def approver(self, inbox_id: uuid.UUID) -> uuid.UUID:
        """Who approves a trainee's reply in an inbox: its first supervisor, else the admin."""
        for op in self.members[inbox_id]:
            if "supervisor" in op.account.roles and not op.trainee:
                return op.account.id
        return self.operators[0].account.id

    def login_of(self, kind: str) -> str:
        """The first operator's login of a kind (agent, supervisor, trainee)."""
        return next(o.account.login for o in self.operators if o.account.login.startswith(kind))

    # -- tickets ----------------------------------------------------------------------

    def _per_day(self) -> list[int]:
        rng = random.Random(f"{self.seed}:days")
        weights = []
        for d in range(DAYS):
            day = self.start + timedelta(days=d)
            growth = 0.6 + 0.8 * d / DAYS
            weekday = 0.35 if day.weekday() >= 5 else 1.0
            weights.append(growth * weekday * rng.uniform(0.85, 1.15))
        scale = self.total / sum(weights)
        counts = [int(w * scale) for w in weights]
        for d in rng.sample(range(DAYS), self.total - sum(counts)):
            counts[d] += 1
        return counts

    def batches(self) -> Iterator[Batch]:
        batch = Batch()
        hours = _cumulative(_HOUR_WEIGHTS)
        for d, count in enumerate(self._per_day()):
            rng = random.Random(f"{self.seed}:day:{d}")
            day = self.start + timedelta(days=d)
            times = sorted(
                day + timedelta(hours=_pick(rng, hours), seconds=rng.randrange(3600))
                for _ in range(count)
            )
            for at in times:
                self._ticket(rng, at, batch)
            if len(batch.tickets) >= self.batch:
                yield batch
                batch = Batch()
        if batch.tickets:
            yield batch

    def _ticket(self, rng: random.Random, at: datetime, batch: Batch) -> None:
        inbox = self.inboxes[_pick(rng, self._inbox_cum)]
        cust = int(rng.paretovariate(1.2) * 7919) % self._customers
        ja = cust % 5 < 3
        crng = random.Random(f"{self.seed}:customer:{cust}")
        cname = scale_mail.customer_name(crng, ja)
        caddr = f"c{cust:07d}@{'example.jp' if ja else 'example.com'}"
        contact_id = uuid.uuid5(SCALE_TENANT, f"contact:{cust}")
        if cust not in self._seen:
            self._seen.add(cust)
            batch.contacts.append(BulkContact(contact_id, cname, caddr, at))
        topic = TOPIC_LIST[rng.randrange(len(TOPIC_LIST))]
        subject = rng.choice(topic.ja_subjects if ja else topic.en_subjects)
        charset = rng.choice(("iso-2022-jp", "iso-2022-jp", "utf-8")) if ja else "us-ascii"
        if not ja and rng.random() < 0.2:
            charset = "utf-8"
        age = (self.end - at).days
        status = _status(rng, age)
        members = self.members[inbox.id]
        assigned = rng.random() < (0.9 if status in ("resolved", "no_action") else 0.6)
        owner = rng.choice(members) if assigned and members else None
        replier = owner or (rng.choice(members) if members else None)
        n_mails = 1 if status == "no_action" else rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5, 7))
        tid = uuid7(_ms(at), rng)
        mails: list[Linked] = []
        refs: list[str] = []
        when = at
        order = rng.randrange(10_000_000)
        text = ""
        approvals: list[uuid.UUID] = []
        for k in range(n_mails):
            ours = k % 2 == 1 and replier is not None
            mid = f"{uuid7(_ms(when), rng).hex}@{DOMAIN if ours else caddr.split('@')[1]}"
            subj = subject if k == 0 else "Re: " + subject
            if ours:
                assert replier is not None
                body = scale_mail.reply_text(ja, cname, replier.account.display_name, text)
                env = Envelope(
                    inbox.name,
                    inbox.addresses[0],
                    cname,
                    caddr,
                    subj,
                    when,
                    mid,
                    refs[-1] if refs else "",
                    tuple(refs),
                )
                if replier.trainee:
                    approvals.append(uuid7(_ms(when) - 60_000, rng))
            else:
                text = scale_mail.customer_text(rng, topic, ja, cname, order)
                body = text
                env = Envelope(
                    cname,
                    caddr,
                    "",
                    inbox.addresses[0],
                    subj,
                    when,
                    mid,
                    refs[-1] if refs else "",
                    tuple(refs),
                )
            raw = scale_mail.mime(env, body, charset)
            mail = BulkMail(
                id=uuid7(_ms(when), rng),
                event_id=uuid7(_ms(when), rng),
                inbox_id=inbox.id,
                inbox_name=inbox.name,
                channel="sent" if ours else "email",
                raw=raw,
                envelope_from=inbox.addresses[0] if ours else caddr,
                envelope_recipients=(caddr,) if ours else inbox.addresses,
                received_at=when,
                ticket_id=tid if ours else None,
            )
            mails.append(Linked(mail, tid, replier.account.id if ours and replier else None))
            refs.append(mid)
            when = min(self.end, when + timedelta(minutes=rng.randint(5, 60 * 30)))
        last = mails[-1].mail.received_at
        closed = None
        changes: list[BulkChange] = []
        if owner is not None:
            a = owner.account
            changes.append(
                BulkChange(
                    at + timedelta(minutes=rng.randint(1, 90)),
                    a.id,
                    a.display_name,
                    "assign",
                    "assignee",
                    "",
                    a.display_name,
                )
            )
        if status != "open":
            closed = min(self.end, last + timedelta(minutes=rng.randint(1, 600)))
            who = (owner or replier or self.operators[0]).account
            changes.append(
                BulkChange(closed, who.id, who.display_name, "update", "status", "open", status)
            )
        labels = [topic.label]
        if rng.random() < 0.2:
            labels.append(rng.choice(_EXTRA_LABELS))
        batch.tickets.append(
            BulkTicket(
                id=tid,
                subject=subject,
                status=status,
                inbox_id=inbox.id,
                inbox_name=inbox.name,
                from_name=cname,
                from_address=caddr,
                received_at=at,
                updated_at=closed or last,
                contact_id=contact_id,
                assignee_id=owner.account.id if owner else None,
                assignee_name=owner.account.display_name if owner else None,
                labels=tuple(labels),
                category=topic.category,
                priority=_pick_named(rng, _PRIORITIES),
                closed_at=closed if status in ("resolved", "no_action") else None,
                language="ja" if ja else "en",
                changes=tuple(changes),
                approvals=tuple(approvals),
            )
        )
        batch.mails.extend(mails)
        batch.audit_ids.extend(uuid7(_ms(at), rng) for _ in range(1 + len(changes)))


TOPIC_LIST: tuple[Topic, ...] = scale_mail.TOPICS


def _status(rng: random.Random, age_days: int) -> str:
    r = rng.random()
    table: tuple[tuple[str, float], ...]
    if age_days < 2:
        table = (("open", 0.6), ("pending", 0.75), ("resolved", 1.0))
    elif age_days < 14:
        table = (("open", 0.15), ("pending", 0.3), ("resolved", 0.95), ("no_action", 1.0))
    else:
        table = (
            ("open", 0.005),
            ("pending", 0.01),
            ("resolved", 0.9),
            ("no_action", 0.97),
            ("trash", 1.0),
        )
    return next(s for s, upto in table if r < upto)


def _cumulative(weights: list[float] | list[int]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, rng.random() * cumulative[-1])


def _pick_named(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    cum = _cumulative([w for _n, w in table])
    return table[_pick(rng, cum)][0]
