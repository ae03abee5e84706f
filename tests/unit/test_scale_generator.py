"""The scale data set's generator (services/devstack/scale.py), without a database: the
same seed writes the same tenant, byte for byte; its Japanese mail reads back as Japanese
through ingestion's parser whichever encoding it was written in; its facts follow the
tickets they come from."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from services.devstack import scale, scale_facts
from services.ingestion.bulk import summarise

END = datetime(2026, 12, 1, tzinfo=UTC)


def _digest(gen: scale.Generator) -> list[tuple[object, ...]]:
    return [
        (t.id, t.subject, t.status, t.assignee_id, m.mail.id, m.mail.raw)
        for b in gen.batches()
        for t, m in zip(b.tickets, b.mails, strict=False)
    ]


def test_the_same_seed_writes_the_same_tenant_and_another_seed_another() -> None:
    first = _digest(scale.Generator(300, seed=3, end=END, batch=50))
    assert first == _digest(scale.Generator(300, seed=3, end=END, batch=50))
    assert first != _digest(scale.Generator(300, seed=4, end=END, batch=50))
    gen = scale.Generator(300, seed=3, end=END, batch=50)
    tickets = [t for b in gen.batches() for t in b.tickets]
    assert len(tickets) == 300 and len({t.id for t in tickets}) == 300
    received = [t.received_at for t in tickets]
    assert received == sorted(received) and END - received[0] > END - received[-1]
    assert len(gen.inboxes) == scale.INBOXES and len(gen.operators) == scale.OPERATORS
    assert all(gen.members[i.id] for i in gen.inboxes)


def test_japanese_mail_reads_back_as_japanese_in_every_encoding() -> None:
    gen = scale.Generator(400, seed=5, end=END, batch=100)
    seen: Counter[str] = Counter()
    for b in gen.batches():
        for m in b.mails:
            raw = m.mail.raw
            cte = "base64" if b"base64" in raw else "iso-2022-jp" if b"ISO-2022-JP" in raw else ""
            summary, _document = summarise(m.mail)
            if cte and m.mail.channel == "email":
                seen[cte] += 1
                assert not summary.parse_problems, summary.parse_problems
                assert "お世話になっております" in summary.search_text
                assert any("\u3040" <= c <= "\u30ff" for c in summary.subject)
                assert getattr(summary, "from").address.endswith("@example.jp")
    assert seen["base64"] > 10 and seen["iso-2022-jp"] > 10


def test_facts_follow_their_tickets() -> None:
    gen = scale.Generator(200, seed=6, end=END, batch=200)
    [batch] = list(gen.batches())
    facts = scale_facts.batch_facts(gen, batch)
    by_metric = Counter(f.metric for f in facts)
    assert by_metric["arrival"] == 200
    assert by_metric["received"] == sum(m.mail.channel == "email" for m in batch.mails)
    assert by_metric["sent"] == sum(m.mail.channel == "sent" for m in batch.mails)
    assert by_metric["resolution"] == sum(t.status == "resolved" for t in batch.tickets)
    assert by_metric["approval_request"] == sum(len(t.approvals) for t in batch.tickets)
    assert all(f.wall_s is None or f.wall_s >= 0 for f in facts)
    assert len({(f.metric, f.key) for f in facts}) == len(facts)
