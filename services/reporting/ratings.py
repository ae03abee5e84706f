"""Satisfaction ratings as reporting sees them (issue 20, OUT-5), I/O-free: what a
`survey.sent` / `survey.answered` says of one survey, and the `satisfaction` report built
from the ratings counted per period, resolving operator and inbox, each by rating
(ratings_store.py) — per period and in total: surveys sent, answered, the response rate,
the average rating and the distribution 1–5; and the same per operator (the one who
resolved the ticket) and per inbox over the whole range."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from switchboard.v1 import events_pb2

from services.runtime.errors import Poison

from .facts import occurred
from .periods import local_iso
from .report_model import Cell, Query, Table, Value

REPORT = "satisfaction"
SOURCE = "ratings"  # the report's `source`: reporting's ratings table, never the rollups
SCALE = 5
COMMENT_MAX = 2000
SENT = "survey"  # a cell's metric: surveys sent; `rating_<k>`: answers rating k
RATINGS = tuple(f"rating_{k}" for k in range(1, SCALE + 1))
MEASURES = ("surveys_sent", "surveys_answered", "response_rate", "average_rating", *RATINGS)
PERIOD = ("period", "start", "end")
TOTAL = "total"


@dataclass(frozen=True, slots=True)
class SurveyEvent:
    """One survey's event: `rating` None for `survey.sent`."""

    event_id: uuid.UUID
    tenant_id: uuid.UUID
    survey_id: uuid.UUID
    ticket_id: uuid.UUID
    inbox_id: uuid.UUID
    episode: int
    operator_id: uuid.UUID | None
    operator_name: str
    resolved_at: datetime
    at: datetime  # the event's occurred_at: when sent, when answered
    rating: int | None
    ticket_number: int = 0
    comment: str = ""
    # the additional questions answered: {"id", "rating", "text_ja", "text_en"} each
    answers: tuple[dict[str, object], ...] = ()


def _uuid(raw: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Poison(f"survey event without a valid {what}") from None


def survey_event(env: events_pb2.EventEnvelope) -> SurveyEvent | None:
    """The event as a row's change; None for an answer that is no rating (outbound never
    announces one, but a hand-made event must not stop the consumer)."""
    s = env.survey
    rating: int | None = None
    if env.type == "survey.answered":
        if not 1 <= s.rating <= SCALE:
            return None
        rating = s.rating
    at = occurred(env)
    by = s.resolved_by.id
    try:
        operator = uuid.UUID(by) if by else None
    except ValueError:  # not an operator's id: credits nobody
        operator = None
    return SurveyEvent(
        event_id=_uuid(env.event_id, "event_id"),
        tenant_id=_uuid(env.tenant_id, "tenant_id"),
        survey_id=_uuid(s.survey_id, "survey_id"),
        ticket_id=_uuid(s.ticket_id, "ticket_id"),
        inbox_id=_uuid(s.inbox_id, "inbox_id"),
        episode=s.episode,
        operator_id=operator,
        operator_name=s.resolved_by.display_name if operator else "",
        resolved_at=s.resolved_at.ToDatetime(tzinfo=at.tzinfo) if s.HasField("resolved_at") else at,
        at=at,
        rating=rating,
        ticket_number=s.ticket_number,
        comment=s.comment[:COMMENT_MAX],
        answers=tuple(
            {
                "id": a.question_id[:32],
                "rating": a.rating,
                "text_ja": a.text_ja[:500],
                "text_en": a.text_en[:500],
            }
            for a in s.answers
            if a.question_id and 1 <= a.rating <= SCALE
        ),
    )


# -- the report ------------------------------------------------------------------------------


class Names(Protocol):
    """What the store does not hold: the operators' and the inboxes' names."""

    @property
    def operator_names(self) -> Mapping[str, str]: ...

    @property
    def inbox_names(self) -> Mapping[str, str]: ...

    @property
    def question_texts(self) -> Mapping[str, tuple[str, str]]: ...


@dataclass(slots=True)
class Tally:
    sent: int = 0
    ratings: list[int] = field(default_factory=lambda: [0] * SCALE)

    def add(self, c: Cell) -> None:
        if c.metric == SENT:
            self.sent += c.durations.count
        elif c.metric in RATINGS:
            self.ratings[RATINGS.index(c.metric)] += c.durations.count

    def values(self) -> list[Value]:
        """MEASURES: the response rate a share (0–1, 4 decimals), the average with 2
        decimals; null when nothing was sent / answered."""
        answered = sum(self.ratings)
        points = sum(k * n for k, n in enumerate(self.ratings, start=1))
        return [
            self.sent,
            answered,
            round(answered / self.sent, 4) if self.sent else None,
            round(points / answered, 2) if answered else None,
            *self.ratings,
        ]


def _span(q: Query, label: str, start: datetime, end: datetime) -> list[Value]:
    return [label, local_iso(start, q.range.zone), local_iso(end, q.range.zone)]


def _tallies(cells: Sequence[Cell], dimension: str) -> dict[str, Tally]:
    out: dict[str, Tally] = {}
    for c in cells:
        if c.dimension == dimension:
            out.setdefault(c.value, Tally()).add(c)
    return out


def satisfaction(q: Query, cells: Sequence[Cell], ctx: Names) -> tuple[Table, ...]:
    """`series`: one row per period; `table`: the periods, then each operator and each
    inbox over the range (`dimension` operator / inbox, `id`, `name`; the operator of a
    survey nobody resolved is null), the totals row last. The cells: per period
    (dimension ''), per operator (`value` its id, '' for nobody) and per inbox (`value` its
    id) over the range."""
    per_period = [Tally() for _ in q.periods]
    whole = Tally()
    for c in cells:
        if c.dimension == "" and 0 <= c.period < len(per_period):
            per_period[c.period].add(c)
            whole.add(c)
    series = tuple(
        tuple(_span(q, p.label, p.start, p.end) + t.values())
        for p, t in zip(q.periods, per_period, strict=True)
    )
    everything = _span(q, TOTAL, q.range.start, q.range.end)
    rows: list[tuple[Value, ...]] = [(*row[:3], "", "", "", *row[3:]) for row in series]
    ops = _tallies(cells, "operator")
    for o in sorted(ops, key=lambda o: (not o, ctx.operator_names.get(o, "").casefold(), o)):
        name = ctx.operator_names.get(o, "") if o else None
        rows.append((*everything, "operator", o or None, name, *ops[o].values()))
    inboxes = _tallies(cells, "inbox")
    for i in sorted(inboxes, key=lambda i: (ctx.inbox_names.get(i, "").casefold(), i)):
        rows.append((*everything, "inbox", i, ctx.inbox_names.get(i, ""), *inboxes[i].values()))
    rows.append((*everything, "", "", "", *whole.values()))
    return (
        Table("series", PERIOD + MEASURES, series),
        Table("table", (*PERIOD, "dimension", "id", "name", *MEASURES), tuple(rows)),
        questions(q, cells, ctx),
    )


QUESTION_MEASURES = ("answered", "average_rating", *RATINGS)


def _answered(t: Tally) -> list[Value]:
    v = t.values()  # no surveys counted here: only the answers' measures
    return [v[1], v[3], *v[4:]]


def questions(q: Query, cells: Sequence[Cell], ctx: Names) -> Table:
    """`questions`: per additional question (by id, its latest texts) one row per period,
    then its total over the range: how many answered it, the average, the distribution."""
    per: dict[str, list[Tally]] = {}
    for c in cells:
        if c.dimension == "question" and 0 <= c.period < len(q.periods):
            per.setdefault(c.value, [Tally() for _ in q.periods])[c.period].add(c)
    rows: list[tuple[Value, ...]] = []
    for qid in sorted(per):
        ja, en = ctx.question_texts.get(qid, ("", ""))
        whole = Tally()
        for p, t in zip(q.periods, per[qid], strict=True):
            for k, n in enumerate(t.ratings):
                whole.ratings[k] += n
            rows.append((*_span(q, p.label, p.start, p.end), qid, ja, en, *_answered(t)))
        rows.append((*_span(q, TOTAL, q.range.start, q.range.end), qid, ja, en,
                     *_answered(whole)))  # fmt: skip
    columns = (*PERIOD, "question_id", "question_ja", "question_en", *QUESTION_MEASURES)
    return Table("questions", columns, tuple(rows))
